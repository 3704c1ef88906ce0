"""The client and the process management on the stand-in VMM (a real process serving the
API on a UNIX socket, started as a guest uid through the privileged launcher, here in
this root test process; no guest is booted here): status codes to errors, the server's
error chain, bodiless 200 of vmm.shutdown, SCM_RIGHTS, start/stop by PID."""
import os
import socket

from nova import exception
from nova import objects
from oslo_utils import uuidutils

from nova_cloudhypervisor import client
from nova_cloudhypervisor import models
from nova_cloudhypervisor import opts
from nova_cloudhypervisor import process
from nova_common import confine
from nova_common import hypervisor
from nova_common import instance_dir
from nova_common import record
from tests.common.ch_standin import fixture as standin
from tests.unit.nova_common import base
from tests.unit.nova_qmp.test_qemu import InProcessPrivsep

objects.register_all()
GUEST_UID = 1900000020


def confined_guest(uuid, uid=GUEST_UID):
    """A Guest whose directory its uid may use (as the driver's _start prepares it)."""
    idir = instance_dir.InstanceDir(uuid).create()
    confine.prepare_instances_path()
    confine.grant_instance_dir(idir.path, uid)
    return hypervisor.Guest(uuid, idir, record.Record("i", 1, 64, {}, uid=uid))


class TestClient(base.TestCase):
    def setUp(self):
        super().setUp()
        opts.register(self.conf.conf)
        self.useFixture(InProcessPrivsep())
        self.binary = self.useFixture(standin.StandInBinary([self.instances]))
        self.flags("cloudhypervisor", binary=self.binary.path, stop_timeout=10)
        self.flags("hci_guests", allowed_binaries=[self.binary.path], launcher="detached")
        self.inst = confined_guest(uuidutils.generate_uuid())
        self.idir = self.inst.idir
        self.api = process.start(self.conf.conf, self.inst, self.idir)
        self.addCleanup(self._reap)

    def _reap(self):
        self.api.close()
        pid = process.read_pid(self.idir)
        if process.alive(pid, self.inst.uuid):
            process.kill(pid, self.inst.uuid, 5)

    def config(self):
        return models.VmConfig(payload=models.PayloadConfig(kernel="/nonexistent"),
                               cpus=models.CpusConfig(boot_vcpus=1, max_vcpus=1),
                               memory=models.MemoryConfig(size=64 << 20),
                               serial=models.SerialConfig(mode="Off"),
                               console=models.ConsoleConfig(mode="Off"))

    def test_ping_and_process(self):
        ping = self.api.ping()
        self.assertIsInstance(ping, models.VmmPingResponse)
        self.assertEqual(process.read_pid(self.idir), ping.pid)
        self.assertTrue(process.alive(ping.pid, self.inst.uuid))
        self.assertFalse(process.alive(ping.pid, uuidutils.generate_uuid()))
        with open("/proc/%d/status" % ping.pid) as f:        # the guest's uid, not root
            uid = next(int(ln.split()[1]) for ln in f if ln.startswith("Uid:"))
        self.assertEqual(GUEST_UID, uid)

    def test_not_created_is_404_with_the_error_chain(self):
        e = self.assertRaises(client.NotFound, self.api.info)
        self.assertEqual("vm.info", e.endpoint)
        self.assertEqual(404, e.status)
        self.assertEqual(["Error from API", "The VM info is not available",
                          "VM is not created"], e.messages)
        self.assertIn("vm.info: 404: Error from API", str(e))

    def test_wrong_state_is_500(self):
        self.api.create(self.config())
        self.assertEqual("Created", self.api.info().state)
        e = self.assertRaises(client.InternalError, self.api.create, self.config())
        self.assertIn("VM is already created", e.messages)
        self.assertRaises(client.InternalError, self.api.pause)

    def test_cold_plug_assigns_ids(self):
        self.api.create(self.config())
        self.assertIsNone(self.api.add_disk(models.DiskConfig(path="/dev/null",
                                                              image_type="Raw")))
        info = self.api.info()
        self.assertEqual(["_disk0"], [d.id for d in info.config.disks])
        self.api.remove_device("_disk0")
        self.assertEqual([], self.api.info().config.disks or [])

    def test_add_net_with_fds(self):
        self.api.create(self.config())
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.assertIsNone(self.api.add_net(models.NetConfig(id="n1", mac="52:54:00:00:00:01"),
                                           fds=[a.fileno()]))
        self.assertEqual(["n1"], [n.id for n in self.api.info().config.net])
        raw = self.api._http.get("vm.info").json()["config"]["net"][0]
        self.assertEqual([-1], raw["fds"])     # the VMM got one descriptor

    def test_wrong_body_type_is_refused_before_sending(self):
        self.assertRaises(TypeError, self.api.call, "vm.create", models.DiskConfig())

    def test_body_over_the_server_limit(self):
        cfg = self.config()
        cfg.payload.cmdline = "x" * client.MAX_BODY
        e = self.assertRaises(client.BadRequest, self.api.create, cfg)
        self.assertIsNone(e.status)     # refused by the client; the server would say 400

    def test_spec_violation_is_caught(self):
        # a request the client would never send: the stand-in answers 400 and records it
        e = self.assertRaises(client.BadRequest, self.api.call, "vm.create",
                              models.VmConfig(cpus=models.CpusConfig(boot_vcpus=0)))
        self.assertEqual("Failed to deserialize JSON", e.messages[0])
        self.binary.watch_dirs = []     # that violation was the point of this test

    def test_shutdown_vmm_ends_the_process(self):
        pid = process.read_pid(self.idir)
        self.api.shutdown_vmm()       # bodiless 200, then the connection closes
        self.assertTrue(process.wait_gone(pid, self.inst.uuid, 10))
        self.assertFalse(os.path.exists(self.idir.file(process.API_SOCKET)))

    def test_stop(self):
        pid = process.read_pid(self.idir)
        process.stop(self.conf.conf, self.inst.uuid, self.idir, self.api)
        self.assertFalse(process.alive(pid, self.inst.uuid))
        self.assertIsNone(process.read_pid(self.idir))

    def test_no_socket_is_connection_failed(self):
        process.stop(self.conf.conf, self.inst.uuid, self.idir, self.api)
        e = self.assertRaises(client.ConnectionFailed, self.api.ping)
        self.assertIsNone(e.status)


class TestStartFailures(base.TestCase):
    def setUp(self):
        super().setUp()
        opts.register(self.conf.conf)
        self.useFixture(InProcessPrivsep())
        self.flags("hci_guests", launcher="detached")
        self.uuid = uuidutils.generate_uuid()

    def test_missing_binary(self):
        self.flags("cloudhypervisor", binary="/nonexistent/cloud-hypervisor")
        guest = confined_guest(self.uuid)
        idir = guest.idir
        self.assertRaises(exception.InternalError, process.start, self.conf.conf,
                          guest, idir)
        self.assertEqual([], os.listdir(idir.path))

    def test_socket_path_too_long(self):
        self.flags("cloudhypervisor", binary="/bin/true")
        self.flags(instances_path=os.path.join(self.instances, "x" * 80))
        guest = confined_guest(self.uuid)
        e = self.assertRaises(exception.InstanceDeployFailure, process.start,
                              self.conf.conf, guest, guest.idir)
        self.assertIn("longer than a UNIX socket path", str(e))
        self.assertFalse(os.path.exists(guest.idir.file(process.VMM_LOG)))  # not started

    def test_exits_at_start(self):
        self.flags("cloudhypervisor", binary="/bin/false")
        self.flags("hci_guests", allowed_binaries=["/bin/false"])
        guest = confined_guest(self.uuid)
        idir = guest.idir
        e = self.assertRaises(exception.InstanceDeployFailure, process.start,
                              self.conf.conf, guest, idir)
        self.assertIn("ended: exit status 1", str(e))
        self.assertIsNone(process.read_pid(idir))
