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


class TestRunReading(testtools.TestCase):
    def test_output_goes_to_the_consumer_as_it_comes(self):
        code, result, err = process.run_reading(
            ["sh", "-c", "printf abc; echo oops >&2; exit 3"], lambda read: read(10))
        self.assertEqual((3, b"abc", "oops\n"), (code, result, err))

    def test_a_consumer_failure_kills_the_command(self):
        def consume(read):
            read(1)
            raise ValueError("bad stream")
        self.assertRaises(ValueError, process.run_reading, ["yes"], consume)

    def test_timeout(self):
        code, result, err = process.run_reading(["sleep", "30"], lambda read: read(),
                                                timeout=0.3)
        self.assertIsNone(code)
        self.assertIn("timed out", err)
