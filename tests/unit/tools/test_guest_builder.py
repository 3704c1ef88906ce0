"""The guest image builders' cache keys follow their inputs and nothing else."""
import os
import shutil
import subprocess

import ddt
import fixtures
import testtools

from tests.common import paths

BUILDERS = {"tiny": "build-tiny-guest.sh", "zfs": "build-zfs-guest.sh"}


@ddt.ddt
class TestGuestCacheKey(testtools.TestCase):
    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.tools = os.path.join(tmp, "guest")
        shutil.copytree(os.path.join(paths.TOOLS, "guest"), self.tools)
        self.cache = os.path.join(tmp, "cache")

    def key(self, builder, **env):
        script = os.path.join(self.tools, BUILDERS[builder])
        res = subprocess.run([script, "--key", self.cache], capture_output=True, text=True,
                             env=dict(os.environ, **env))
        self.assertEqual(0, res.returncode, res.stderr)
        return res.stdout.strip()

    def touch(self, *parts):
        with open(os.path.join(self.tools, *parts), "a") as f:
            f.write("# changed\n")

    @ddt.data("tiny", "zfs")
    def test_key_is_stable_and_builds_nothing(self, builder):
        self.assertEqual(self.key(builder), self.key(builder))
        self.assertRegex(self.key(builder), r"^[0-9a-f]{16}$")
        self.assertFalse(os.path.exists(self.cache))

    @ddt.data(("tiny", "init"), ("zfs", "zinit"))
    @ddt.unpack
    def test_key_changes_with_a_guest_file(self, builder, guest_file):
        before = self.key(builder)
        self.touch(builder, guest_file)
        self.assertNotEqual(before, self.key(builder))

    @ddt.data("tiny", "zfs")
    def test_key_changes_with_the_builder_and_its_library(self, builder):
        before = self.key(builder)
        self.touch(BUILDERS[builder])
        after_builder = self.key(builder)
        self.assertNotEqual(before, after_builder)
        self.touch("lib.sh")
        self.assertNotEqual(after_builder, self.key(builder))

    def test_zfs_key_changes_with_the_openzfs_suite(self):
        self.assertNotEqual(self.key("zfs", HCI_ZFS_SUITE="bookworm"),
                            self.key("zfs", HCI_ZFS_SUITE="bookworm-backports"))

    def test_zfs_rejects_an_unknown_suite(self):
        res = subprocess.run([os.path.join(self.tools, BUILDERS["zfs"]), "--key", self.cache],
                             capture_output=True, text=True,
                             env=dict(os.environ, HCI_ZFS_SUITE="sid"))
        self.assertEqual(2, res.returncode)
