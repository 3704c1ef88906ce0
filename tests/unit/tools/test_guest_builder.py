"""The guest image builder's cache key follows its inputs and nothing else."""
import os
import shutil
import subprocess

import fixtures
import testtools

from tests.common import paths


class TestTinyGuestCacheKey(testtools.TestCase):
    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.tools = os.path.join(tmp, "guest")
        shutil.copytree(os.path.join(paths.TOOLS, "guest"), self.tools)
        self.cache = os.path.join(tmp, "cache")

    def key(self):
        script = os.path.join(self.tools, "build-tiny-guest.sh")
        res = subprocess.run([script, "--key", self.cache], capture_output=True, text=True,
                             check=True)
        return res.stdout.strip()

    def test_key_is_stable_and_builds_nothing(self):
        self.assertEqual(self.key(), self.key())
        self.assertRegex(self.key(), r"^[0-9a-f]{16}$")
        self.assertFalse(os.path.exists(os.path.join(self.cache, "tiny-guest")))

    def test_key_changes_with_a_guest_file(self):
        before = self.key()
        with open(os.path.join(self.tools, "tiny", "init"), "a") as f:
            f.write("# changed\n")
        self.assertNotEqual(before, self.key())

    def test_key_changes_with_the_builder(self):
        before = self.key()
        with open(os.path.join(self.tools, "build-tiny-guest.sh"), "a") as f:
            f.write("# changed\n")
        self.assertNotEqual(before, self.key())
