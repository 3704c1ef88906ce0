"""A QEMU guest under TCG for functional tests, stopped by PID in cleanup (also on failure).

Used for the test guest images themselves and as the base of other guest fixtures; the
QMP socket is reached with ``qemu.qmp``'s synchronous legacy client.
"""
import os
import socket
import subprocess
import threading
import time

import fixtures
from qemu.qmp import legacy

from tests.common import process

QEMU = os.environ.get("HCI_QEMU", "qemu-system-x86_64")


class GuestFailed(Exception):
    """The guest did not print what was expected; carries the console tail."""


class QemuGuest(fixtures.Fixture):
    """Run ``qemu-system-x86_64 -accel tcg`` with a serial log and a QMP socket.

    :param args: the machine-specific arguments (drives, kernel, devices).
    :param machine: QEMU machine type.
    """

    def __init__(self, args, machine="pc", memory_mb=256, smp=1, accel="tcg", cpu=None,
                 interactive=False):
        """:param interactive: the serial port is also a UNIX socket, for ``type()``."""
        super().__init__()
        self.interactive = interactive
        self.args = list(args) + (["-cpu", cpu] if cpu else [])
        self.accel = accel
        self.machine = machine
        self.memory_mb = memory_mb
        self.smp = smp
        self.proc = None
        self._qmp = None
        self._serial = None

    def _setUp(self):
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.console = os.path.join(self.workdir, "console.log")
        self.qmp_path = os.path.join(self.workdir, "qmp.sock")
        argv = [QEMU, "-machine", self.machine, "-accel", self.accel, "-m", str(self.memory_mb),
                "-smp", str(self.smp), "-nodefaults", "-display", "none", "-no-reboot",
                "-sandbox", "on", "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        if self.interactive:
            self.serial_path = os.path.join(self.workdir, "serial.sock")
            argv += ["-chardev", "socket,id=ser0,path=%s,server=on,wait=off,logfile=%s"
                     % (self.serial_path, self.console), "-serial", "chardev:ser0"]
        else:
            argv += ["-serial", "file:" + self.console]
        argv += self.args
        with open(os.path.join(self.workdir, "qemu.out"), "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT,
                                         preexec_fn=process.die_with_parent)  # noqa: PLW1509
        self.addCleanup(self._stop)

    def type(self, line):
        """Send ``line`` (and a newline) to the guest's console shell.

        One connection for the guest's lifetime, whose output a thread reads and drops
        (the log file has it): QEMU stops the console of a client that does not read,
        and drops what it has not yet passed to the guest when the client goes.
        """
        if self._serial is None:
            self._serial = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._serial.connect(self.serial_path)
            threading.Thread(target=self._drain, args=(self._serial,), daemon=True).start()
        self._serial.sendall(line.encode() + b"\n")

    @staticmethod
    def _drain(sock):
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    def stop(self):
        """Stop QEMU now (idempotent; cleanup does it too)."""
        self._stop()

    def _stop(self):
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        if self._qmp is not None:
            try:
                self._qmp.close()
            except Exception:  # noqa: S110 - the guest may already be gone (EOF)
                pass
            self._qmp = None
        process.stop(self.proc)

    def console_text(self):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_for(self, text, timeout=120):
        """Wait until ``text`` appears on the serial console; return the console so far."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.console_text()
            if text in log:
                return log
            if self.proc.poll() is not None:
                with open(os.path.join(self.workdir, "qemu.out"), errors="replace") as f:
                    out = f.read()
                raise GuestFailed("QEMU exited (rc=%s) before %r\n%s\n%s"
                                  % (self.proc.returncode, text, out, log[-3000:]))
            if time.monotonic() > deadline:
                raise GuestFailed("no %r after %ss:\n%s" % (text, timeout, log[-3000:]))
            time.sleep(0.1)

    def qmp(self, command, **arguments):
        if self._qmp is None:
            self._qmp = legacy.QEMUMonitorProtocol(self.qmp_path)
            self._qmp.connect()
        return self._qmp.cmd(command, **arguments)

    def wait_exit(self, timeout=60):
        return self.proc.wait(timeout)
