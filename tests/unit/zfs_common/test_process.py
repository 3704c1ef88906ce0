"""zfs_common.process runs every command in the C locale, whatever the service's is."""
import os

import fixtures
import testtools

from zfs_common import process


class TestCLocale(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.EnvironmentVariable("LC_ALL", "de_DE.UTF-8"))
        self.useFixture(fixtures.EnvironmentVariable("LANG", "de_DE.UTF-8"))

    def test_run(self):
        code, out, _err = process.run(["env"])
        self.assertEqual(0, code)
        self.assertIn("LC_ALL=C", out.splitlines())

    def test_both_ends_of_a_pipe(self):
        # grep exits 1 without a match: the producer's environment through the pipe,
        # then the consumer's own
        code, err = process.run_pipe(["env"], ["grep", "-qx", "LC_ALL=C"])
        self.assertEqual(0, code, err)
        code, err = process.run_pipe(["true"], ["grep", "-qzx", "LC_ALL=C",
                                                "/proc/self/environ"])
        self.assertEqual(0, code, err)

    def test_run_with_fds(self):
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        with os.fdopen(write_end, "wb", closefd=True) as w:
            code, err = process.run_with_fds(["env"], stdout=w.fileno())
        self.assertEqual(0, code, err)
        self.assertIn(b"LC_ALL=C", os.read(read_end, 1 << 16).splitlines())
