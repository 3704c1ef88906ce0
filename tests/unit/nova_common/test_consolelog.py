import os
import time

from nova_common import consolelog
from nova_common import supervisor
from tests.unit.nova_common import base

CAP = 64 * 1024


class TestConsoleLog(base.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.instances
        self.fifo = self.start()
        self.addCleanup(self._stop_logger)

    def start(self):
        """The guest supervisor's logger thread on a fresh FIFO."""
        supervisor._console_logger(self.dir, CAP)
        return os.path.join(self.dir, consolelog.FIFO)

    def _stop_logger(self):
        # a logger exits when its FIFO is gone (the directory is removed after the test)
        if os.path.exists(self.fifo):
            os.unlink(self.fifo)

    def _reader_gone(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:          # ENXIO: nobody reads the FIFO any more
                return True
            time.sleep(0.05)
        return False

    def test_flood_is_bounded_and_the_tail_is_the_newest_output(self):
        self.assertEqual(os.path.join(self.dir, consolelog.FIFO), self.fifo)
        self.assertEqual(0o600, os.stat(self.fifo).st_mode & 0o777)
        stream = b"".join(b"line %d of the flood\n" % i for i in range(100000))   # 2 MB
        fd = os.open(self.fifo, os.O_WRONLY)       # a reader is there: does not block
        for i in range(0, len(stream), 4096):
            os.write(fd, stream[i:i + 4096])
        os.close(fd)
        self.assertTrue(self._reader_gone())       # the writer is gone: so is the logger
        log = os.path.join(self.dir, consolelog.LOG)
        rotated = os.path.join(self.dir, consolelog.ROTATED)
        self.assertLessEqual(os.path.getsize(log), CAP)
        self.assertEqual(CAP, os.path.getsize(rotated))
        self.assertEqual(0, os.stat(log).st_mode & 0o007)      # nobody else
        with open(rotated, "rb") as a, open(log, "rb") as b:
            kept = a.read() + b.read()
        self.assertTrue(stream.endswith(kept))     # nothing lost within what is kept
        self.assertEqual(kept, consolelog.tail(self.dir, consolelog.MAX_CONSOLE_BYTES))
        self.assertEqual(stream[-CAP:], consolelog.tail(self.dir, CAP))
        self.assertEqual(stream[-100:], consolelog.tail(self.dir, 100))

    def test_a_new_start_replaces_the_fifo_and_the_old_logger_exits(self):
        fd = os.open(self.fifo, os.O_WRONLY)
        os.write(fd, b"first boot\n")
        os.close(fd)
        self.assertTrue(self._reader_gone())
        self.start()
        fd = os.open(self.fifo, os.O_WRONLY)
        os.write(fd, b"second boot\n")
        os.close(fd)
        self.assertTrue(self._reader_gone())
        self.assertEqual(b"first boot\nsecond boot\n", consolelog.tail(self.dir, 1000))

    def test_a_logger_whose_fifo_is_removed_exits_without_a_writer(self):
        # QEMU never started (a failed spawn removes the directory)
        st = os.stat(self.fifo)
        os.unlink(self.fifo)
        os.mkfifo(self.fifo, 0o600)       # someone else's FIFO now: nobody reads it
        self.assertNotEqual(st.st_ino, os.stat(self.fifo).st_ino)
        self.assertTrue(self._reader_gone())

    def test_tail_of_no_log(self):
        self.assertEqual(b"", consolelog.tail(os.path.join(self.dir, "none"), 100))


class TestWriter(base.TestCase):
    def test_rotation_keeps_one_older_file(self):
        path = os.path.join(self.instances, "log")
        w = consolelog.Writer(path, 10)
        w.write(b"0123456789abcdefghijklmnopqrstuvwxyz")
        w.close()
        with open(path + ".0", "rb") as f:
            self.assertEqual(b"klmnopqrst", f.read())
        with open(path, "rb") as f:
            self.assertEqual(b"uvwxyz", f.read())
        w = consolelog.Writer(path, 10)            # appends after a restart
        w.write(b"1234")
        w.close()
        with open(path, "rb") as f:
            self.assertEqual(b"uvwxyz1234", f.read())
