"""The privileged launcher refuses what it must not do (called directly, as the privsep
daemon would), and device ACLs give a volume to its guest uid only."""
import os
import signal
import subprocess
import sys

from oslo_utils import uuidutils

from nova_common import confine
from nova_common import launcher
from tests.unit.nova_common import base

GUEST, OTHER, GID = 1900000010, 1900000011, 1900000000


def as_uid(uid, *argv):
    return subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(GID),
                           "--clear-groups", *argv], capture_output=True)


class TestRefusals(base.TestCase):
    def setUp(self):
        super().setUp()
        self.uuid = uuidutils.generate_uuid()
        os.makedirs(os.path.join(self.instances, self.uuid))
        self.log = os.path.join(self.instances, self.uuid, "hypervisor.log")
        self.flags(launcher="detached", group="hci_guests")
        self.qemu = "/usr/bin/qemu-system-x86_64"

    def test_start_guest(self):
        ok = [self.qemu, "-uuid", self.uuid]
        for args in (("../etc", ok, GUEST, self.log),
                     (self.uuid, ok, 0, self.log),                   # root
                     (self.uuid, ok, 1000, self.log),                # a login user
                     (self.uuid, ok, True, self.log),
                     (self.uuid, ["/bin/sh", "-c", "id", self.uuid], GUEST, self.log),
                     (self.uuid, [self.qemu, "-version"], GUEST, self.log),
                     (self.uuid, ok, GUEST, "/etc/passwd"),
                     (self.uuid, ok, GUEST, os.path.join(self.instances, self.uuid, "..",
                                                         "log")),
                     (self.uuid, [self.qemu, "x\0y", self.uuid], GUEST, self.log)):
            self.assertRaises(launcher.Refused, launcher.start_guest, *args)
        self.flags(launcher="systemd", slice="../system.slice", group="hci_guests")
        self.assertRaises(launcher.Refused, launcher.start_guest, self.uuid, ok, GUEST,
                          self.log)

    def test_start_guest_serial_socket(self):
        # Cloud Hypervisor's command line names the instance by its directory only
        ch = "/usr/bin/cloud-hypervisor"
        sock = os.path.join(self.instances, self.uuid, "ch.sock")
        argv = [ch, "--api-socket", "path=" + sock]
        serial = os.path.join(self.instances, self.uuid, "serial.sock")
        for kw in ({"console_max": 65536, "serial_socket": "/tmp/serial.sock"},
                   {"serial_socket": serial}):                    # no console log size
            self.assertRaises(launcher.Refused, launcher.start_guest, self.uuid, argv,
                              GUEST, self.log, **kw)
        other = os.path.join(self.instances, uuidutils.generate_uuid(), "ch.sock")
        self.assertRaises(launcher.Refused, launcher.start_guest, self.uuid,
                          [ch, "--api-socket", "path=" + other], GUEST, self.log)
        self.flags(enabled=True, proxyclient_address="localhost; rm", group="serial_console")
        self.assertRaises(launcher.Refused, launcher.start_guest, self.uuid, argv, GUEST,
                          self.log, console_max=65536, serial_socket=serial)
        # the TCP endpoint comes from nova.conf, never from the caller
        self.flags(proxyclient_address="127.0.0.1", port_range="30000:30009",
                   group="serial_console")
        self.assertEqual(["--serial-socket", serial, "--serial-listen", "127.0.0.1",
                          "--serial-ports", "30000:30009"],
                         launcher._serial_args(self.uuid, serial))

    def test_signal_guest_only_signals_the_instance_s_guest_processes(self):
        self.assertRaises(launcher.Refused, launcher.signal_guest, self.uuid,
                          signal.SIGHUP)
        self.assertRaises(launcher.Refused, launcher.signal_guest, "*", signal.SIGKILL)
        # a root process naming the instance is not a guest process
        root = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                                 self.uuid])
        self.addCleanup(root.wait)
        self.addCleanup(root.kill)
        guest = subprocess.Popen(["setpriv", "--reuid", str(GUEST), "--regid", str(GID),
                                  "--clear-groups", sys.executable, "-c",
                                  "import time; time.sleep(30)", self.uuid])
        self.addCleanup(guest.wait)
        self.addCleanup(lambda: guest.poll() is None and guest.kill())
        for _ in range(100):
            if launcher.guest_processes(self.uuid):
                break
            __import__("time").sleep(0.02)
        self.assertEqual([guest.pid], launcher.guest_processes(self.uuid))
        self.assertEqual(1, launcher.signal_guest(self.uuid, signal.SIGKILL))
        self.assertEqual(-9, guest.wait(10))
        self.assertIsNone(root.poll())

    def test_signal_guest_with_a_pid_spares_the_instance_s_other_qemu(self):
        # two compute services of one machine during a migration: one QEMU each
        procs = []
        for _ in range(2):
            p = subprocess.Popen(["setpriv", "--reuid", str(GUEST), "--regid", str(GID),
                                  "--clear-groups", sys.executable, "-c",
                                  "import time; time.sleep(30)", self.uuid])
            self.addCleanup(p.wait)
            self.addCleanup(lambda p=p: p.poll() is None and p.kill())
            procs.append(p)
        for _ in range(100):
            if len(launcher.guest_processes(self.uuid)) == 2:
                break
            __import__("time").sleep(0.02)
        source, destination = procs
        for bad in (0, 1, "1234", True, -5):
            self.assertRaises(launcher.Refused, launcher.signal_guest, self.uuid,
                              signal.SIGKILL, bad)
        self.assertEqual(0, launcher.signal_guest(self.uuid, signal.SIGKILL, os.getpid()))
        self.assertEqual(1, launcher.signal_guest(self.uuid, signal.SIGKILL, source.pid))
        self.assertEqual(-9, source.wait(10))
        self.assertIsNone(destination.poll())

    def test_grant_device_refusals(self):
        path = os.path.join(self.instances, "file")
        open(path, "w").close()
        self.assertRaises(launcher.Refused, launcher.grant_device, path, GUEST)
        self.assertRaises(launcher.Refused, launcher.grant_device, "/dev/null", GUEST)
        self.assertRaises(launcher.Refused, launcher.grant_device, "/dev/loop0", 0)
        root_dev = os.stat("/").st_dev
        with open("/proc/self/mountinfo") as f:
            mounted = f.read()
        self.assertIn("%d:%d" % (os.major(root_dev), os.minor(root_dev)), mounted)


class TestTun(base.TestCase):
    def test_guests_may_open_the_tun_device(self):
        mode = os.stat(launcher.TUN).st_mode & 0o777
        acl = subprocess.run(["getfacl", "-cpn", launcher.TUN], capture_output=True,
                             text=True).stdout
        self.addCleanup(subprocess.run, ["setfacl", "--set", ",".join(
            line for line in acl.split() if line), launcher.TUN], check=False)
        self.addCleanup(os.chmod, launcher.TUN, mode)
        os.chmod(launcher.TUN, 0o600)
        self.assertRaises(launcher.Refused, launcher.grant_tun, 4242)
        probe = ("/usr/bin/python3", "-c", "import os; os.open('/dev/net/tun', os.O_RDWR)")
        self.assertNotEqual(0, as_uid(GUEST, *probe).returncode)
        launcher.grant_tun(GID)
        self.assertEqual(0, as_uid(GUEST, *probe).returncode)


class TestDeviceAccess(base.TestCase):
    def test_a_loop_device_is_its_guest_s_only_and_not_after_revoke(self):
        backing = os.path.join(self.instances, "vol")
        with open(backing, "wb") as f:
            f.write(b"volume data")
            f.truncate(1024 * 1024)
        loop = subprocess.run(["losetup", "--find", "--show", backing], check=True,
                              capture_output=True, text=True).stdout.strip()
        self.addCleanup(subprocess.run, ["losetup", "--detach", loop], check=False)
        subprocess.run(["setfacl", "-b", loop], check=True)     # none from earlier uses
        self.addCleanup(subprocess.run, ["setfacl", "-b", loop], check=False)
        read = ("dd", "if=" + loop, "bs=11", "count=1", "status=none")
        self.assertNotEqual(0, as_uid(GUEST, *read).returncode)
        launcher.grant_device(loop, GUEST)
        self.assertEqual(b"volume data", as_uid(GUEST, *read).stdout)
        self.assertNotEqual(0, as_uid(OTHER, *read).returncode)
        launcher.revoke_device(loop, GUEST)
        self.assertNotEqual(0, as_uid(GUEST, *read).returncode)


class TestInstanceFiles(base.TestCase):
    def test_each_guest_reaches_only_its_own_instance_files(self):
        dirs = {}
        for uid in (GUEST, OTHER):
            d = os.path.join(self.instances, uuidutils.generate_uuid())
            os.makedirs(d, mode=0o700)
            with open(os.path.join(d, "disk"), "w") as f:
                f.write("disk of %d" % uid)
            os.chmod(os.path.join(d, "disk"), 0o600)
            dirs[uid] = d
        os.chmod(self.instances, 0o700)
        confine.prepare_instances_path()
        for uid, d in dirs.items():
            confine.grant_instance_dir(d, uid)
        mine = as_uid(GUEST, "cat", os.path.join(dirs[GUEST], "disk"))
        self.assertEqual(b"disk of %d" % GUEST, mine.stdout)
        theirs = as_uid(GUEST, "cat", os.path.join(dirs[OTHER], "disk"))
        self.assertNotEqual(0, theirs.returncode)
        self.assertIn(b"Permission denied", theirs.stderr)
        # what the guest creates there stays readable by nova's user
        self.assertEqual(0, as_uid(GUEST, "sh", "-c", "echo x > %s/pid" % dirs[GUEST])
                         .returncode)
        acl = subprocess.run(["getfacl", "-cpn", os.path.join(dirs[GUEST], "pid")],
                             capture_output=True, text=True).stdout
        self.assertIn("user:%d:rw" % os.getuid(), acl)


