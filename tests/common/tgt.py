"""A userspace iSCSI target for tests: Debian's ``tgtd`` on loopback, on a port and a
control port of its own, started by the test and stopped by its PID (never by name)."""
import os
import random
import signal
import socket
import subprocess
import time

import fixtures

TGTD = "/usr/sbin/tgtd"
TGTADM = "/usr/sbin/tgtadm"


def available():
    return os.access(TGTD, os.X_OK) and os.access(TGTADM, os.X_OK) and os.getuid() == 0


class Target(fixtures.Fixture):
    """``tgtd`` serving ``luns`` (backing files) as one target ``iqn`` on
    127.0.0.1:``port``, with CHAP (``user``/``password``) if given."""

    def __init__(self, workdir, iqn, luns, user=None, password=None):
        super().__init__()
        self.workdir, self.iqn, self.luns = workdir, iqn, luns
        self.user, self.password = user, password

    def _free_port(self):
        for _ in range(50):
            port = random.randint(30000, 60000)
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue
        raise RuntimeError("no free port")

    def adm(self, *args):
        return subprocess.run([TGTADM, "-C", str(self.control), "--lld", "iscsi"]
                              + list(args), check=True, capture_output=True,
                              text=True).stdout

    def _setUp(self):
        self.log = open(os.path.join(self.workdir, "tgtd.log"), "ab")
        self.addCleanup(self.log.close)
        self.proc = None
        self.addCleanup(self._stop)
        for _attempt in range(3):       # a port taken meanwhile: another pair of ports
            if self._start():
                break
        else:
            with open(self.log.name, "rb") as f:
                raise RuntimeError("tgtd did not start: %s" % f.read()[-2000:])
        self.adm("--op", "new", "--mode", "target", "--tid", "1", "-T", self.iqn)
        for lun, path in enumerate(self.luns, start=1):
            self.adm("--op", "new", "--mode", "logicalunit", "--tid", "1",
                     "--lun", str(lun), "-b", path)
        self.adm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")
        if self.user:
            self.adm("--op", "new", "--mode", "account", "--user", self.user,
                     "--password", self.password)
            self.adm("--op", "bind", "--mode", "account", "--tid", "1",
                     "--user", self.user)
        self.portal = "127.0.0.1:%d" % self.port

    def _start(self):
        self._stop()
        self.port = self._free_port()
        self.control = random.randint(1000, 30000)     # tgtd takes at most 32767
        self.proc = subprocess.Popen(
            [TGTD, "-f", "-C", str(self.control), "--iscsi",
             "portal=127.0.0.1:%d" % self.port], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.adm("--op", "show", "--mode", "sys")
                return True
            except subprocess.CalledProcessError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    return False
                time.sleep(0.2)

    def _stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def connection_info(self, volume_id, lun=1, password=None):
        """What cinder's iSCSI drivers give nova for LUN ``lun``."""
        data = {"target_portal": self.portal, "target_iqn": self.iqn, "target_lun": lun,
                "target_discovered": False, "volume_id": volume_id}
        if self.user:
            data.update(auth_method="CHAP", auth_username=self.user,
                        auth_password=password or self.password)
        return {"driver_volume_type": "iscsi", "data": data, "serial": volume_id}
