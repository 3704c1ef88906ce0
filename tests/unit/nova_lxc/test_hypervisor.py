"""LXCHypervisor and LXCDriver without liblxc: the privileged side (nova_lxc.privsep) is
the boundary, recorded by a mock; the container layer on real liblxc is in
tests/functional/nova_lxc."""
import os
from unittest import mock

from nova import exception
from nova import objects
from nova.network import model as network_model
from oslo_utils import uuidutils

from nova_common import hypervisor as hv_api
from nova_common import instance_dir
from nova_common import record
from nova_lxc import driver
from nova_lxc import hypervisor
from nova_lxc import privsep
from tests.unit.nova_common import base

objects.register_all()
IMAGE = "9c1e8f9a-3c67-4d5e-9f0a-2b7d4c6e8a10"


def instance(**kw):
    kw.setdefault("uuid", uuidutils.generate_uuid())
    kw.setdefault("system_metadata", {})
    kw.setdefault("flavor", objects.Flavor(vcpus=2, memory_mb=256, root_gb=1,
                                           extra_specs={}, name="f"))
    return objects.Instance(id=1, image_ref=IMAGE, config_drive="", hostname="h1",
                            key_data=None, user_data=None,
                            project_id="p", task_state=None, **kw)


def image(disk="raw", container="bare"):
    return objects.ImageMeta.from_dict({"disk_format": disk, "container_format": container,
                                        "properties": {}})


def vif(kind="tap", devname="tap12345678-9a", address="fa:16:3e:00:00:01"):
    subnet = network_model.Subnet(
        cidr="10.0.0.0/24", version=4,
        gateway=network_model.IP(address="10.0.0.1", type="gateway"),
        ips=[network_model.FixedIP(address="10.0.0.5")])
    return network_model.VIF(
        id="12345678-9abc-def0-1234-56789abcdef0", type=kind, devname=devname,
        address=address, network=network_model.Network(id="n1", subnets=[subnet],
                                                       meta={"mtu": 1400}))


class TestLaunchSpec(base.TestCase):
    def setUp(self):
        super().setUp()
        self.hv = hypervisor.LXCHypervisor()

    def test_spec_holds_the_halt_signal_and_cpu_quotas(self):
        inst = instance(system_metadata={"image_lxc_halt_signal": "SIGRTMIN+3"})
        inst.flavor.extra_specs = {"quota:cpu_quota": "50000", "quota:disk_read": "1"}
        spec = self.hv.launch_spec(inst, image(), root_disk=True, config_drive=False)
        self.assertEqual({"halt_signal": "SIGRTMIN+3", "cpu": {"cpu_quota": "50000"}},
                         spec)
        self.flags(halt_signal="SIGUSR2", group="lxc_native")
        spec = self.hv.launch_spec(instance(), image(), True, False,
                                   previous={"base": "/cache/x", "halt_signal": "SIGPWR"})
        self.assertEqual({"base": "/cache/x", "halt_signal": "SIGUSR2", "cpu": {}}, spec)

    def test_refusals(self):
        hostile = instance(system_metadata={"image_lxc_halt_signal": "SIGPWR\nlxc.x=1"})
        self.assertRaises(exception.ImageUnacceptable, self.hv.launch_spec, hostile,
                          image(), True, False)
        for meta in (image("vmdk"), image("raw", "ova")):
            self.assertRaises(exception.ImageUnacceptable, self.hv.launch_spec,
                              instance(), meta, True, False)
        self.assertRaises(exception.InvalidInput, self.hv.launch_spec, instance(),
                          image(), False, False)             # boot from volume
        self.assertRaises(exception.InvalidInput, self.hv.launch_spec, instance(),
                          image(), True, True)               # config drive
        inst = instance()
        inst.flavor.extra_specs = {"quota:cpu_period": "often"}
        self.assertRaises(exception.InvalidInput, self.hv.launch_spec, inst, image(),
                          True, False)


class TestConfigItems(base.TestCase):
    def setUp(self):
        super().setUp()
        self.hv = hypervisor.LXCHypervisor()
        self.inst = instance()
        self.idir = instance_dir.InstanceDir(self.inst.uuid)

    def guest(self, vifs=None):
        return hv_api.Guest(self.inst.uuid, self.idir, record.Record(
            name="instance-1", vcpus=2, memory_mb=256, vifs=vifs or {},
            spec={"base": "/cache/base", "halt_signal": "SIGPWR", "cpu": {}}))

    def test_unprivileged_with_the_configured_id_map(self):
        self.flags(id_map_start=200000, id_map_size=1000, cgroup_version="1",
                   group="lxc_native")
        items = self.hv._items(self.guest())
        self.assertIn(("lxc.idmap", "u 0 200000 1000"), items)
        self.assertIn(("lxc.rootfs.path", "overlay:/cache/base:%s/rootfs.upper"
                       % self.idir.path), items)
        self.assertIn(("lxc.cgroup.memory.limit_in_bytes", str(256 * 1024 ** 2)), items)
        self.assertIn(("lxc.cgroup.pids.max", "4096"), items)

    def test_privileged_by_option_and_cgroup_v2(self):
        self.flags(privileged=True, cgroup_version="2", group="lxc_native")
        items = dict(self.hv._items(self.guest()))
        self.assertNotIn("lxc.idmap", items)
        self.assertEqual(str(256 * 1024 ** 2), items["lxc.cgroup2.memory.max"])
        self.assertEqual("200000 100000", items["lxc.cgroup2.cpu.max"])

    def test_vif_entries_become_veth_pairs_in_slot_order(self):
        a = hypervisor.vif_entry(vif(), 1)
        self.assertEqual({"tap": "tap12345678-9a", "mac": "fa:16:3e:00:00:01", "slot": 1,
                          "mtu": 1400, "ipv4": [["10.0.0.5", 24, "10.0.0.255"]],
                          "gateway": "10.0.0.1"}, a)
        b = hypervisor.vif_entry(vif(devname="tapb", address="fa:16:3e:00:00:02"), 0)
        items = self.hv._items(self.guest({"a": a, "b": b}))
        self.assertLess(items.index(("lxc.net.0.veth.pair", "tapb")),
                        items.index(("lxc.net.1.veth.pair", "tap12345678-9a")))
        self.assertIn(("lxc.net.1.ipv4.address", "10.0.0.5/24 10.0.0.255"), items)
        self.assertEqual(2, self.hv.free_slot(self.guest({"a": a, "b": b})))
        self.assertEqual(0, self.hv.free_slot(self.guest({"a": a})))

    def test_unsupported_ports_are_refused(self):
        for bad in (vif("ovs"), vif(devname=None)):
            self.assertRaises(exception.VirtualInterfacePlugException,
                              hypervisor.vif_entry, bad, 0)
        self.assertRaises(exception.VirtualInterfacePlugException, hypervisor.vif_entry,
                          vif(address="fa:16:3e"), 0)


class TestDriver(base.TestCase):
    def setUp(self):
        super().setUp()
        self.priv = mock.patch.object(hypervisor, "privsep", autospec=privsep).start()
        self.addCleanup(mock.patch.stopall)
        self.priv.state.return_value = {"defined": False, "state": "STOPPED",
                                        "init_pid": -1}
        self.drv = driver.LXCDriver(virtapi=None)
        self.drv.hv.check_host = lambda: None

    def test_capabilities(self):
        caps = self.drv.capabilities
        self.assertTrue(caps["supports_image_type_raw"])
        self.assertTrue(caps["supports_image_type_qcow2"])
        self.assertFalse(caps["supports_image_type_vmdk"])
        self.assertTrue(caps["supports_attach_interface"])

    def test_what_containers_cannot_do(self):
        inst = instance()
        for call in (lambda: self.drv.suspend(None, inst),
                     lambda: self.drv.rescue(None, inst, [], image(), "pw", None, None),
                     lambda: self.drv.get_vnc_console(None, inst),
                     lambda: self.drv.get_serial_console(None, inst),
                     lambda: self.drv.live_migration(None, inst, "h", None, None)):
            self.assertRaises(NotImplementedError, call)

    def test_spawn_refusals_leave_nothing(self):
        inst = instance()
        bdi = {"block_device_mapping": [{"connection_info": {}, "mount_device": "/dev/b"}]}
        self.assertRaises(exception.InvalidInput, self.drv.spawn, None, inst, image(), [],
                          None, {}, block_device_info=bdi)
        self.assertRaises(exception.VirtualInterfacePlugException, self.drv.spawn, None,
                          inst, image(), [], None, {}, network_info=[vif("ovs")])
        self.assertRaises(exception.ImageUnacceptable, self.drv.spawn, None, inst,
                          image("iso"), [], None, {})
        self.assertEqual([], os.listdir(self.instances))
        self.assertEqual([], self.priv.method_calls)

    def test_a_failed_start_removes_the_container(self):
        inst = instance()
        base = os.path.join(self.instances, "_lxc_base", "k")
        os.makedirs(base)
        self.drv.hv.rootfs = lambda *a: base
        self.priv.start.side_effect = exception.InstanceDeployFailure(reason="no")
        delete_tap = mock.patch("nova_common.privsep.delete_tap").start()   # boundary
        self.assertRaises(exception.InstanceDeployFailure, self.drv.spawn, None, inst,
                          image(), [], None, {}, network_info=[vif()])
        self.assertFalse(os.path.exists(os.path.join(self.instances, inst.uuid)))
        names = [c[0] for c in self.priv.method_calls]
        self.assertIn("define", names)
        self.assertIn("remove", names)
        self.assertIn("write_seed", names)
        delete_tap.assert_called_once_with("tap12345678-9a")    # a host end left behind

    def test_a_frozen_container_is_thawed_before_the_halt_signal(self):
        inst = instance()
        idir = instance_dir.InstanceDir(inst.uuid).create()
        record.write(idir.path, record.Record("instance-1", 2, 256, {
            "base": "/cache/b", "halt_signal": "SIGUSR2", "cpu": {}}))
        states = iter(["FROZEN", "FROZEN", "RUNNING"] + ["STOPPED"] * 10)
        self.priv.state.side_effect = lambda *a: {"defined": True, "init_pid": 7,
                                                  "state": next(states)}
        self.drv.power_off(inst, timeout=5, retry_interval=5)
        names = [c[0] for c in self.priv.method_calls]
        self.assertLess(names.index("thaw"), names.index("signal_init"))
        self.priv.signal_init.assert_called_once_with(inst.uuid, mock.ANY, "SIGUSR2")
