"""The monitor against a real QEMU (``-machine none``: no guest, starts in ~50 ms)."""
import asyncio
import gc
import logging
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time

import fixtures
import testtools

from nova_qmp import monitor


class TestMonitor(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.events = queue.Queue()
        self.monitor = monitor.Monitor(lambda uuid, name, data: self.events.put((uuid, name)),
                                       timeout=10)
        self.addCleanup(self.monitor.close)

    def start_qemu(self, *extra):
        sock, pidfile = os.path.join(self.dir, "qmp.sock"), os.path.join(self.dir, "pid")
        subprocess.run(["qemu-system-x86_64", "-machine", "none", "-display", "none",
                        "-nodefaults", "-daemonize", "-pidfile", pidfile,
                        "-qmp", "unix:%s,server=on,wait=off" % sock] + list(extra),
                       check=True, capture_output=True, timeout=30)
        with open(pidfile) as f:
            pid = int(f.read())
        self.addCleanup(self._kill, pid)
        return sock, pid

    @staticmethod
    def _kill(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def event(self):
        return self.events.get(timeout=10)

    def test_commands_events_and_a_lost_connection(self):
        sock, pid = self.start_qemu()
        self.monitor.connect("u1", sock)
        self.assertTrue(self.monitor.connected("u1"))
        self.assertEqual("running", self.monitor.execute("u1", "query-status")["status"])
        self.monitor.execute("u1", "stop")
        self.assertEqual(("u1", "STOP"), self.event())
        self.monitor.execute("u1", "cont")
        self.assertEqual(("u1", "RESUME"), self.event())
        self.assertRaises(monitor.MonitorError, self.monitor.execute, "u1", "no-such-cmd")
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(("u1", "DISCONNECTED"), self.event())
        self.assertFalse(self.monitor.connected("u1"))
        self.assertRaises(monitor.MonitorError, self.monitor.execute, "u1", "query-status")

    def test_a_command_and_the_event_it_causes(self):
        sock, _pid = self.start_qemu()
        self.monitor.connect("u1", sock)
        data = self.monitor.execute_and_wait("u1", "stop", None, "STOP", lambda d: True, 10)
        self.assertEqual({}, data)
        # an event that does not match is not taken for the one waited for
        self.assertIsNone(self.monitor.execute_and_wait(
            "u1", "cont", None, "RESUME", lambda d: d.get("x") == 1, 1))

    def test_a_wait_for_an_event_ends_when_qemu_dies(self):
        sock, pid = self.start_qemu()
        self.monitor.connect("u1", sock)
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        start = time.monotonic()
        self.assertRaises(monitor.MonitorError, self.monitor.execute_and_wait, "u1",
                          "query-status", None, "MIGRATION", lambda d: True, 300)
        self.assertLess(time.monotonic() - start, 60)     # not the 300 s asked for

    def test_a_state_reached_before_the_wait_is_seen_in_the_reply(self):
        sock, _pid = self.start_qemu()
        self.monitor.connect("u1", sock)
        self.monitor.execute("u1", "stop")
        self.event()
        # the STOP event is gone already: the reply says it is paused
        data = self.monitor.execute_and_wait(
            "u1", "query-status", None, "STOP", lambda d: True, 30,
            reply_match=lambda r: r["status"] == "paused")
        self.assertEqual("paused", data["status"])

    def test_a_file_descriptor_passed_to_qemu(self):
        sock, _pid = self.start_qemu()
        self.monitor.connect("u1", sock)
        with tempfile.TemporaryFile(dir=self.dir) as f:
            self.monitor.execute_with_fd("u1", f.fileno(), "state", "migrate",
                                         {"uri": "fd:state"})
            for _ in range(200):
                status = self.monitor.execute("u1", "query-migrate")["status"]
                if status == "completed":
                    break
                __import__("time").sleep(0.05)
            self.assertEqual("completed", status)
            self.assertGreater(os.fstat(f.fileno()).st_size, 0)

    def test_no_socket(self):
        self.assertRaises(monitor.MonitorError, self.monitor.connect, "u2",
                          os.path.join(self.dir, "missing.sock"))
        self.assertRaises(monitor.MonitorError, self.monitor.execute, "u2", "query-status")

    def test_no_task_outlives_its_connection(self):
        """Connections closed by the driver and lost with their QEMU leave no asyncio task
        behind: when the loop ends without close() (as at nova-compute's exit) nothing
        pending is destroyed, so asyncio logs nothing."""
        log = self.useFixture(fixtures.FakeLogger(name="asyncio", level=logging.DEBUG))
        events = queue.Queue()
        mon = monitor.Monitor(lambda uuid, name, data: events.put(name), timeout=10)
        loop, thread = mon._loop, mon._thread
        try:
            sock, pid = self.start_qemu()
            for _ in range(3):
                mon.connect("u1", sock)
                mon.execute("u1", "query-status")
                mon.disconnect("u1")
            mon.execute_soon("u1", "query-status")      # no connection: nothing to run
            mon.connect("u1", sock)
            os.kill(pid, signal.SIGKILL)
            self.assertEqual("DISCONNECTED", events.get(timeout=10))
            self.assertFalse(mon.connected("u1"))
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        pending = [repr(t) for t in asyncio.all_tasks(loop) if not t.done()]
        del mon
        gc.collect()
        loop.close()
        self.assertNotIn("Task was destroyed", log.output)
        self.assertEqual([], pending)
