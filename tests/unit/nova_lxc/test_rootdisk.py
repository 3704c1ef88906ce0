"""nova_lxc.rootdisk's checks on the privileged side (what reaches mkfs/mount); making,
growing and mounting a disk for real is in tests/functional/nova_lxc/test_root_disk.py."""
import os
import tempfile
from unittest import mock

from nova import exception

from nova_lxc import container
from nova_lxc import rootdisk
from tests.unit.nova_common import base

UUID = "5b1d2a8e-0c4f-4e8a-9d3b-7f6a1c2e4b90"


class TestRootDiskChecks(base.TestCase):
    def test_sizes(self):
        self.assertEqual(1, rootdisk.check_size(1))
        for bad in (0, -1, True, 1.5, "1", None, rootdisk.MAX_GB + 1):
            self.assertRaises(exception.InvalidInput, rootdisk.check_size, bad)

    @mock.patch.object(rootdisk.subprocess, "run")
    def test_bad_names_paths_and_sizes_run_nothing(self, run):
        root = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, root)
        for name, lxcpath, size in (("../x", root, 1), (UUID, "rel/path", 1),
                                    (UUID, root + "/a:b", 1), (UUID, root, 0),
                                    (UUID, root, "1; reboot")):
            self.assertRaises(exception.NovaException, rootdisk.mount, name, lxcpath,
                              size)
        for owner in (-1, 0, True, "100000", 2 ** 32 - 1):
            self.assertRaises(exception.InvalidInput, rootdisk.mount, UUID, root, 1, owner)
        # no instance directory: nothing made
        self.assertRaises(container.ContainerError, rootdisk.mount, UUID, root, 1)
        run.assert_not_called()

    @mock.patch.object(rootdisk.subprocess, "run")
    def test_a_symbolic_link_in_place_of_the_image_is_refused(self, run):
        root = tempfile.mkdtemp()
        cdir = os.path.join(root, UUID)
        os.mkdir(cdir)
        os.symlink("/etc/passwd", os.path.join(cdir, rootdisk.IMAGE))
        self.addCleanup(lambda: (os.unlink(os.path.join(cdir, rootdisk.IMAGE)),
                                 os.rmdir(cdir), os.rmdir(root)))
        self.assertRaises(container.ContainerError, rootdisk.mount, UUID, root, 1)
        run.assert_not_called()
