"""Boot-mode choice and the event-monitor stream splitting."""
from nova import exception
from nova import objects
from oslo_utils import uuidutils

from nova_cloudhypervisor import events
from nova_cloudhypervisor import opts
from nova_cloudhypervisor import vmconfig
from nova_common import instance_dir
from tests.unit.nova_common import base

objects.register_all()


class TestBootMode(base.TestCase):
    def setUp(self):
        super().setUp()
        opts.register(self.conf.conf)
        self.inst = objects.Instance(uuid=uuidutils.generate_uuid(), image_ref="img",
                                     kernel_id="", ramdisk_id="",
                                     flavor=objects.Flavor(vcpus=1, memory_mb=64))

    def image(self, **props):
        return objects.ImageMeta.from_dict({"disk_format": "raw", "properties": props})

    def test_kernel_image_boots_directly(self):
        self.inst.kernel_id, self.inst.ramdisk_id = "k", "r"
        image = self.image(os_command_line="console=ttyS0 quiet")
        self.assertEqual("kernel", vmconfig.boot_mode(self.conf.conf, self.inst, image))
        cfg = vmconfig.build(self.conf.conf, self.inst, image,
                             instance_dir.InstanceDir(self.inst.uuid), "kernel")
        self.assertEqual("console=ttyS0 quiet", cfg.payload.cmdline)
        self.assertEqual(vmconfig.disks.base_path("r"), cfg.payload.initramfs)
        self.assertEqual(vmconfig.disks.base_path("k"), cfg.payload.kernel)
        self.assertIsNone(cfg.payload.firmware)

    def test_no_kernel_and_no_firmware_is_refused(self):
        e = self.assertRaises(exception.ImageUnacceptable, vmconfig.boot_mode,
                              self.conf.conf, self.inst, self.image())
        self.assertIn("no firmware is configured", str(e))

    def test_firmware(self):
        self.flags("cloudhypervisor", firmware="/fw/CLOUDHV.fd")
        self.assertEqual("firmware", vmconfig.boot_mode(self.conf.conf, self.inst,
                                                        self.image()))
        self.assertRaises(exception.ImageUnacceptable, vmconfig.boot_mode,
                          self.conf.conf, self.inst, self.image(hw_firmware_type="bios"))


class TestEventStream(base.TestCase):
    def test_split_pretty_printed_records(self):
        text = ('{\n  "source": "vm",\n  "event": "booted"\n}\n'
                '{\n  "source": "vmm", "event": "shutdown"}{"source": "vm", "ev')
        records, rest = events.split_records(text)
        self.assertEqual([("vm", "booted"), ("vmm", "shutdown")],
                         [(r["source"], r["event"]) for r in records])
        self.assertEqual('{"source": "vm", "ev', rest)
        more, rest = events.split_records(rest + 'ent": "paused"}\n')
        self.assertEqual("paused", more[0]["event"])
        self.assertEqual("", rest)
