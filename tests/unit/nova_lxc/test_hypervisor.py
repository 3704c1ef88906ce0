"""LXCHypervisor and LXCDriver without liblxc: the privileged side (nova_lxc.privsep) is
the boundary, recorded by a mock; the container layer on real liblxc is in
tests/functional/nova_lxc."""
import os
from unittest import mock

import fixtures
from nova import exception
from nova import objects
from nova.compute import manager
from nova.network import model as network_model
from oslo_utils import uuidutils

from nova_common import hypervisor as hv_api
from nova_common import instance_dir
from nova_common import record
from nova_lxc import container
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


def vif(kind="tap", devname="tap12345678-9a", address="fa:16:3e:00:00:01", **details):
    subnet = network_model.Subnet(
        cidr="10.0.0.0/24", version=4,
        gateway=network_model.IP(address="10.0.0.1", type="gateway"),
        ips=[network_model.FixedIP(address="10.0.0.5")])
    return network_model.VIF(
        id="12345678-9abc-def0-1234-56789abcdef0", type=kind, devname=devname,
        address=address, details=details, vnic_type="normal", active=True,
        ovs_interfaceid="12345678-9abc-def0-1234-56789abcdef0", delegate_create=True,
        network=network_model.Network(id="2b9e5a0c-51f4-4d0e-9d38-3c4b1f1a0a01",
                                      bridge="br-int", subnets=[subnet],
                                      meta={"mtu": 1400}))


def ovn_vif(**details):
    """A port ML2/OVN binds (os-vif's tap asked for, as in 2026.2)."""
    d = {"port_filter": True, "connectivity": "l2", "ovs_create_tap": True,
         "bridge_name": "br-int", "datapath_type": "netdev"}
    d.update(details)
    return vif("ovs", **d)


class TestLaunchSpec(base.TestCase):
    def setUp(self):
        super().setUp()
        self.hv = hypervisor.LXCHypervisor()

    def test_spec_holds_the_halt_signal_and_cpu_quotas(self):
        inst = instance(system_metadata={"image_lxc_halt_signal": "SIGRTMIN+3"})
        inst.flavor.extra_specs = {"quota:cpu_quota": "50000", "quota:disk_read": "1"}
        spec = self.hv.launch_spec(inst, image(), root_disk=True, config_drive=False)
        self.assertEqual({"halt_signal": "SIGRTMIN+3", "cpu": {"cpu_quota": "50000"},
                          "root_gb": 1}, spec)
        self.flags(halt_signal="SIGUSR2", group="lxc_native")
        spec = self.hv.launch_spec(instance(), image(), True, False,
                                   previous={"base": "/cache/x", "halt_signal": "SIGPWR"})
        self.assertEqual({"base": "/cache/x", "halt_signal": "SIGUSR2", "cpu": {}}, spec)

    def test_root_gb_chosen_at_spawn_and_only_grown_by_a_resize(self):
        inst = instance()
        inst.flavor.root_gb = 0
        self.assertEqual(0, self.hv.launch_spec(inst, image(), True, False)["root_gb"])
        inst.flavor.root_gb = 5                  # a disk of its own only from spawn
        self.assertEqual(0, self.hv.launch_spec(inst, image(), True, False,
                                                previous={"root_gb": 0})["root_gb"])
        self.assertEqual(5, self.hv.launch_spec(inst, image(), True, False,
                                                previous={"root_gb": 2})["root_gb"])
        inst.flavor.root_gb = 1                  # a revert to a smaller flavor
        self.assertEqual(5, self.hv.launch_spec(inst, image(), True, False,
                                                previous={"root_gb": 5})["root_gb"])

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


class TestRootDisk(base.TestCase):
    def setUp(self):
        super().setUp()
        self.hv = hypervisor.LXCHypervisor()
        self.inst = instance()
        self.idir = instance_dir.InstanceDir(self.inst.uuid)

    def guest(self, root_gb):
        return hv_api.Guest(self.inst.uuid, self.idir, record.Record(
            name="instance-1", vcpus=2, memory_mb=256, vifs={},
            spec={"base": "/cache/base", "halt_signal": "SIGPWR", "cpu": {},
                  "root_gb": root_gb}))

    def test_the_upper_directory_is_on_the_root_disk_when_sized(self):
        self.flags(cgroup_version="1", group="lxc_native")
        items = dict(self.hv._items(self.guest(3)))
        self.assertEqual("overlay:/cache/base:%s/rootfs.mnt/rootfs.upper"
                         % self.idir.path, items["lxc.rootfs.path"])
        items = dict(self.hv._items(self.guest(0)))
        self.assertEqual("overlay:/cache/base:%s/rootfs.upper" % self.idir.path,
                         items["lxc.rootfs.path"])

    def test_start_mounts_it_stop_unmounts_it_a_failed_start_too(self):
        self.flags(cgroup_version="1", group="lxc_native")
        with mock.patch.object(hypervisor, "privsep") as priv, \
                mock.patch.object(self.hv, "_watch"):
            priv.start.return_value = 42
            guest = self.guest(3)
            self.hv.start(guest)
            priv.mount_root_disk.assert_called_once_with(
                self.inst.uuid, hypervisor.lxcpath(), 3, 100000)
            self.hv.stop(guest)
            priv.umount_root_disk.assert_called_once_with(self.inst.uuid,
                                                          hypervisor.lxcpath())
            priv.reset_mock()
            priv.start.side_effect = hypervisor.container.ContainerError(
                name="x", reason="no")
            self.assertRaises(exception.InstanceDeployFailure, self.hv.start, guest)
            priv.umount_root_disk.assert_called_once_with(self.inst.uuid,
                                                          hypervisor.lxcpath())
            priv.reset_mock()
            priv.start.side_effect = None
            self.hv.start(self.guest(0))
            self.hv.stop(self.guest(0))
            priv.mount_root_disk.assert_not_called()
            priv.umount_root_disk.assert_not_called()


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

    def test_vif_entries_become_phys_interfaces_in_slot_order(self):
        a = hypervisor.vif_entry(vif(), 1)
        self.assertEqual({"tap": "tap12345678-9a", "peer": "vp12345678-9a",
                          "mac": "fa:16:3e:00:00:01", "slot": 1, "mtu": 1400,
                          "ipv4": [["10.0.0.5", 24, "10.0.0.255"]], "gateway": "10.0.0.1",
                          "ipv6_off": False}, a)
        b = hypervisor.vif_entry(ovn_vif(), 0)
        b.update(tap="tapb", peer="vpb")
        self.assertTrue(b["ipv6_off"])
        items = self.hv._items(self.guest({"a": a, "b": b}))
        self.assertLess(items.index(("lxc.net.0.link", "vpb")),
                        items.index(("lxc.net.1.link", "vp12345678-9a")))
        self.assertIn(("lxc.net.1.type", "phys"), items)
        self.assertIn(("lxc.net.1.ipv4.address", "10.0.0.5/24 10.0.0.255"), items)
        self.assertEqual(2, self.hv.free_slot(self.guest({"a": a, "b": b})))
        self.assertEqual(0, self.hv.free_slot(self.guest({"a": a})))

    def test_an_earlier_record_without_a_peer(self):
        # liblxc made the pair at start then: the same names now
        old = {"tap": "tap12345678-9a", "mac": "fa:16:3e:00:00:01", "slot": 0,
               "mtu": None, "ipv4": [], "gateway": None}
        self.assertIn(("lxc.net.0.link", "vp12345678-9a"),
                      self.hv._items(self.guest({"a": old})))

    def test_unsupported_ports_are_refused(self):
        for bad in (vif("vhostuser"), vif(devname=None), vif("bridge"),
                    ovn_vif(ovs_hybrid_plug=True, ovs_create_tap=False)):
            self.assertRaises(exception.VirtualInterfacePlugException,
                              hypervisor.vif_entry, bad, 0)
        e = self.assertRaises(exception.VirtualInterfacePlugException, hypervisor.check_vif,
                              ovn_vif(ovs_hybrid_plug=True))
        self.assertIn("hybrid plug", str(e))
        self.assertRaises(exception.VirtualInterfacePlugException, hypervisor.vif_entry,
                          vif(address="fa:16:3e"), 0)

    def test_start_makes_missing_pairs_before_liblxc_takes_them(self):
        calls = mock.Mock()
        priv = self.useFixture(fixtures.MockPatchObject(hypervisor, "privsep",
                                                        calls.lxc)).mock
        priv.start.return_value = 4242
        self.useFixture(fixtures.MockPatch("nova_common.privsep.create_veth",
                                           calls.create_veth))
        self.flags(cgroup_version="1", group="lxc_native")
        guest = self.guest({"a": hypervisor.vif_entry(ovn_vif(), 0)})
        self.hv.start(guest)
        self.assertEqual(["create_veth", "lxc.define", "lxc.start"],
                         [c[0] for c in calls.mock_calls][:3])
        calls.create_veth.assert_called_once_with(
            "tap12345678-9a", "vp12345678-9a", mtu=1400, peer_mac="fa:16:3e:00:00:01",
            disable_ipv6=True)


class TestCheckHost(base.TestCase):
    def test_host_state_path_is_refused(self):
        # the option means a shared instances_path, where liblxc's lxcpath cannot be
        self.flags(host_state_path=self.useFixture(fixtures.TempDir()).path,
                   group="hci_guests")
        e = self.assertRaises(exception.InvalidInput, hypervisor.LXCHypervisor().check_host)
        self.assertIn("host_state_path", str(e))


class TestDriver(base.TestCase):
    def setUp(self):
        super().setUp()
        self.priv = mock.patch.object(hypervisor, "privsep", autospec=privsep).start()
        self.addCleanup(mock.patch.stopall)
        self.priv.state.return_value = {"defined": False, "state": "STOPPED",
                                        "init_pid": -1}
        self.drv = driver.LXCDriver(virtapi=None)
        self.drv.hv.check_host = lambda: None
        # the network boundaries: the privileged calls and os-vif's OVSDB plugging
        self.net = mock.Mock()
        self.net.device_exists.return_value = False
        for name in ("create_veth", "create_tap", "delete_tap", "device_exists",
                     "set_master"):
            self.useFixture(fixtures.MockPatch("nova_common.privsep." + name,
                                               getattr(self.net, name)))
        for name in ("plug", "unplug"):
            self.useFixture(fixtures.MockPatch("os_vif." + name,
                                               getattr(self.net, "os_vif_" + name)))
        self.order = []
        for m in (self.net.os_vif_plug, self.net.create_veth, self.net.os_vif_unplug,
                  self.net.delete_tap, self.priv.define, self.priv.start):
            m.side_effect = lambda *a, _m=m, **k: (self.order.append(_m._mock_name),
                                                   mock.DEFAULT)[1]
        self.priv.start.return_value = 4242

    def base(self):
        base = os.path.join(self.instances, "_lxc_base", "k")
        os.makedirs(base, exist_ok=True)
        self.drv.hv.rootfs = lambda *a: base
        return base

    def neutron(self, wired=True):
        """nova-compute's real virtapi; Neutron's event comes once the pair is made."""
        compute = mock.Mock(instance_events=manager.InstanceEvents())
        self.drv.virtapi = manager.ComputeVirtAPI(compute)
        self.flags(vif_plugging_timeout=1, vif_plugging_is_fatal=True)

        def create_veth(dev, peer, **kw):
            self.order.append("create_veth")
            if wired and "network-vif-plugged" not in self.order:
                event = objects.InstanceExternalEvent(
                    name="network-vif-plugged", tag=ovn_vif()["id"], status="completed")
                compute.instance_events.pop_instance_event(self.inst, event).set(event)
                self.order.append("network-vif-plugged")
        self.net.create_veth.side_effect = create_veth

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
                          inst, image(), [], None, {},
                          network_info=[ovn_vif(ovs_hybrid_plug=True)])
        self.assertRaises(exception.ImageUnacceptable, self.drv.spawn, None, inst,
                          image("iso"), [], None, {})
        self.assertEqual([], os.listdir(self.instances))
        self.assertEqual([], self.priv.method_calls)
        self.assertEqual([], self.net.mock_calls)

    def test_a_failed_start_removes_the_container(self):
        inst = instance()
        self.base()
        self.priv.start.side_effect = exception.InstanceDeployFailure(reason="no")
        self.assertRaises(exception.InstanceDeployFailure, self.drv.spawn, None, inst,
                          image(), [], None, {}, network_info=[vif()])
        self.assertFalse(os.path.exists(os.path.join(self.instances, inst.uuid)))
        names = [c[0] for c in self.priv.method_calls]
        self.assertIn("define", names)
        self.assertIn("remove", names)
        self.assertIn("write_seed", names)
        self.net.delete_tap.assert_called_with("tap12345678-9a")    # the pair goes

    def test_spawn_plugs_an_ovs_port_and_waits_before_the_container_starts(self):
        self.inst = inst = instance(vm_state="building")
        self.base()
        self.neutron()
        port = ovn_vif()
        port["active"] = False
        self.drv.spawn(None, inst, image(), [], None, {}, network_info=[port])
        # os-vif writes the row (its tap off), the pair is made, Neutron reports the port
        # wired, and only then liblxc defines and starts the container
        self.assertEqual(["os_vif_plug", "create_veth", "network-vif-plugged",
                          "create_veth", "define", "start"], self.order)
        obj, info = self.net.os_vif_plug.call_args[0]
        self.assertEqual(("tap12345678-9a", inst.uuid), (obj.vif_name, info.uuid))
        self.assertFalse(obj.port_profile.create_tap)
        self.assertTrue(obj.port_profile.create_port)
        self.net.create_veth.assert_called_with(
            "tap12345678-9a", "vp12345678-9a", mtu=1400, peer_mac="fa:16:3e:00:00:01",
            disable_ipv6=True)
        items = self.priv.define.call_args[0][2]
        self.assertIn(["lxc.net.0.type", "phys"], [list(i) for i in items])
        self.assertIn(["lxc.net.0.link", "vp12345678-9a"], [list(i) for i in items])

    def test_no_event_in_time_starts_nothing_and_leaves_nothing(self):
        self.inst = inst = instance(vm_state="building")
        self.base()
        self.neutron(wired=False)
        port = ovn_vif()
        port["active"] = False
        self.assertRaises(exception.VirtualInterfaceCreateException, self.drv.spawn, None,
                          inst, image(), [], None, {}, network_info=[port])
        self.assertNotIn("start", self.order)
        self.assertNotIn("define", self.order)
        self.assertEqual(["os_vif_unplug", "delete_tap"], self.order[-2:])
        self.assertFalse(os.path.exists(os.path.join(self.instances, inst.uuid)))

    def test_plug_vifs_at_host_start_is_idempotent(self):
        inst = instance()
        self.base()
        self.drv.spawn(None, inst, image(), [], None, {}, network_info=[ovn_vif()])
        self.order.clear()
        self.priv.reset_mock()
        for _ in range(2):
            self.drv.plug_vifs(inst, [ovn_vif()])
        self.assertEqual(["os_vif_plug", "create_veth"] * 2, self.order)
        self.assertEqual([], [c[0] for c in self.priv.method_calls])  # no container work

    def test_hot_plug_of_an_ovs_port_and_its_failure(self):
        inst = instance()
        self.base()
        self.drv.spawn(None, inst, image(), [], None, {})
        self.priv.state.return_value = {"defined": True, "state": "RUNNING",
                                        "init_pid": 7}
        self.order.clear()
        self.drv.attach_interface(None, inst, image(), ovn_vif())
        self.assertEqual(["os_vif_plug", "create_veth"], self.order)
        self.priv.attach_nic.assert_called_once_with(
            inst.uuid, self.instances, "vp12345678-9a", 0, "fa:16:3e:00:00:01", 1400,
            [["10.0.0.5", 24, "10.0.0.255"]], "10.0.0.1")
        self.drv.detach_interface(None, inst, ovn_vif())
        self.priv.detach_nic.assert_called_once_with(inst.uuid, self.instances,
                                                     "tap12345678-9a")
        self.assertEqual(["os_vif_unplug", "delete_tap"], self.order[-2:])
        # liblxc cannot move the end in: the port is unplugged again, nothing recorded
        self.order.clear()
        self.priv.attach_nic.side_effect = container.ContainerError(name="c", reason="x")
        self.assertRaises(exception.InterfaceAttachFailed, self.drv.attach_interface,
                          None, inst, image(), ovn_vif())
        self.assertEqual(["os_vif_plug", "create_veth", "os_vif_unplug", "delete_tap"],
                         self.order)
        self.assertEqual({}, record.read(os.path.join(self.instances, inst.uuid)).vifs)

    def test_destroy_removes_the_container_then_the_ovs_row_and_pair(self):
        inst = instance()
        self.base()
        self.drv.spawn(None, inst, image(), [], None, {}, network_info=[ovn_vif()])
        self.order.clear()
        self.drv.destroy(None, inst, [ovn_vif()])
        self.assertEqual(["os_vif_unplug", "delete_tap"], self.order)
        self.net.delete_tap.assert_called_once_with("tap12345678-9a")
        self.assertIn("remove", [c[0] for c in self.priv.method_calls])

    def test_a_container_end_left_on_the_host_goes_too(self):
        # a backend moved the host end away: deleting it by name leaves the pair
        inst = instance()
        self.net.device_exists.side_effect = lambda dev: dev == "vp12345678-9a"
        self.drv.unplug_vifs(inst, [vif()])
        self.assertEqual([mock.call("tap12345678-9a"), mock.call("vp12345678-9a")],
                         self.net.delete_tap.call_args_list)

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
