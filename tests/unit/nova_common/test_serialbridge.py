"""The serial bridge on real sockets: a UNIX-socket serial port (served here as Cloud
Hypervisor serves it: a listener the hypervisor re-creates) logged and served over TCP."""
import os
import socket
import threading
import time

import testtools

from nova_common import consolelog
from nova_common import serialbridge


def recv_until(conn, text, timeout=10):
    out, deadline = b"", time.monotonic() + timeout
    conn.settimeout(timeout)
    while text not in out:
        if time.monotonic() > deadline:
            raise AssertionError("%r not received; got %r" % (text, out))
        out += conn.recv(4096)
    return out


class TestSerialBridge(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(__import__("fixtures").TempDir()).path
        self.path = os.path.join(self.dir, "serial.sock")
        self.log = os.path.join(self.dir, consolelog.LOG)

    def serve(self):
        """A 'hypervisor' listening on the serial socket; returns the accepted conn."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.path)
        server.listen(1)
        self.addCleanup(server.close)
        return server

    def start(self, listener):
        bridge = serialbridge.Bridge(self.path, self.log, 64 * 1024, listener)
        thread = threading.Thread(target=bridge.run, daemon=True)
        thread.start()

        def stop():
            bridge.stopped = True
            thread.join(5)
        self.addCleanup(stop)
        return bridge

    def test_logs_and_relays_both_ways_and_reconnects(self):
        listener, port = serialbridge.listen("127.0.0.1", range(47000, 47100))
        self.assertIsNotNone(listener)
        serialbridge.write_port(self.dir, port)
        self.assertEqual(port, serialbridge.read_port(self.dir))
        self.start(listener)             # before the socket exists, as at a VMM's start
        server = self.serve()
        guest, _ = server.accept()
        guest.sendall(b"boot line\n")
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(client.close)
        time.sleep(0.2)                 # the bridge accepted it (no timing asserted)
        guest.sendall(b"login: ")
        recv_until(client, b"login: ")
        client.sendall(b"uname\n")
        guest.settimeout(10)
        self.assertEqual(b"uname\n", guest.recv(100))
        # the hypervisor rebuilds its console devices (a reboot): a new connection
        guest.close()
        server.close()
        os.unlink(self.path)
        server = self.serve()
        guest, _ = server.accept()
        guest.sendall(b"second boot\n")
        recv_until(client, b"second boot\n")
        for _ in range(100):
            with open(self.log, "rb") as f:
                logged = f.read()
            if b"second boot" in logged:
                break
            time.sleep(0.05)
        self.assertEqual(b"boot line\nlogin: second boot\n", logged)
        # a new TCP client replaces the old one
        other = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(other.close)
        recv_until_closed = client.recv(100)
        self.assertEqual(b"", recv_until_closed)
        guest.sendall(b"to the new one\n")
        recv_until(other, b"to the new one\n")

    def test_no_free_port(self):
        taken, port = serialbridge.listen("127.0.0.1", range(47100, 47200))
        self.addCleanup(taken.close)
        self.assertEqual((None, None), serialbridge.listen("127.0.0.1",
                                                           range(port, port + 1)))

    def test_log_only_without_a_listener(self):
        self.start(None)
        server = self.serve()
        guest, _ = server.accept()
        guest.sendall(b"only logged\n")
        for _ in range(100):
            if os.path.exists(self.log) and os.path.getsize(self.log) == 12:
                break
            time.sleep(0.05)
        with open(self.log, "rb") as f:
            self.assertEqual(b"only logged\n", f.read())
        self.assertIsNone(serialbridge.read_port(self.dir))
