"""Guests outlive nova-compute under a real systemd: a systemd as PID 1 of its own
namespaces (tests/common/systemd_ns.py) runs a stand-in for nova-compute.service that
starts a guest through the privileged launcher. With ``launcher = auto`` (systemd seen)
the guest gets a transient unit of its own in hci-guests.slice and survives restarts
and stops of the compute service; with ``launcher = detached`` it stays in the
service's cgroup and is killed with it, which is why the systemd path exists."""
import os
import shutil
import sys
import tempfile
import time

from oslo_utils import uuidutils
import testtools

from tests.common import deployment
from tests.common import systemd_ns

SERVICE = "fake-nova-compute"


class TestGuestSupervision(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(deployment.MachineLock())
        self.sd = self.useFixture(systemd_ns.SystemdNamespace())
        self.instances = tempfile.mkdtemp(prefix="hci-sd-inst-", dir="/var/lib")
        self.addCleanup(shutil.rmtree, self.instances, True)
        os.chmod(self.instances, 0o711)

    def start_compute(self, uuid, mode):
        self.sd.run("systemd-run", "--quiet", "--unit", SERVICE,
                    "--property", "WorkingDirectory=" + deployment.REPO,
                    "--property", "Environment=PYTHONPATH=" + deployment.REPO, "--",
                    sys.executable, "-m", "tests.functional.deploy.compute_stand_in",
                    self.instances, uuid, mode)
        pidfile = os.path.join(self.instances, uuid, "qemu.pid")
        deadline = time.monotonic() + 60
        while not (os.path.exists(pidfile) and open(pidfile).read().strip()):
            if time.monotonic() > deadline:
                self.fail("no guest: %s" % self.sd.run(
                    "systemctl", "status", SERVICE, "--no-pager", check=False).stdout)
            time.sleep(0.1)
        with open(pidfile) as f:
            return int(f.read())          # the namespace's PID of the QEMU

    def cgroup(self, pid):
        out = self.sd.run("cat", "/proc/%d/cgroup" % pid).stdout
        return next(line.split(":", 2)[2] for line in out.splitlines()
                    if line.startswith("0::"))

    def test_a_guest_in_its_own_unit_outlives_restarts_of_the_compute_service(self):
        uuid = uuidutils.generate_uuid()
        qemu = self.start_compute(uuid, "auto")
        unit = "hci-guest-%s.service" % uuid
        self.assertEqual("/hci.slice/hci-guests.slice/" + unit, self.cgroup(qemu))
        self.sd.run("systemctl", "restart", SERVICE)
        self.sd.run("systemctl", "stop", SERVICE)
        self.assertTrue(self.sd.alive(qemu))
        self.assertEqual("active", self.sd.run("systemctl", "is-active", unit,
                                               check=False).stdout.strip())
        # a guest's stop is its unit's: the supervisor passes SIGTERM on to QEMU, which
        # exits, and logs how it ended
        self.sd.run("systemctl", "stop", unit)
        self.assertFalse(self.sd.alive(qemu))
        with open(os.path.join(self.instances, uuid, "hypervisor.log")) as f:
            log = f.read()
        self.assertIn("terminating on signal 15", log)
        self.assertIn("supervisor: qemu-system-x86_64 (pid %d) ended" % qemu, log)

    def test_a_detached_guest_in_the_service_cgroup_dies_with_it(self):
        uuid = uuidutils.generate_uuid()
        qemu = self.start_compute(uuid, "detached")
        self.assertEqual("/system.slice/%s.service" % SERVICE, self.cgroup(qemu))
        self.sd.run("systemctl", "stop", SERVICE)
        deadline = time.monotonic() + 30
        while self.sd.alive(qemu) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(self.sd.alive(qemu))
