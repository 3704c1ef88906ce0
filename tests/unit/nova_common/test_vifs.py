"""nova_common.vifs: nova's own conversion (os_vif_util) runs for real; the boundaries
mocked are the privileged side (nova_common.privsep) and os-vif's plug/unplug, which
drive Open vSwitch (tests/functional/net runs them against a real one)."""
import os
import socket
import stat
from unittest import mock
import uuid

import fixtures
from nova import exception
from nova import objects
from nova.network import model as network_model
import os_vif
from os_vif import exception as osv_exception
from os_vif.objects import vif as osv_vif
from oslo_concurrency import processutils

from nova_common import confine
from nova_common import privsep
from nova_common import vifs
from tests.unit.nova_common import base

PORT = "12345678-9abc-def0-1234-56789abcdef0"
TAP = "tap12345678-9a"


def vif(kind="tap", devname=TAP, vnic_type="normal", **details):
    return network_model.VIF(
        id=PORT, type=kind, devname=devname, address="fa:16:3e:00:00:01",
        details=details, vnic_type=vnic_type, ovs_interfaceid=PORT, delegate_create=True,
        network=network_model.Network(id="2b9e5a0c-51f4-4d0e-9d38-3c4b1f1a0a01",
                                      bridge="br-int", meta={"mtu": 1400}))


def ovn_vif(**details):
    """What Neutron ML2/OVN binds on a userspace-datapath chassis without DPDK."""
    d = {"port_filter": True, "connectivity": "l2", "ovs_create_tap": True,
         "bridge_name": "br-int", "datapath_type": "netdev"}
    d.update(details)
    return vif("ovs", **d)


class VifsCase(base.TestCase):
    def setUp(self):
        super().setUp()
        objects.register_all()
        self.instance = objects.Instance(id=7, uuid=str(uuid.uuid4()), project_id="p1")
        # the boundaries: privileged calls and os-vif's plugging of Open vSwitch
        self.calls = mock.Mock()
        for name in ("create_tap", "create_veth", "delete_tap", "set_master",
                     "device_exists"):
            self.useFixture(fixtures.MockPatchObject(
                privsep, name, getattr(self.calls, name)))
        self.calls.device_exists.return_value = False
        for name in ("plug", "unplug"):
            self.useFixture(fixtures.MockPatchObject(
                os_vif, name, getattr(self.calls, "os_vif_" + name)))

    def names(self):
        return [c[0] for c in self.calls.mock_calls]


class TestVifs(VifsCase):
    def test_only_supported_ports_with_a_device_name(self):
        vifs.check(vif())
        vifs.check(ovn_vif())
        for bad in (vif("bridge"), vif(devname=None), vif("hw_veb"),
                    vif("binding_failed"), vif("unbound"), vif("vhostuser"),
                    vif("ovs", vnic_type="direct"), vif("ovs", vnic_type="remote-managed")):
            self.assertRaises(exception.VirtualInterfacePlugException, vifs.check, bad)

    def test_refused_ports_make_nothing_and_say_why(self):
        # a hypervisor without vhost-user (nova_cloudhypervisor, nova_lxc)
        e = self.assertRaises(exception.VirtualInterfacePlugException, vifs.check,
                              vif("vhostuser", vhostuser_mode="server",
                                  vhostuser_ovs_plug=True),
                              (network_model.VIF_TYPE_TAP, network_model.VIF_TYPE_OVS))
        self.assertIn("DPDK", str(e))
        self.assertIn(PORT, str(e))
        e = self.assertRaises(exception.VirtualInterfacePlugException, vifs.plug,
                              self.instance, vif("vhostuser", vhostuser_mode="server",
                                                 vhostuser_ovs_plug=True))
        self.assertIn("no vhost-user socket", str(e))
        e = self.assertRaises(exception.VirtualInterfacePlugException, vifs.plug,
                              self.instance, vif("binding_failed"))
        self.assertIn("failed to bind", str(e))
        self.assertEqual([], self.calls.mock_calls)

    def test_plug_makes_a_tap_for_nova_s_user(self):
        self.assertEqual(TAP, vifs.plug(None, vif(mac_address="fe:16:3e:00:00:02")))
        self.calls.create_tap.assert_called_once_with(TAP, mock.ANY, mtu=1400,
                                                      mac="fe:16:3e:00:00:02",
                                                      multiqueue=False)
        self.calls.os_vif_plug.assert_not_called()

    def test_queues_follow_nova_s_multiqueue_rule(self):
        def instance(vcpus, flavor_spec=None, image_prop=None, image_ref="img"):
            specs = {} if flavor_spec is None else {"hw:vif_multiqueue_enabled": flavor_spec}
            # the image's properties as nova keeps them with the instance
            meta = {} if image_prop is None else {
                "image_hw_vif_multiqueue_enabled": str(image_prop)}
            return objects.Instance(
                uuid=str(uuid.uuid4()), image_ref=image_ref, system_metadata=meta,
                flavor=objects.Flavor(name="f", vcpus=vcpus, extra_specs=specs))
        # booted from a volume: no image (tempest's boot from volume failed on this)
        self.assertEqual(1, vifs.queues(instance(2, image_ref="")))
        self.assertEqual(2, vifs.queues(instance(2, flavor_spec="true", image_ref="")))
        self.assertEqual(1, vifs.queues(instance(4)))                  # not asked
        self.assertEqual(4, vifs.queues(instance(4, flavor_spec="true")))
        self.assertEqual(3, vifs.queues(instance(3, image_prop=True)))
        self.assertEqual(1, vifs.queues(instance(1, flavor_spec="true")))  # one vCPU
        self.assertEqual(1, vifs.queues(instance(4, "false", False)))
        self.assertEqual(256, vifs.queues(instance(300, flavor_spec="true")))  # the cap
        self.assertRaises(exception.FlavorImageConflict, vifs.queues,
                          instance(4, flavor_spec="false", image_prop=True))

    def test_multiqueue_taps(self):
        vifs.plug(None, vif(), queues=4)
        vifs.plug(self.instance, ovn_vif(), queues=2)
        self.assertEqual([True, True], [c.kwargs["multiqueue"]
                                        for c in self.calls.create_tap.call_args_list])

    def test_os_vif_writes_the_ovs_port_then_the_tap_is_made(self):
        # libvirt's order: the row first (os-vif does not wait for ovs-vswitchd to attach
        # a device that is not there yet), then the tap, which ovs-vswitchd then attaches
        self.assertEqual(TAP, vifs.plug(self.instance, ovn_vif()))
        self.assertEqual(["device_exists", "os_vif_plug", "create_tap"], self.names())
        # owned by this process's user (the hypervisor's), with the port's MTU; the tap's
        # own MAC is not the guest's
        self.calls.create_tap.assert_called_once_with(TAP, os.getuid(), mtu=1400,
                                                      mac="fe:16:3e:00:00:01",
                                                      disable_ipv6=True,
                                                      multiqueue=False)
        obj, info = self.calls.os_vif_plug.call_args[0]
        self.assertIsInstance(obj, osv_vif.VIFOpenVSwitch)
        self.assertEqual((TAP, "br-int", "fa:16:3e:00:00:01"),
                         (obj.vif_name, obj.network.bridge, str(obj.address)))
        self.assertEqual(PORT, obj.port_profile.interface_id)
        self.assertEqual("netdev", obj.port_profile.datapath_type)
        self.assertTrue(obj.port_profile.create_port)
        # Neutron asked for os-vif's tap (ML2/OVN's default): the device is still ours
        self.assertFalse(obj.port_profile.create_tap)
        self.assertEqual(1400, obj.network.mtu)
        self.assertEqual(self.instance.uuid, info.uuid)

    def test_os_vif_writes_the_ovs_port_even_when_nova_did_not_ask(self):
        port = ovn_vif()
        port["delegate_create"] = False
        vifs.plug(self.instance, port)
        self.assertTrue(self.calls.os_vif_plug.call_args[0][0].port_profile.create_port)

    def test_ml2_ovs_port_without_create_tap(self):
        vifs.plug(self.instance, ovn_vif(ovs_create_tap=False, datapath_type="system"))
        obj = self.calls.os_vif_plug.call_args[0][0]
        self.assertTrue(obj.port_profile.create_port)
        self.assertFalse(obj.port_profile.create_tap)
        self.calls.create_tap.assert_called_once()

    def test_hybrid_plug_puts_the_tap_on_os_vif_s_bridge(self):
        vifs.plug(self.instance, ovn_vif(ovs_hybrid_plug=True, ovs_create_tap=False))
        obj = self.calls.os_vif_plug.call_args[0][0]
        self.assertIsInstance(obj, osv_vif.VIFBridge)
        self.assertEqual("qbr12345678-9a", obj.bridge_name)
        self.assertFalse(obj.port_profile.create_tap)
        self.assertEqual(["device_exists", "os_vif_plug", "create_tap", "set_master"],
                         self.names())
        self.calls.set_master.assert_called_once_with(TAP, "qbr12345678-9a")

    def test_failed_plug_leaves_nothing(self):
        self.calls.os_vif_plug.side_effect = osv_exception.PlugException(
            vif="v", err="ovsdb unreachable")
        e = self.assertRaises(exception.VirtualInterfacePlugException, vifs.plug,
                              self.instance, ovn_vif())
        self.assertIn("ovsdb unreachable", str(e))
        self.assertEqual(["device_exists", "os_vif_plug", "os_vif_unplug", "delete_tap"],
                         self.names())
        self.calls.delete_tap.assert_called_once_with(TAP)

    def test_container_port_is_a_veth_pair_after_the_ovs_row(self):
        self.assertEqual(TAP, vifs.plug(self.instance, ovn_vif(), peer="vp12345678-9a"))
        self.assertEqual(["device_exists", "os_vif_plug", "create_veth"], self.names())
        # the container's end carries the port's MAC; IPv6 off on the host end
        self.calls.create_veth.assert_called_once_with(
            TAP, "vp12345678-9a", mtu=1400, peer_mac="fa:16:3e:00:00:01",
            disable_ipv6=True)
        self.assertFalse(self.calls.os_vif_plug.call_args[0][0].port_profile.create_tap)
        self.calls.create_tap.assert_not_called()

    def test_container_tap_port_keeps_ipv6_on_the_host_end(self):
        vifs.plug(self.instance, vif(), peer="vp12345678-9a")
        self.calls.create_veth.assert_called_once_with(
            TAP, "vp12345678-9a", mtu=1400, peer_mac="fa:16:3e:00:00:01",
            disable_ipv6=False)
        self.calls.os_vif_plug.assert_not_called()

    def test_failed_veth_after_the_ovs_row_leaves_nothing(self):
        self.calls.create_veth.side_effect = RuntimeError("RTNETLINK answers: File exists")
        self.assertRaises(exception.VirtualInterfacePlugException, vifs.plug,
                          self.instance, ovn_vif(), peer="vp12345678-9a")
        self.assertEqual(["device_exists", "os_vif_plug", "create_veth", "os_vif_unplug",
                          "delete_tap"], self.names())

    def test_failed_tap_port_device_is_removed_if_made_here(self):
        self.calls.create_veth.side_effect = RuntimeError("no")
        self.assertRaises(RuntimeError, vifs.plug, self.instance, vif(), peer="vpx")
        self.calls.delete_tap.assert_called_once_with(TAP)
        self.calls.reset_mock()
        self.calls.device_exists.return_value = True       # a running container's
        self.assertRaises(RuntimeError, vifs.plug, self.instance, vif(), peer="vpx")
        self.calls.delete_tap.assert_not_called()

    def test_failed_replug_keeps_a_tap_it_did_not_make(self):
        # plug_vifs at host start on a running instance: its tap is in use
        self.calls.device_exists.return_value = True
        self.calls.os_vif_plug.side_effect = osv_exception.PlugException(vif="v", err="x")
        self.assertRaises(exception.VirtualInterfacePlugException, vifs.plug,
                          self.instance, ovn_vif())
        self.calls.delete_tap.assert_not_called()

    def test_unplug_ovs_port_through_os_vif_then_the_tap(self):
        vifs.unplug(self.instance, ovn_vif())
        self.assertEqual(["os_vif_unplug", "delete_tap"], self.names())
        obj, info = self.calls.os_vif_unplug.call_args[0]
        self.assertEqual((TAP, PORT), (obj.vif_name, obj.port_profile.interface_id))

    def test_unplug_of_a_refused_port_does_nothing(self):
        vifs.unplug(self.instance, vif("vhostuser"))
        vifs.unplug(self.instance, vif("binding_failed"))
        self.assertEqual([], self.calls.mock_calls)

    def test_failed_unplug_is_an_error(self):
        self.calls.os_vif_unplug.side_effect = osv_exception.UnplugException(
            vif="v", err="ovsdb unreachable")
        self.assertRaises(exception.InternalError, vifs.unplug, self.instance, ovn_vif())


def vhu_vif(sock_dir, name="vhu12345678-9a", **details):
    """What Neutron ML2/OVN binds on a chassis with DPDK (OVS dpdkvhostuserclient)."""
    d = {"port_filter": False, "connectivity": "l2", "datapath_type": "netdev",
         "vhostuser_mode": "server", "vhostuser_ovs_plug": True,
         "vhostuser_socket": os.path.join(sock_dir, name)}
    d.update(details)
    return vif("vhostuser", **d)


class TestVhostUser(VifsCase):
    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.useFixture(fixtures.TempDir()).path, "vhu")
        self.flags(vhostuser_socket_dir=self.dir, group="hci_guests")
        self.grant = self.useFixture(fixtures.MockPatchObject(
            confine, "grant_socket_dir")).mock

    def test_only_server_mode_ovs_ports_with_a_socket_in_the_directory(self):
        vifs.check(vhu_vif(self.dir), vifs.SUPPORTED)
        vifs.check(vhu_vif(self.dir, devname=None), vifs.SUPPORTED)    # no tap: no name
        for bad, why in (
                (vhu_vif(self.dir, vhostuser_mode="client"), "only 'server'"),
                (vhu_vif(self.dir, vhostuser_ovs_plug=False), "vhostuser_ovs_plug"),
                (vhu_vif(self.dir, vhostuser_fp_plug=True), "vhostuser_ovs_plug"),
                (vhu_vif(self.dir, vhostuser_socket=None), "no vhost-user socket"),
                (vhu_vif("/run/openvswitch"), "not a plain name"),
                (vhu_vif(self.dir, "../../etc/x"), "not a plain name"),
                (vhu_vif(self.dir + "/sub", "x"), "not a plain name"),
                (vhu_vif(self.dir, "a,server=off"), "not a plain name"),
                (vhu_vif(self.dir, ".hidden"), "not a plain name"),
                (vhu_vif(self.dir, vnic_type="direct"), "VNIC type")):
            e = self.assertRaises(exception.VirtualInterfacePlugException, vifs.check,
                                  bad, vifs.SUPPORTED)
            self.assertIn(why, str(e))
        self.flags(vhostuser_socket_dir="/var/lib/../x", group="hci_guests")
        self.assertRaises(exception.InvalidInput, vifs.socket_dir)
        self.flags(vhostuser_socket_dir="/var/lib/a,b", group="hci_guests")
        self.assertRaises(exception.InvalidInput, vifs.socket_dir)

    def test_os_vif_writes_a_dpdk_client_port_qemu_serves_and_no_tap_is_made(self):
        port = vhu_vif(self.dir)
        path = vifs.plug(self.instance, port, owner=1900000001)
        self.assertEqual(os.path.join(self.dir, "vhu12345678-9a"), path)
        self.assertEqual({"vhostuser": path}, vifs.backend(port, path))
        self.assertEqual(["os_vif_plug"], self.names())       # no tap, no privileged call
        obj, info = self.calls.os_vif_plug.call_args[0]
        self.assertIsInstance(obj, osv_vif.VIFVHostUser)
        self.assertEqual(("ovs", "server", path), (obj.plugin, obj.mode, obj.path))
        self.assertEqual((PORT, "netdev"), (obj.port_profile.interface_id,
                                            obj.port_profile.datapath_type))
        self.assertEqual("br-int", obj.network.bridge)
        self.assertEqual(self.instance.uuid, info.uuid)
        # the directory: made, sticky, the guest uid granted
        self.assertTrue(os.stat(self.dir).st_mode & stat.S_ISVTX)
        self.grant.assert_called_once_with(self.dir, 1900000001)
        vifs.plug(self.instance, port)                       # nova's own uid: no grant
        self.grant.assert_called_once()
        # a directory nova cannot grant access to (e.g. root's): refused, nothing made
        self.calls.reset_mock()
        self.grant.side_effect = processutils.ProcessExecutionError(stderr="not permitted")
        e = self.assertRaises(exception.VirtualInterfacePlugException, vifs.plug,
                              self.instance, port, owner=1900000001)
        self.assertIn("socket directory", str(e))
        self.assertEqual([], self.names())

    def test_failed_plug_leaves_nothing(self):
        self.calls.os_vif_plug.side_effect = osv_exception.PlugException(
            vif="v", err="ovsdb unreachable")
        e = self.assertRaises(exception.VirtualInterfacePlugException, vifs.plug,
                              self.instance, vhu_vif(self.dir))
        self.assertIn("ovsdb unreachable", str(e))
        self.assertEqual(["os_vif_plug", "os_vif_unplug"], self.names())

    def test_unplug_removes_the_port_and_a_socket_left_behind(self):
        port = vhu_vif(self.dir)
        os.makedirs(self.dir)
        path = os.path.join(self.dir, "vhu12345678-9a")
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.bind(path)                  # what a killed QEMU leaves
        vifs.unplug(self.instance, port)
        self.assertEqual(["os_vif_unplug"], self.names())
        self.assertIsInstance(self.calls.os_vif_unplug.call_args[0][0], osv_vif.VIFVHostUser)
        self.assertFalse(os.path.exists(path))
        with open(path, "w"):            # not a socket: not removed
            pass
        vifs.unplug(self.instance, port)
        self.assertTrue(os.path.exists(path))
        vifs.unplug(self.instance, vhu_vif("/elsewhere"))    # refused: never plugged
        self.assertEqual(2, self.calls.os_vif_unplug.call_count)


class TestPrivileged(base.TestCase):
    def test_privileged_side_validates_names(self):
        for bad in ("", "a" * 16, "-x", "tap 1", "tap;x", None):
            self.assertRaises(ValueError, privsep._device, bad)
        self.assertEqual(TAP, privsep._device(TAP))
        self.assertRaises(ValueError, privsep._mac, "fa:16:3e:00:00")
        self.assertRaises(ValueError, privsep.device_exists, "../x")
        for dev, peer in (("tap1", "tap1"), ("tap1", "vp;x"), ("tap 1", "vp1")):
            self.assertRaises(ValueError, privsep._veth_names, dev, peer)
