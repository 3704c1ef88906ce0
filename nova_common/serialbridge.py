"""A guest serial port served on a UNIX socket (Cloud Hypervisor's serial ``Socket``
mode) made into what nova expects of a serial port: every byte the guest writes appended
to the bounded console log (``nova_common.consolelog``, nova's console output), and a raw
TCP endpoint on ``[serial_console]proxyclient_address`` and a free port of
``[serial_console]port_range`` for nova's serial console proxy (its ``ConsoleSerial``),
as QEMU's TCP chardev is for the QMP driver.

It runs in the guest's supervisor (``nova_common.supervisor``: the guest's uid, outliving
nova-compute) as one thread with one ``select`` loop. The hypervisor creates the UNIX
socket after it starts (at ``vm.create``) and again when it rebuilds its console devices
(a reboot): the bridge connects when it appears and again whenever the connection ends.
One TCP client at a time; a new one replaces the old (as Cloud Hypervisor does for its
socket clients). The chosen port is written to ``serial.port`` in the instance directory
for the driver to hand out. Only the standard library is used.
"""
import ipaddress
import os
import select
import socket

from nova_common import consolelog

PORT_FILE = "serial.port"
RETRY_SECONDS = 0.05
CHUNK = 65536


def listen(host, ports):
    """A listening TCP socket on ``host`` and the first free port of ``ports`` (a range),
    and that port; ``(None, None)`` when every port is taken."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    for port in ports:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            continue
        sock.listen(1)
        return sock, port
    return None, None


def write_port(directory, port):
    tmp = os.path.join(directory, PORT_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o660)
    os.write(fd, b"%d\n" % port)
    os.close(fd)
    os.rename(tmp, os.path.join(directory, PORT_FILE))


def read_port(directory):
    """The TCP port the guest's bridge listens on, None without one."""
    try:
        with open(os.path.join(directory, PORT_FILE)) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


class Bridge:
    def __init__(self, unix_path, log_path, max_bytes, listener=None):
        self.unix_path = unix_path
        self.writer = consolelog.Writer(log_path, max_bytes)
        self.listener = listener
        self.serial = None
        self.client = None
        self.stopped = False

    def _connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            return None
        return sock

    def _drop_client(self):
        if self.client is not None:
            self.client.close()
            self.client = None

    def _log(self, data):
        try:
            self.writer.write(data)
        except FileNotFoundError:
            self.stopped = True      # the instance directory is gone
        except OSError:
            pass                     # e.g. a full disk: drop it, never block the guest

    def step(self, timeout=RETRY_SECONDS):
        """One round of the loop (``run`` repeats it)."""
        if self.serial is None:
            self.serial = self._connect()
        readers = [s for s in (self.serial, self.listener, self.client) if s is not None]
        if not readers:
            select.select([], [], [], timeout)
            return
        ready, _w, _x = select.select(readers, [], [], timeout)
        if self.listener is not None and self.listener in ready:
            conn, _addr = self.listener.accept()
            self._drop_client()
            self.client = conn
        if self.serial is not None and self.serial in ready:
            try:
                data = self.serial.recv(CHUNK)
            except OSError:
                data = b""
            if not data:                       # the hypervisor closed it: reconnect
                self.serial.close()
                self.serial = None
                return
            self._log(data)
            if self.client is not None:
                try:
                    self.client.sendall(data)
                except OSError:
                    self._drop_client()
        if self.client is not None and self.client in ready:
            try:
                data = self.client.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                self._drop_client()
            elif self.serial is not None:
                try:
                    self.serial.sendall(data)
                except OSError:
                    pass                       # the reconnect above picks it up again

    def run(self):
        try:
            while not self.stopped:
                self.step()
                if self.serial is None and not self.stopped:
                    select.select([], [], [], RETRY_SECONDS)
        finally:
            self.close()

    def close(self):
        self._drop_client()
        for sock in (self.serial, self.listener):
            if sock is not None:
                sock.close()
        self.writer.close()
