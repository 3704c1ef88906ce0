import json
import os
import signal
import subprocess
import sys
import time

from nova import exception
from nova import objects
from oslo_utils import uuidutils

from nova_common import confine
from nova_common import consolelog
from nova_common import hypervisor
from nova_common import instance_dir
from nova_common import privsep
from nova_common import record
from nova_qmp import opts
from nova_qmp import qemu
from tests.unit.nova_common import base

objects.register_all()
opts.register(base.CONF)


def instance(**kw):
    kw.setdefault("uuid", uuidutils.generate_uuid())
    return objects.Instance(id=1, image_ref="img",
                            flavor=objects.Flavor(vcpus=2, memory_mb=256), **kw)


def image(**props):
    return objects.ImageMeta.from_dict({"disk_format": "qcow2", "properties": props})


class TestCommandLine(base.TestCase):
    def setUp(self):
        super().setUp()
        self.inst = instance()
        self.idir = instance_dir.InstanceDir(self.inst.uuid)

    def argv(self, root_disk=True, rescued=False, volumes=None, local_disks=(),
             config_drive=False, **kw):
        guest = hypervisor.Guest(self.inst.uuid, self.idir, record.Record(
            name="instance-1", vcpus=2, memory_mb=256,
            spec={"machine": "q35", "root_disk": root_disk, "config_drive": config_drive,
                  "local_disks": list(local_disks)},
            volumes=volumes or {}, rescued=rescued))
        return qemu.command_line(base.CONF, guest, **kw)

    def test_a_swapped_volume_keeps_its_device(self):
        old, new = "0ld" + "0" * 29, "new" + "1" * 29
        vol = {"path": "/dev/null", "block": False, "slot": "hp0", "qdev": "vol-" + old}
        device = [a for a in self.argv(volumes={new: vol})
                  if a.startswith("virtio-blk-pci,drive=v")][0].split(",")
        self.assertIn("drive=" + qemu.volume_ids(new)[0], device)
        self.assertIn("id=vol-" + old, device)
        self.assertIn("serial=" + old[:20], device)

    def test_a_multiattach_volume_is_shared(self):
        vol = {"path": "/dev/null", "block": False, "slot": "hp0"}
        argv = self.argv(volumes={"a" * 8: dict(vol, shared=True), "b" * 8: vol})
        devices = [a for a in argv if a.startswith("virtio-blk-pci,drive=v")]
        self.assertIn("share-rw=on", devices[0].split(","))
        self.assertNotIn("share-rw", devices[1])
        self.assertIs(True, qemu.volume_device("x", shared=True)["share-rw"])  # QMP: bool

    def test_sandboxed_private_sockets_and_flavor(self):
        argv = self.argv()
        self.assertEqual("q35", qemu.machine_of(argv))
        self.assertEqual(["-sandbox", qemu.SANDBOX], argv[argv.index("-sandbox"):][:2])
        self.assertIn("unix:%s,server=on,wait=off" % self.idir.file(qemu.QMP_SOCKET), argv)
        self.assertIn("unix:%s" % self.idir.file(qemu.VNC_SOCKET), argv)
        self.assertEqual("2", argv[argv.index("-smp") + 1])
        self.assertEqual("256", argv[argv.index("-m") + 1])
        self.assertIn("kvm", argv)
        self.flags(sandbox=False, accelerator="tcg", extra_args="-device x", group="qmp")
        argv = self.argv()
        self.assertNotIn("-sandbox", argv)
        self.assertIn("tcg,thread=multi", argv)
        self.assertEqual(["-device", "x"], argv[-2:])

    def test_extra_args_from_a_config_file_keep_their_commas(self):
        conf = os.path.join(self.instances, "nova.conf")
        with open(conf, "w") as f:
            f.write("[qmp]\nextra_args = -device virtio-balloon-pci,id=b0 "
                    "-smbios 'type=1,product=A B'\n")
        base.CONF(["--config-file", conf], project="nova")
        self.addCleanup(base.CONF.reset)
        self.assertEqual(["-device", "virtio-balloon-pci,id=b0", "-smbios",
                          "type=1,product=A B"], self.argv()[-4:])
        self.flags(extra_args="-device 'unclosed", group="qmp")
        self.assertRaises(exception.InvalidInput, self.argv)

    def test_consoles_for_the_proxies(self):
        argv = self.argv(serial_ports=range(10000, 10010), vnc_tcp=True)
        serial = argv[argv.index("-chardev") + 1]
        self.assertIn("host=127.0.0.1,port=10000,to=10009,server=on", serial)
        # through the bounded console logger's FIFO (nova_common.consolelog)
        self.assertIn("logfile=%s" % self.idir.file(consolelog.FIFO), serial)
        self.assertEqual("127.0.0.1:0,to=59635", argv[argv.index("-vnc") + 1])
        self.assertEqual({"vnc_port": 5901, "serial_port": 10003}, qemu.listening_ports(
            {"enabled": True, "family": "ipv4", "service": "5901"},
            [{"label": "console",
              "filename": "disconnected:tcp:127.0.0.1:10003,server=on"}]))
        self.assertEqual({"vnc_port": None, "serial_port": None}, qemu.listening_ports(
            {"enabled": True, "family": "unix", "service": "/x"},
            [{"label": "console", "filename": "null"}]))

    def test_ephemeral_and_swap_disks_right_after_the_root_disk(self):
        argv = self.argv(local_disks=["disk.eph0", "disk.eph1", "disk.swap"])
        devices = [a for a in argv if a.startswith("virtio-blk-pci,")]
        self.assertEqual(["virtio-blk-pci,drive=root,id=root-disk,bootindex=1",
                          "virtio-blk-pci,drive=eph0,id=eph0-disk",
                          "virtio-blk-pci,drive=eph1,id=eph1-disk",
                          "virtio-blk-pci,drive=swap,id=swap-disk"], devices)
        self.assertIn("file=%s,if=none,id=swap,format=raw,discard=unmap"
                      % self.idir.file("disk.swap"), argv)
        # the guest names disks in PCI order: the local disks before the config drive
        argv = self.argv(local_disks=["disk.eph0"], config_drive=True)
        self.assertLess(argv.index("virtio-blk-pci,drive=eph0,id=eph0-disk"),
                        argv.index("virtio-blk-pci,drive=config,id=config-drive"))

    def test_volumes_on_the_command_line_and_hotplug_ports(self):
        ports = [a for a in self.argv() if a.startswith("pcie-root-port,")]
        self.assertEqual(qemu.HOTPLUG_PORTS, len(ports))
        self.assertEqual("pcie-root-port,id=hp0,chassis=16,bus=pcie.0", ports[0])
        self.assertEqual([], qemu.hotplug_ports("pc-i440fx-7.2"))
        vol = "6b0d5c8e-3f21-4a8e-9a57-2c4d8e1f0a11"
        node, dev = qemu.volume_ids(vol)
        self.assertLessEqual(len(node + "f"), 31)        # QEMU's limit on node names
        argv = qemu.volume_args({vol: {"path": "/dev/sdx", "block": True, "slot": "hp3"}})
        self.assertEqual("-blockdev", argv[0])
        self.assertEqual({"driver": "raw", "node-name": node, "discard": "unmap",
                          "file": {"driver": "host_device", "filename": "/dev/sdx",
                                   "node-name": node + "f"}}, json.loads(argv[1]))
        self.assertEqual(["-device", "virtio-blk-pci,drive=%s,id=%s,serial=%s,bus=hp3"
                          % (node, dev, vol[:20])], argv[2:])

    def test_interfaces_single_and_multi_queue(self):
        port = "0e8f1c2a-7b3d-4e5f-9a6b-1c2d3e4f5a6b"
        netdev, dev = qemu.vif_ids(port)
        one = {"tap": "tap0e8f1c2a-7b", "mac": "fa:16:3e:00:00:01", "slot": "hp1"}
        self.assertEqual(
            ["-netdev", "tap,id=%s,ifname=tap0e8f1c2a-7b,script=no,downscript=no" % netdev,
             "-device", "virtio-net-pci,netdev=%s,id=%s,mac=fa:16:3e:00:00:01,bus=hp1"
             % (netdev, dev)], qemu.vif_args({port: one}))
        argv = qemu.vif_args({port: dict(one, queues=4)})
        self.assertTrue(argv[1].endswith(",queues=4"), argv[1])
        self.assertIn(",mq=on,vectors=10,", argv[3])
        # QMP (hot-plug) gets typed values
        self.assertEqual({"mq": True, "vectors": 10},
                         {k: v for k, v in qemu.vif_device(port, "m", "hp1", 4).items()
                          if k in ("mq", "vectors")})
        self.assertEqual(4, qemu.vif_netdev(port, "t", 4)["queues"])

    def test_vhost_user_interfaces_and_shared_memory(self):
        port = "0e8f1c2a-7b3d-4e5f-9a6b-1c2d3e4f5a6b"
        netdev, dev = qemu.vif_ids(port)
        sock = "/var/lib/nova/vhostuser/vhu0e8f1c2a-7b"
        vhu = {"vhostuser": sock, "mac": "fa:16:3e:00:00:01", "slot": "hp1"}
        # QEMU is the socket's server; the netdev rides on that chardev
        self.assertEqual(
            ["-chardev", "socket,id=c%s,path=%s,server=on,wait=off" % (netdev, sock),
             "-netdev", "vhost-user,id=%s,chardev=c%s" % (netdev, netdev),
             "-device", "virtio-net-pci,netdev=%s,id=%s,mac=fa:16:3e:00:00:01,bus=hp1"
             % (netdev, dev)], qemu.vif_args({port: vhu}))
        # under TCG without MSI-X (QEMU 7.2 crashes starting vhost-user with it)
        self.assertIn("vectors=0", qemu.vif_args({port: vhu}, tcg=True)[-1].split(","))
        tap = {"tap": "tap0e8f1c2a-7b", "mac": "fa:16:3e:00:00:01"}
        self.assertNotIn("vectors=0", qemu.vif_args({port: tap}, tcg=True)[-1])
        # QMP hot-plug forms
        self.assertEqual({"id": "c" + netdev, "backend": {"type": "socket", "data": {
            "addr": {"type": "unix", "data": {"path": sock}}, "server": True,
            "wait": False}}}, qemu.vif_chardev(port, sock))
        self.assertEqual({"type": "vhost-user", "id": netdev, "chardev": "c" + netdev},
                         qemu.vif_netdev(port, None, vhostuser=sock))
        for bad in ("relative", "/a,server=off", "/a/../b", "/a b", None):
            self.assertRaises(exception.InvalidInput, qemu.vif_chardev, port, bad)
        # the guest RAM: shared with a vhost-user interface (or when the flavor asked)
        ram = "memory-backend-memfd,id=hci-ram,size=256M,share=on"
        argv = self.argv()
        self.assertNotIn(ram, argv)
        self.assertEqual("q35", argv[argv.index("-machine") + 1])
        guest = hypervisor.Guest(self.inst.uuid, self.idir, record.Record(
            name="instance-1", vcpus=2, memory_mb=256,
            spec={"machine": "q35", "root_disk": True, "config_drive": False},
            vifs={port: vhu}))
        for spec_shared, vifs in ((False, {port: vhu}), (True, {})):
            guest.record.vifs = vifs
            guest.record.spec["shared_memory"] = spec_shared
            argv = qemu.command_line(base.CONF, guest)
            self.assertEqual(["-object", ram], argv[argv.index(ram) - 1:argv.index(ram) + 1])
            self.assertEqual("q35,memory-backend=hci-ram",
                             argv[argv.index("-machine") + 1])

    def test_boot_volume_replaces_the_image_disk(self):
        self.assertIn("virtio-blk-pci,drive=root,id=root-disk,bootindex=1", self.argv())
        argv = self.argv(root_disk=False)
        self.assertNotIn("virtio-blk-pci,drive=root,id=root-disk,bootindex=1", argv)
        vol = "6b0d5c8e-3f21-4a8e-9a57-2c4d8e1f0a11"
        device = qemu.volume_args({vol: {"path": "/x", "block": False, "slot": None,
                                         "boot": True}})[3]
        self.assertTrue(device.endswith(",bootindex=1"))
        self.assertNotIn("bus=", device)

    def test_rescue_boots_the_rescue_disk_first(self):
        argv = self.argv(rescued=True)
        self.assertNotIn(qemu.ROOT_DEVICE, argv)
        self.assertIn("virtio-blk-pci,drive=root,id=root-disk", argv)
        self.assertIn("virtio-blk-pci,drive=rescue,id=rescue-disk,bootindex=1", argv)
        self.assertLess(argv.index("virtio-blk-pci,drive=rescue,id=rescue-disk,bootindex=1"),
                        argv.index("virtio-blk-pci,drive=root,id=root-disk"))

    def test_socket_paths_must_fit(self):
        self.flags(instances_path="/tmp/" + "x" * 80)
        self.idir = instance_dir.InstanceDir(self.inst.uuid)
        self.assertRaises(exception.InstanceDeployFailure, self.argv)

    def test_machine_types_and_firmware_from_images(self):
        self.assertEqual("q35", qemu.machine_type(base.CONF, self.inst, image()))
        self.assertEqual("pc-i440fx-7.2", qemu.machine_type(
            base.CONF, self.inst, image(hw_machine_type="pc-i440fx-7.2")))
        for bad in (image(hw_firmware_type="uefi"), image(hw_machine_type="pc;reboot"),
                    image(hw_machine_type="-pc")):
            self.assertRaises(exception.ImageUnacceptable, qemu.machine_type, base.CONF,
                              self.inst, bad)


class TestProcesses(base.TestCase):
    def test_alive_only_for_the_instance_s_own_live_process(self):
        uuid = uuidutils.generate_uuid()
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", uuid])
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        for _ in range(100):          # until the child has exec'd sleep
            if qemu.alive(proc.pid, uuid):
                break
            time.sleep(0.02)
        self.assertTrue(qemu.alive(proc.pid, uuid))
        self.assertFalse(qemu.alive(proc.pid, uuidutils.generate_uuid()))
        self.assertFalse(qemu.alive(None, uuid))
        os.kill(proc.pid, signal.SIGKILL)
        for _ in range(100):
            if not qemu.alive(proc.pid, uuid):
                break
            time.sleep(0.02)
        self.assertFalse(qemu.alive(proc.pid, uuid))    # a zombie counts as gone

    def test_pidfile(self):
        idir = instance_dir.InstanceDir(uuidutils.generate_uuid()).create()
        self.assertIsNone(qemu.read_pid(idir))
        with open(idir.file(qemu.PIDFILE), "w") as f:
            f.write("1234\n")
        self.assertEqual(1234, qemu.read_pid(idir))

    def test_missing_binary(self):
        self.flags(qemu_binary="/nonexistent/qemu", group="qmp")
        self.assertRaises(exception.InternalError, qemu.check_binary, base.CONF)
        self.assertEqual("x86_64", qemu.arch_of("/usr/bin/qemu-system-x86_64"))
        self.assertTrue(os.access("/usr/bin/qemu-system-x86_64", os.X_OK))

    def test_a_guest_process_ignoring_sigterm_is_killed(self):
        """Through the launcher's signal_guest: as the guest uid, named by its UUID."""
        self.useFixture(InProcessPrivsep())
        uuid = uuidutils.generate_uuid()
        proc = subprocess.Popen(
            ["setpriv", "--reuid", "1900000002", "--regid", "1900000000",
             "--clear-groups", sys.executable, "-c",
             "import signal, time\n"
             "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
             "print('ready', flush=True); time.sleep(60)", uuid],
            stdout=subprocess.PIPE)
        self.addCleanup(proc.wait)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        proc.stdout.readline()                   # SIGTERM is ignored from here on
        qemu.kill(proc.pid, uuid, timeout=0.5)
        self.assertEqual(-9, proc.wait(10))

    def test_a_qemu_that_does_not_start_in_time_is_killed(self):
        self.useFixture(InProcessPrivsep())
        uuid = uuidutils.generate_uuid()
        idir = instance_dir.InstanceDir(uuid).create()
        fake = os.path.join(self.useFixture(__import__("fixtures").TempDir()).path, "q")
        with open(fake, "w") as f:
            # keeps its arguments (the UUID) in its command line, as QEMU does
            f.write("#!/bin/sh\necho $$ > %s\nexec %s -c 'import time; time.sleep(30)' "
                    "\"$@\"\n" % (idir.file("fake.pid"), "/usr/bin/python3"))
        os.chmod(fake, 0o755)
        os.chmod(os.path.dirname(fake), 0o755)
        self.flags(qemu_binary=fake, start_timeout=2, group="qmp")
        self.flags(allowed_binaries=[fake], launcher="detached", group="hci_guests")
        guest = hypervisor.Guest(uuid, idir, record.Record("i", 1, 64, {}, uid=1900000000))
        confine.prepare_instances_path()
        confine.grant_instance_dir(idir.path, guest.record.uid)
        e = self.assertRaises(exception.InstanceDeployFailure, qemu.start, base.CONF, guest,
                              [fake, "-uuid", uuid])
        self.assertIn("did not start within 2s", str(e))
        with open(idir.file("fake.pid")) as f:
            pid = int(f.read())
        for _ in range(100):                      # the supervisor reaps it
            if not qemu.alive(pid, uuid):
                break
            time.sleep(0.05)
        self.assertFalse(qemu.alive(pid, uuid))
        for _ in range(200):                      # and logs how it ended
            with open(idir.file(qemu.HYPERVISOR_LOG)) as f:
                log = f.read()
            if "ended" in log:
                break
            time.sleep(0.05)
        self.assertIn("ended: signal 9", log)

    def test_a_qemu_that_exits_at_once_fails_the_start_with_its_output(self):
        self.useFixture(InProcessPrivsep())
        self.flags(launcher="detached", group="hci_guests")
        uuid = uuidutils.generate_uuid()
        idir = instance_dir.InstanceDir(uuid).create()
        guest = hypervisor.Guest(uuid, idir, record.Record("i", 1, 64, {}, uid=1900000001))
        confine.prepare_instances_path()
        confine.grant_instance_dir(idir.path, guest.record.uid)
        e = self.assertRaises(exception.InstanceDeployFailure, qemu.start, base.CONF, guest,
                              [base.CONF.qmp.qemu_binary, "-uuid", uuid, "-no-such-option"])
        self.assertIn("it exited", str(e))
        self.assertIn("-no-such-option", str(e))


class InProcessPrivsep(__import__("fixtures").Fixture):
    """Our privsep contexts in this (root) test process."""

    def _setUp(self):
        for context in (privsep.net_admin, privsep.guest_admin):
            context.set_client_mode(False)
            self.addCleanup(context.set_client_mode, True)
