import json
import os
import subprocess
from unittest import mock

from nova import exception
from nova import objects
from nova.virt import images

from nova_common import disks
from tests.unit.nova_common import base

objects.register_all()
MiB = 1024 ** 2


def instance(root_gb=1, ephemeral_gb=0, swap=0, os_type=None):
    return objects.Instance(uuid="11111111-2222-3333-4444-555555555555",
                            image_ref="22222222-3333-4444-5555-666666666666",
                            trusted_certs=None, os_type=os_type,
                            flavor=objects.Flavor(root_gb=root_gb, ephemeral_gb=ephemeral_gb,
                                                  swap=swap))


def blkid(path, tag):
    return subprocess.run(["blkid", "-p", "-o", "value", "-s", tag, path],
                          capture_output=True, text=True).stdout.strip()


def qemu_img_info(path):
    return json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-U", path],
                                     check=True, capture_output=True, text=True).stdout)


class TestDisks(base.TestCase):
    def test_only_qcow2_and_raw_images(self):
        for fmt in ("qcow2", "raw"):
            disks.check_image(instance(), objects.ImageMeta.from_dict({"disk_format": fmt}))
        for fmt in ("vmdk", "iso"):
            self.assertRaises(exception.ImageUnacceptable, disks.check_image, instance(),
                              objects.ImageMeta.from_dict({"disk_format": fmt}))

    def test_root_disk_is_a_private_overlay_on_a_base_fetched_once(self):
        def fetch(context, image_id, path, trusted_certs=None):
            with open(path, "wb") as f:
                f.truncate(8 * MiB)

        fetch = mock.Mock(side_effect=fetch)
        self.useFixture(__import__("fixtures").MockPatchObject(images, "fetch_to_raw", fetch))
        paths = []
        for n in range(2):
            paths.append(os.path.join(self.instances, "disk%d" % n))
            disks.create_root_disk(None, instance(), paths[-1])
        fetch.assert_called_once()            # the base image is cached
        base = disks.base_path(instance().image_ref)
        for path in paths:
            info = json.loads(subprocess.run(
                ["qemu-img", "info", "--output=json", "-U", path], check=True,
                capture_output=True, text=True).stdout)
            self.assertEqual(("qcow2", base, 1024 * MiB),
                             (info["format"], info["backing-filename"],
                              info["virtual-size"]))
            self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        self.assertFalse(os.path.exists(base + ".part"))

    def test_a_qcow2_base_is_named_as_such_by_the_overlay(self):
        # force_raw_images = False: nova keeps the image as Glance gave it
        self.flags(force_raw_images=False)

        def fetch(context, image_id, path, trusted_certs=None):
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "64M"],
                           check=True)

        self.useFixture(__import__("fixtures").MockPatchObject(
            images, "fetch_to_raw", mock.Mock(side_effect=fetch)))
        path = os.path.join(self.instances, "disk")
        disks.create_root_disk(None, instance(root_gb=0), path)
        info = qemu_img_info(path)
        self.assertEqual(("qcow2", 64 * MiB), (info["backing-filename-format"],
                                               info["virtual-size"]))
        # grown to the flavor's root size from the base's virtual (not file) size
        disks.create_root_disk(None, instance(root_gb=1), path + "2")
        self.assertEqual(1024 * MiB, qemu_img_info(path + "2")["virtual-size"])

    def test_a_base_of_another_format_is_refused(self):
        def fetch(context, image_id, path, trusted_certs=None):
            subprocess.run(["qemu-img", "create", "-q", "-f", "vpc", path, "64M"],
                           check=True)

        self.useFixture(__import__("fixtures").MockPatchObject(
            images, "fetch_to_raw", mock.Mock(side_effect=fetch)))
        path = os.path.join(self.instances, "disk")
        self.assertRaises(exception.ImageUnacceptable, disks.create_root_disk, None,
                          instance(), path)
        self.assertFalse(os.path.exists(path))

    def test_local_disks_from_the_mappings_else_the_flavor(self):
        bdi = {"ephemerals": [{"size": 2, "guest_format": "ext4", "device_name": "/dev/vdb"},
                              {"size": 1, "device_name": "/dev/vdc"}],
               "swap": {"swap_size": 64, "device_name": "/dev/vdd"}}
        self.assertEqual(
            [disks.LocalDisk("disk.eph0", "ephemeral", 2 * 1024 * MiB, "ext4", "ephemeral0"),
             disks.LocalDisk("disk.eph1", "ephemeral", 1024 * MiB, None, "ephemeral1"),
             disks.LocalDisk("disk.swap", "swap", 64 * MiB, "swap", None)],
            disks.local_disks(instance(ephemeral_gb=3, swap=64), bdi))
        self.assertEqual(
            [disks.LocalDisk("disk.eph0", "ephemeral", 1024 * MiB, None, "ephemeral0"),
             disks.LocalDisk("disk.swap", "swap", 32 * MiB, "swap", None)],
            disks.local_disks(instance(ephemeral_gb=1, swap=32), None))
        self.assertEqual([], disks.local_disks(instance(), None))
        bad = {"ephemerals": [{"size": 1, "guest_format": "ntfs"}]}
        self.assertRaises(exception.InvalidBDMFormat, disks.local_disks, instance(), bad)

    def test_local_disks_are_sparse_private_and_formatted_as_nova_does(self):
        bdi = {"ephemerals": [{"size": 1, "guest_format": "ext4", "device_name": "/dev/vdb"},
                              {"size": 1, "device_name": "/dev/vdc"}],
               "swap": {"swap_size": 16, "device_name": "/dev/vdd"}}
        names = disks.create_local_disks(instance(os_type="linux"), self.instances, bdi)
        self.assertEqual(["disk.eph0", "disk.eph1", "disk.swap"], names)
        self.assertEqual(names, disks.local_disk_names(self.instances))
        paths = [os.path.join(self.instances, n) for n in names]
        for path, size in zip(paths, (1024 * MiB, 1024 * MiB, 16 * MiB), strict=True):
            st = os.stat(path)
            self.assertEqual((0o600, size), (st.st_mode & 0o777, st.st_size))
            self.assertLess(st.st_blocks * 512, size // 4)         # sparse
        self.assertEqual(("ext4", "ephemeral0"), (blkid(paths[0], "TYPE"),
                                                  blkid(paths[0], "LABEL")))
        # no guest format given: nova's default for the os_type (linux: ext4)
        self.assertEqual(("ext4", "ephemeral1"), (blkid(paths[1], "TYPE"),
                                                  blkid(paths[1], "LABEL")))
        self.assertEqual("swap", blkid(paths[2], "TYPE"))

        # a resize copies them to the new directory, still sparse
        dest = os.path.join(self.instances, "new")
        os.mkdir(dest)
        self.assertEqual(names, disks.copy_local_disks(self.instances, dest))
        st = os.stat(os.path.join(dest, "disk.eph0"))
        self.assertEqual(0o600, st.st_mode & 0o777)
        self.assertLess(st.st_blocks * 512, 256 * MiB)
        self.assertEqual("ext4", blkid(os.path.join(dest, "disk.eph0"), "TYPE"))

    def test_no_os_type_gets_nova_s_default_file_system(self):
        flavor_only = instance(ephemeral_gb=1)
        names = disks.create_local_disks(flavor_only, self.instances, None)
        path = os.path.join(self.instances, names[0])
        self.assertEqual(("vfat", "ephemeral0"), (blkid(path, "TYPE"), blkid(path, "LABEL")))
