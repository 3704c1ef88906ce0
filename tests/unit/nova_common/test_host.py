import os

from nova.compute import provider_tree
from nova.virt import driver
import os_resource_classes as orc

from nova_common import host
from tests.unit.nova_common import base


class TestHost(base.TestCase):
    def test_meminfo(self):
        path = os.path.join(self.instances, "meminfo")
        with open(path, "w") as f:
            f.write("MemTotal:        4096000 kB\nMemFree:  1000 kB\n"
                    "MemAvailable:    2048000 kB\n")
        self.assertEqual((4000, 2000), host.memory_mb(path))

    def test_uptime_worded_like_uptime(self):
        for name, text in (("uptime", "273906.5 500.0\n"), ("loadavg", "0.10 0.20 0.30 1/99 7\n")):
            with open(os.path.join(self.instances, name), "w") as f:
                f.write(text)
        self.assertEqual("up 3 days, 4:05, load average: 0.10, 0.20, 0.30",
                         host.uptime(self.instances))
        self.assertTrue(host.uptime().startswith("up "))

    def test_resources_are_the_host_s(self):
        res = host.available_resource("node", "qemu", 7002000, "x86_64", vcpus_used=3)
        self.assertEqual(os.cpu_count(), res["vcpus"])
        self.assertEqual(3, res["vcpus_used"])
        self.assertEqual(host.memory_mb()[0], res["memory_mb"])
        self.assertGreater(res["local_gb"], 0)
        self.assertEqual([("x86_64", "qemu", "hvm")], res["supported_instances"])

    def test_inventory_uses_configured_ratios_and_reserves(self):
        self.flags(cpu_allocation_ratio=4.0, ram_allocation_ratio=1.5,
                   reserved_host_memory_mb=512, reserved_host_cpus=1,
                   reserved_host_disk_mb=2048)
        tree = provider_tree.ProviderTree()
        tree.new_root("node", "11111111-2222-3333-4444-555555555555")
        res = host.available_resource("node", "qemu", 1, "x86_64")
        host.update_provider_tree(driver.ComputeDriver(None), tree, "node", res)
        inv = tree.data("node").inventory
        self.assertEqual((res["vcpus"], 4.0, 1), (inv[orc.VCPU]["total"],
                                                  inv[orc.VCPU]["allocation_ratio"],
                                                  inv[orc.VCPU]["reserved"]))
        self.assertEqual((1.5, 512), (inv[orc.MEMORY_MB]["allocation_ratio"],
                                      inv[orc.MEMORY_MB]["reserved"]))
        self.assertEqual(2, inv[orc.DISK_GB]["reserved"])
