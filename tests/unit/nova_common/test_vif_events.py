"""nova_common.vif_events against nova-compute's real ComputeVirtAPI and InstanceEvents
(the events are delivered the way the compute manager delivers Neutron's)."""
from unittest import mock
import uuid

from nova import exception
from nova import objects
from nova.compute import manager
from nova.network import model as network_model

from nova_common import vif_events
from tests.unit.nova_common import base


def vif(active, vnic_type="normal"):
    return network_model.VIF(id=str(uuid.uuid4()), type="ovs", active=active,
                             vnic_type=vnic_type)


class TestVifEvents(base.TestCase):
    def setUp(self):
        super().setUp()
        objects.register_all()
        self.compute = mock.Mock(instance_events=manager.InstanceEvents())
        self.virtapi = manager.ComputeVirtAPI(self.compute)
        self.instance = objects.Instance(uuid=str(uuid.uuid4()), vm_state="building",
                                         task_state="spawning")

    def neutron_says(self, port_id, status="completed"):
        event = objects.InstanceExternalEvent(name="network-vif-plugged", tag=port_id,
                                              status=status)
        self.compute.instance_events.pop_instance_event(self.instance, event).set(event)

    def test_waits_only_for_ports_not_yet_active(self):
        down, up, unknown = vif(False), vif(True), vif(None)
        managed = vif(False, network_model.VNIC_TYPE_REMOTE_MANAGED)
        self.assertEqual([("network-vif-plugged", down["id"])],
                         vif_events.expected([down, up, unknown, managed]))

    def test_the_block_plugs_then_its_exit_waits_for_neutron(self):
        port = vif(False)
        self.flags(vif_plugging_timeout=30)
        with vif_events.plugging(self.virtapi, self.instance, [port]):
            self.neutron_says(port["id"])     # the port is wired while we plug

    def test_timeout_is_fatal_when_configured(self):
        self.flags(vif_plugging_timeout=1, vif_plugging_is_fatal=True)
        def plug():
            with vif_events.plugging(self.virtapi, self.instance, [vif(False)]):
                pass
        self.assertRaises(exception.VirtualInterfaceCreateException, plug)

    def test_timeout_only_warns_when_not_fatal(self):
        self.flags(vif_plugging_timeout=1, vif_plugging_is_fatal=False)
        with vif_events.plugging(self.virtapi, self.instance, [vif(False)]):
            pass

    def test_neutron_failure_is_fatal(self):
        port = vif(False)
        self.flags(vif_plugging_timeout=30, vif_plugging_is_fatal=True)
        def plug():
            with vif_events.plugging(self.virtapi, self.instance, [port]):
                self.neutron_says(port["id"], status="failed")
        self.assertRaises(exception.VirtualInterfaceCreateException, plug)

    def test_no_wait_when_not_powering_on_or_timeout_zero(self):
        self.flags(vif_plugging_timeout=0, vif_plugging_is_fatal=True)
        with vif_events.plugging(self.virtapi, self.instance, [vif(False)]):
            pass
        self.flags(vif_plugging_timeout=30)
        with vif_events.plugging(self.virtapi, self.instance, [vif(False)], power_on=False):
            pass

    def test_hard_reboot_waits_only_for_the_vnic_types_configured(self):
        normal, direct, up = vif(True), vif(False, "direct"), vif(None)
        self.assertEqual([], vif_events.on_hard_reboot([normal, direct]))   # the default
        self.flags(group="workarounds",
                   wait_for_vif_plugged_event_during_hard_reboot=["normal"])
        # every port of those types, active or not (it is unplugged before the replug)
        self.assertEqual([("network-vif-plugged", normal["id"]),
                          ("network-vif-plugged", up["id"])],
                         vif_events.on_hard_reboot([normal, direct, up]))
        # no port of those types: the ports not yet active, as libvirt falls back to
        self.assertEqual([("network-vif-plugged", direct["id"])],
                         vif_events.on_hard_reboot([direct]))

    def test_given_events_replace_the_default(self):
        self.flags(vif_plugging_timeout=1, vif_plugging_is_fatal=True)
        with vif_events.plugging(self.virtapi, self.instance, [vif(False)], events=[]):
            pass
        port = vif(True)
        def plug():
            with vif_events.plugging(self.virtapi, self.instance, [port],
                                     events=[("network-vif-plugged", port["id"])]):
                pass
        self.assertRaises(exception.VirtualInterfaceCreateException, plug)
