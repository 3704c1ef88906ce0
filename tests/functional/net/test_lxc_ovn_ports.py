"""The LXC driver's ``ovs`` ports on a real Open vSwitch (userspace datapath) run by OVN,
with unprivileged containers on real liblxc whose traffic that switch carries.

The test plays Neutron ML2/OVN (a logical switch, logical ports named by the port ids)
and nova-compute (``LXCDriver`` as nova instantiates it, the image already in its cache
instead of fetched from Glance). Its virtapi stands for Neutron's ``network-vif-plugged``:
the wait ends when OVN reports the logical port up, as Neutron's event follows it; what
the container's state is at that moment is recorded.
"""
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import fixtures
import lxc
from nova import objects
import nova.conf
from nova.network import model as network_model
from oslo_config import fixture as config_fixture
import testtools
from vif_plug_ovs import privsep as os_vif_privsep

from nova_common import privsep
from nova_lxc import container
from nova_lxc import driver
from nova_lxc import hypervisor
from nova_lxc import images
from nova_lxc import privsep as lxc_privsep
from tests.common import lxc_rootfs
from tests.common import ovs

CONF = nova.conf.CONF
MTU = 1400


class NeutronEvents:
    """A virtapi whose ``network-vif-plugged`` wait ends when OVN reports the ports up."""

    def __init__(self, test):
        self.test = test
        self.seen = []          # (port id, container state when OVN reported it up)

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, events, timeout=300, error_callback=None):
        yield
        for _name, port_id in events:
            self.test.wait_up(port_id)
            self.seen.append((port_id, container.state(instance.uuid, CONF.instances_path)
                              ["state"]))


class TestLXCOVNPorts(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(300, gentle=True))
        objects.register_all()
        self.host = self.useFixture(ovs.OVNHost())
        self.useFixture(ovs.OsVif(self.host))
        for context in (privsep.net_admin, os_vif_privsep.vif_plug, lxc_privsep.lxc_admin):
            context.set_client_mode(False)
            self.addCleanup(context.set_client_mode, True)
        root = tempfile.mkdtemp(prefix="lxco", dir="/tmp")
        self.addCleanup(shutil.rmtree, root, True)
        os.chmod(root, 0o711)
        self.instances = os.path.join(root, "instances")
        os.makedirs(self.instances, mode=0o711)
        conf = self.useFixture(config_fixture.Config(CONF))
        conf.config(instances_path=self.instances, vif_plugging_timeout=60,
                    vif_plugging_is_fatal=True)
        conf.config(apparmor_profile="unconfined", group="lxc_native")
        # the image as spawn would have unpacked it from Glance
        self.image_id = str(uuid.uuid4())
        images.unpack(lxc_rootfs.tarball(root), hypervisor.cache_path(),
                      images.cache_key(self.image_id, hypervisor.idmap()),
                      hypervisor.idmap(), self.image_id)
        self.neutron = NeutronEvents(self)
        self.drv = driver.LXCDriver(self.neutron)
        self.switch = "ls-lxc-%d" % os.getpid()
        self.host.nbctl("ls-add", self.switch)
        self.addCleanup(self.host.nbctl, "ls-del", self.switch)

    # -- Neutron's part ---------------------------------------------------------------------
    def port(self, ip, **details):
        """A logical port and nova's VIF model of it as ML2/OVN binds it here."""
        port_id, mac = str(uuid.uuid4()), "fa:16:3e:00:01:%02x" % int(ip.split(".")[-1])
        self.host.nbctl("lsp-add", self.switch, port_id)
        self.host.nbctl("lsp-set-addresses", port_id, "%s %s" % (mac, ip))
        d = {"port_filter": True, "connectivity": "l2", "ovs_create_tap": True,
             "bridge_name": "br-int", "datapath_type": "netdev"}
        d.update(details)
        subnet = network_model.Subnet(
            cidr="10.0.0.0/24", version=4,
            gateway=network_model.IP(address="10.0.0.1", type="gateway"),
            ips=[network_model.FixedIP(address=ip)])
        return network_model.VIF(
            id=port_id, address=mac, type=network_model.VIF_TYPE_OVS,
            devname=("tap" + port_id)[:14], ovs_interfaceid=port_id, vnic_type="normal",
            delegate_create=True, active=False, details=d,
            network=network_model.Network(id=str(uuid.uuid4()), bridge="br-int",
                                          label="net", subnets=[subnet],
                                          meta={"mtu": MTU}))

    def wait_up(self, port_id):
        self.host.wait(lambda: self.host.nbctl("lsp-get-up", port_id).strip() == "up",
                       "OVN to report %s up" % port_id)

    def bound(self, port_id):
        """Whether ovn-controller has claimed the port (Port_Binding's chassis set)."""
        [row] = self.host.find(self.host.sbctl, "Port_Binding", "logical_port=" + port_id,
                               columns=("chassis",))
        return row["chassis"][0] == "uuid"

    # -- nova's part ------------------------------------------------------------------------
    def instance(self):
        inst = objects.Instance(
            id=len(os.listdir(self.instances)) + 1, uuid=str(uuid.uuid4()),
            image_ref=self.image_id, project_id="p1", hostname="c", config_drive="",
            key_data=None, user_data=None, vm_state="building", task_state=None,
            system_metadata={"image_lxc_halt_signal": lxc_rootfs.HALT_SIGNAL},
            flavor=objects.Flavor(name="f", vcpus=1, memory_mb=128, root_gb=0,
                                  extra_specs={}))
        self.addCleanup(self.destroy_quietly, inst)
        return inst

    def spawn(self, inst, vifs):
        image = objects.ImageMeta.from_dict({"disk_format": "raw",
                                             "container_format": "bare"})
        self.drv.spawn(None, inst, image, [], None, {}, network_info=vifs)

    def destroy_quietly(self, inst):
        if os.path.isdir(os.path.join(self.instances, inst.uuid)):
            self.drv.destroy(None, inst, getattr(inst, "test_vifs", []))

    def run_in(self, inst, command):
        c = lxc.Container(inst.uuid, self.instances)
        return c.attach_wait(lxc.attach_run_command, ["/bin/sh", "-c", command]) >> 8

    def interfaces(self, port_id):
        return self.host.find(self.host.vsctl, "Interface", "external_ids:iface-id=" + port_id,
                              columns=("name", "external_ids", "ofport"))

    def assert_nothing_left(self, vif, inst=None):
        """No device, OVS port or external id of ``vif`` (and of ``inst``, deleted)."""
        peer = hypervisor.peer_of({"tap": vif["devname"]})
        for dev in (vif["devname"], peer):
            self.assertFalse(privsep.device_exists(dev), dev)
        self.assertEqual([], self.interfaces(vif["id"]))
        if inst is not None:
            self.assertEqual([], self.host.find(self.host.vsctl, "Interface",
                                                "external_ids:vm-uuid=" + inst.uuid))
        self.assertNotIn(vif["devname"], self.host.vsctl("list-ports", "br-int").split())

    def test_containers_on_ovn_ports_bind_ping_and_leave_nothing(self):
        # A: ML2/OVN's default (os-vif's tap asked for: it is not made, the veth is ours);
        # B: ML2/OVS-style, ovs_create_tap off
        a_vif = self.port("10.0.0.11")
        b_vif = self.port("10.0.0.12", ovs_create_tap=False)
        a, b = self.instance(), self.instance()
        a.test_vifs, b.test_vifs = [a_vif], [b_vif]
        self.spawn(a, [a_vif])
        self.spawn(b, [b_vif])
        # OVN claimed each port, and reported it up, before its container existed
        self.assertEqual([(a_vif["id"], "STOPPED"), (b_vif["id"], "STOPPED")],
                         self.neutron.seen)
        for vif in (a_vif, b_vif):
            self.assertTrue(self.bound(vif["id"]))
        # os-vif's row on the port's host end (tap<id>, a veth: MTU, IPv6 off)
        [row] = self.interfaces(a_vif["id"])
        ids = dict(row["external_ids"][1])
        self.assertEqual((a_vif["devname"], a_vif["address"], a.uuid, "active"),
                         (row["name"], ids["attached-mac"], ids["vm-uuid"],
                          ids["iface-status"]))
        self.assertGreater(row["ofport"], 0)
        tap = a_vif["devname"]
        with open("/sys/class/net/%s/mtu" % tap) as f:
            self.assertEqual(MTU, int(f.read()))
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % tap) as f:
            self.assertEqual("1", f.read().strip())
        [link] = json.loads(subprocess.run(["ip", "-j", "-d", "link", "show", "dev", tap],
                                           check=True, capture_output=True).stdout)
        self.assertEqual("veth", link["linkinfo"]["info_kind"])
        # the container's end, inside: the port's MAC, MTU and address
        self.assertEqual(0, self.run_in(
            a, "ip link show eth0 | grep -q '%s' && grep -qx %d /sys/class/net/eth0/mtu && "
            "ip -4 addr show dev eth0 | grep -q '10.0.0.11/24'" % (a_vif["address"], MTU)))
        self.assertEqual(0, self.run_in(a, "ping -c 3 -W 5 10.0.0.12"))

        # nova-compute restarts: plugging again changes nothing, the traffic still flows
        self.drv.plug_vifs(a, [a_vif])
        self.assertEqual(1, len(self.interfaces(a_vif["id"])))
        self.assertEqual(0, self.run_in(a, "ping -c 1 -W 5 10.0.0.12"))

        # a third port hot-plugged into the running B (eth1 there), reached from A
        c_vif = self.port("10.0.0.13")
        self.drv.attach_interface(None, b, None, c_vif)
        b.test_vifs = [b_vif, c_vif]
        self.wait_up(c_vif["id"])
        self.assertEqual(0, self.run_in(b, "ip -4 addr show dev eth1 | grep -q 10.0.0.13"))
        self.assertEqual(0, self.run_in(a, "ping -c 3 -W 5 10.0.0.13"))

        # stopped: liblxc gives the container's end back to the host; started again, the
        # same pair goes in and carries traffic
        self.drv.power_off(a)
        self.assertTrue(privsep.device_exists(hypervisor.peer_of({"tap": tap})))
        self.drv.power_on(None, a, [a_vif])
        self.assertEqual(0, self.run_in(a, "ping -c 1 -W 5 10.0.0.12"))

        # detach, delete: no veth, OVS port or external id left; OVN sees the ports go
        self.drv.detach_interface(None, b, c_vif)
        self.assert_nothing_left(c_vif)
        for inst, vif in ((a, a_vif), (b, b_vif)):
            self.drv.destroy(None, inst, [vif])
            self.assert_nothing_left(vif, inst)
            self.host.wait(lambda port_id=vif["id"]: not self.bound(port_id),
                           "OVN to release the port")
