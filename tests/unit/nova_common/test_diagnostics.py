import os
import threading

from nova import objects
from nova.compute import power_state
from oslo_utils import timeutils

from nova_common import diagnostics
from nova_common import record
from tests.unit.nova_common import base

objects.register_all()


class TestDiagnostics(base.TestCase):
    def sysfs(self, tap, **counters):
        stats = os.path.join(self.instances, "net", tap, "statistics")
        os.makedirs(stats)
        for name in diagnostics.COUNTERS:
            with open(os.path.join(stats, name), "w") as f:
                f.write("%d\n" % counters.get(name, 0))
        return os.path.join(self.instances, "net")

    def test_tap_counters_are_the_guests_reversed(self):
        root = self.sysfs("tap1", rx_bytes=100, rx_packets=2, tx_bytes=900, tx_packets=7,
                          tx_dropped=1)
        self.assertEqual(900, diagnostics.tap_counters("tap1", root)["tx_bytes"])
        self.assertIsNone(diagnostics.tap_counters("tap2", root))
        self.patch_sysfs(root)
        rec = record.Record(name="i", vcpus=1, memory_mb=256, spec={},
                            vifs={"p1": {"tap": "tap1", "mac": "fa:16:3e:00:00:01"},
                                  "p2": {"tap": "tap9", "mac": "fa:16:3e:00:00:02"}})
        inst = objects.Instance(launched_at=timeutils.utcnow())
        stats = {"cpus": [(0, 5000)], "memory_used_mb": None,
                 "disks": [{"name": "root", "read_bytes": 1, "read_requests": 2,
                            "write_bytes": 3, "write_requests": 4, "errors": 0}]}
        diags = diagnostics.build(inst, power_state.RUNNING, rec, stats, "qemu", False)
        nic = diags.nic_details[0]
        self.assertEqual((900, 7, 1, 100, 2),
                         (nic.rx_octets, nic.rx_packets, nic.rx_drop, nic.tx_octets,
                          nic.tx_packets))
        self.assertIsNone(diags.nic_details[1].rx_octets)     # its tap is gone
        self.assertEqual((256, 256), (diags.memory_details.maximum,
                                      diags.memory_details.used))
        self.assertEqual((1, 1, 2), (diags.num_cpus, diags.num_disks, diags.num_nics))
        legacy = diagnostics.legacy(diags, rec, stats)
        self.assertEqual({"memory": 256 * 1024, "cpu0_time": 5000, "root_read_req": 2,
                          "root_read": 1, "root_write_req": 4, "root_write": 3,
                          "root_errors": 0, "tap1_rx": 900, "tap1_rx_packets": 7,
                          "tap1_rx_errors": 0, "tap1_rx_drop": 1, "tap1_tx": 100,
                          "tap1_tx_packets": 2, "tap1_tx_errors": 0, "tap1_tx_drop": 0},
                         legacy)

    def patch_sysfs(self, root):
        self.useFixture(__import__("fixtures").MonkeyPatch(
            "nova_common.diagnostics.SYSFS_NET", root))

    def test_a_stopped_guest_has_no_counters(self):
        rec = record.Record(name="i", vcpus=2, memory_mb=128, spec={})
        diags = diagnostics.build(objects.Instance(launched_at=None),
                                  power_state.SHUTDOWN, rec, None, "qemu", True)
        self.assertEqual(("shutdown", 0, 0, None), (diags.state, diags.num_cpus,
                                                    diags.memory_details.used or 0,
                                                    diags.uptime))

    def test_thread_cpu_time(self):
        done = threading.Event()
        tid = []

        def spin():
            tid.append(threading.get_native_id())
            while not done.is_set():
                sum(range(10000))

        t = threading.Thread(target=spin)
        t.start()
        try:
            while not tid:
                pass
            ns = 0
            while not ns:
                ns = diagnostics.thread_cpu_ns(os.getpid(), tid[0])
        finally:
            done.set()
            t.join()
        self.assertGreater(ns, 0)
        self.assertIsNone(diagnostics.thread_cpu_ns(os.getpid(), 2 ** 22 + 7))
