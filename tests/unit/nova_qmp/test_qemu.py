import json
import os
import subprocess
import sys
import time

from nova import exception
from nova import objects
from oslo_utils import uuidutils

from nova_common import consolelog
from nova_common import instance_dir
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

    def argv(self, **kw):
        return qemu.command_line(base.CONF, self.inst, self.idir, "q35", **kw)

    def test_sandboxed_private_sockets_and_flavor(self):
        argv = self.argv()
        self.assertEqual("q35", qemu.machine_of(argv))
        self.assertEqual(["-sandbox", qemu.SANDBOX], argv[argv.index("-sandbox"):][:2])
        self.assertIn("unix:%s,server=on,wait=off" % self.idir.file(qemu.QMP_SOCKET), argv)
        self.assertIn("unix:%s" % self.idir.file(qemu.VNC_SOCKET), argv)
        self.assertEqual("2", argv[argv.index("-smp") + 1])
        self.assertEqual("256", argv[argv.index("-m") + 1])
        self.assertIn("kvm", argv)
        self.flags(sandbox=False, accelerator="tcg", extra_args=["-device", "x"],
                   group="qmp")
        argv = self.argv()
        self.assertNotIn("-sandbox", argv)
        self.assertIn("tcg,thread=multi", argv)
        self.assertEqual(["-device", "x"], argv[-2:])

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
        argv = qemu.volume_args({vol: {"path": "/dev/sdx", "block": True, "port": "hp3"}})
        self.assertEqual("-blockdev", argv[0])
        self.assertEqual({"driver": "raw", "node-name": node, "discard": "unmap",
                          "file": {"driver": "host_device", "filename": "/dev/sdx",
                                   "node-name": node + "f"}}, json.loads(argv[1]))
        self.assertEqual(["-device", "virtio-blk-pci,drive=%s,id=%s,serial=%s,bus=hp3"
                          % (node, dev, vol[:20])], argv[2:])

    def test_boot_volume_replaces_the_image_disk(self):
        self.assertIn("virtio-blk-pci,drive=root,id=root-disk,bootindex=1", self.argv())
        argv = self.argv(root_disk=False)
        self.assertNotIn("virtio-blk-pci,drive=root,id=root-disk,bootindex=1", argv)
        vol = "6b0d5c8e-3f21-4a8e-9a57-2c4d8e1f0a11"
        device = qemu.volume_args({vol: {"path": "/x", "block": False, "port": None,
                                         "boot": True}})[3]
        self.assertTrue(device.endswith(",bootindex=1"))
        self.assertNotIn("bus=", device)

    def test_rescue_boots_the_rescue_disk_first(self):
        argv = qemu.rescue_args(self.idir, self.argv())
        self.assertNotIn(qemu.ROOT_DEVICE, argv)
        self.assertIn("virtio-blk-pci,drive=root,id=root-disk", argv)
        self.assertEqual("virtio-blk-pci,drive=rescue,id=rescue-disk,bootindex=1", argv[-1])
        self.assertRaises(ValueError, qemu.rescue_args, self.idir,
                          self.argv(root_disk=False))

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
        qemu.kill(proc.pid, uuid, timeout=5)
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
