"""Network interfaces of instances: the host side of Neutron's ports, as tap devices (a
VMM's guest) or veth pairs (a container's interface).

Supported port bindings:

- ``tap``: the backend (e.g. Calico) wires the device made here.
- ``ovs`` (Neutron ML2/OVN and ML2/OVS): converted with nova's
  ``os_vif_util.nova_to_osvif_vif`` and plugged with os-vif's ``ovs`` plugin, which writes
  the Open vSwitch port with the ``iface-id``/``attached-mac``/``vm-uuid`` external ids
  that OVN and the OVS agent bind on. With hybrid plug (``ovs_hybrid_plug``, the iptables
  firewall of ML2/OVS), os-vif makes the ``qbr`` bridge and its veth pair into OVS, and the
  device is put on that bridge.

The order, libvirt's: os-vif writes the OVS row first, with the os-vif VIF's
``create_tap`` forced off whatever Neutron's ``ovs_create_tap`` says, then the device is
made here, through ``nova_common.privsep``; ovs-vswitchd attaches it as it appears. Making
the device first would make os-vif's OVSDB transaction wait for ovs-vswitchd to attach it
(ovsdbapp's post-commit check; about 160 ms on the userspace datapath, README
"Benchmarks"). The device, named by Neutron's ``devname`` (``tap<port id>``), is:

- a tap *owned by the guest process's uid* (its own uid for a confined hypervisor,
  ``nova_common.confine``; nova's user otherwise): the hypervisor process, which runs as
  that uid without privileges, can then open it by name. os-vif's own tap would belong
  to root, and an unprivileged process cannot attach to it. Passing file descriptors from
  a privileged helper would also work, but would need fd passing on every start and
  hot-plug.
- with ``peer`` (the LXC driver): a veth pair, its host end ``tap<port id>``, its other
  end ``peer`` with the port's MAC and MTU, which the container takes as its interface
  (``nova_lxc``). A tap of os-vif's would take the name the host end needs.

For OVS ports the host device gets the port's MTU and IPv6 off (as os-vif does for its
taps: no host DAD or router advertisements on the tenant's link); ``tap`` ports keep IPv6
(routed backends such as Calico need it).

- ``vhostuser`` (Open vSwitch with DPDK; hypervisors that list it, nova_qmp): converted
  by nova's ``os_vif_util`` into a ``VIFVHostUser`` and plugged by os-vif's ``ovs``
  plugin as a ``dpdkvhostuserclient`` port whose ``vhost-server-path`` is the socket
  Neutron named (``vhostuser_socket``): the hypervisor is the vhost-user server and
  creates the socket, as libvirt does for ``vhostuser_mode=server``. The socket must be
  a plain name directly in ``[hci_guests]vhostuser_socket_dir``; the guest uid is
  granted write access to that directory (sticky: no guest can remove another's
  socket). Only ``vhostuser_ovs_plug`` ports in ``server`` mode; no tap is made.

Refused before anything is made, with ``VirtualInterfacePlugException``: ``vhostuser``
on hypervisors without it or of other kinds (client mode, not OVS-plugged, a socket
outside the directory), ``bridge`` (Linux bridge, gone
from nova 34), ``binding_failed``/``unbound`` (Neutron could not bind the port), any other
type, and ``ovs`` ports of non-``normal`` VNIC types (SR-IOV representors, vDPA,
SmartNIC-managed).
"""
import os
import re
import stat

from nova import exception
import nova.conf
from nova.i18n import _
from nova.network import model as network_model
from nova.network import os_vif_util
from nova.virt import hardware
import os_vif
from os_vif import exception as osv_exception
from os_vif.objects import vif as osv_vif
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import excutils

from nova_common import confine
from nova_common import privsep

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

SUPPORTED = (network_model.VIF_TYPE_TAP, network_model.VIF_TYPE_OVS,
             network_model.VIF_TYPE_VHOSTUSER)
NOT_VHOSTUSER = _(
    "vhost-user ports need Open vSwitch with DPDK and guest memory shared with it; "
    "this hypervisor does not support them (use an Open vSwitch without DPDK, whose "
    "ports Neutron binds as 'ovs')")

REFUSED = {
    network_model.VIF_TYPE_BRIDGE: _(
        "Linux bridge ports are not supported (nova 34 and Neutron removed them)"),
    network_model.VIF_TYPE_BINDING_FAILED: _("Neutron failed to bind the port"),
    network_model.VIF_TYPE_UNBOUND: _("the port is not bound by Neutron"),
}


def _refuse(vif, reason):
    raise exception.VirtualInterfacePlugException(
        _("cannot plug port %(id)s (VIF type %(type)s): %(reason)s")
        % {"id": vif["id"], "type": vif["type"], "reason": reason})


def check(vif, supported=SUPPORTED):
    """Refuse, before anything is made, a port this driver cannot plug."""
    kind = vif["type"]
    if kind in REFUSED:
        _refuse(vif, REFUSED[kind])
    supported = [t for t in supported if t in SUPPORTED]
    if kind == network_model.VIF_TYPE_VHOSTUSER and kind not in supported:
        _refuse(vif, NOT_VHOSTUSER)
    if kind not in supported:
        _refuse(vif, _("not supported (supported: %s)") % ", ".join(supported))
    vnic = vif.get("vnic_type") or network_model.VNIC_TYPE_NORMAL
    if vnic != network_model.VNIC_TYPE_NORMAL:
        _refuse(vif, _("VNIC type %s is not supported (only normal)") % vnic)
    if kind == network_model.VIF_TYPE_VHOSTUSER:
        _check_vhostuser(vif)
        return
    if not vif.get("devname"):
        _refuse(vif, _("it has no device name"))
    if kind == network_model.VIF_TYPE_OVS and not (vif.get("network") or {}).get("bridge"):
        _refuse(vif, _("Neutron gave no integration bridge"))


# a socket name os-vif, Neutron (vhu<port id>) or an operator would give; nothing QEMU's
# option parser or a path could misread (no comma, no slash, no leading dot)
SOCKET_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
SOCKET_DIR = re.compile(r"^/[A-Za-z0-9._/-]{1,79}$")


def socket_dir(conf=CONF):
    """``[hci_guests]vhostuser_socket_dir``, normalised, or InvalidInput."""
    d = conf.hci_guests.vhostuser_socket_dir
    if not SOCKET_DIR.match(d or "") or os.path.normpath(d) != d.rstrip("/") or \
            ".." in d.split("/"):
        raise exception.InvalidInput(
            reason=_("[hci_guests]vhostuser_socket_dir %r is not a plain absolute path "
                     "([A-Za-z0-9._/-], at most 80 characters)") % d)
    return os.path.normpath(d)


def socket_path(vif, conf=CONF):
    """The vhost-user socket of a ``vhostuser`` port: Neutron's ``vhostuser_socket``,
    which must be a plain name directly in ``[hci_guests]vhostuser_socket_dir`` (no
    traversal, no link followed: the directory is checked, not the path resolved)."""
    path = (vif.get("details") or {}).get(network_model.VIF_DETAILS_VHOSTUSER_SOCKET)
    if not isinstance(path, str) or not path:
        _refuse(vif, _("Neutron gave no vhost-user socket path"))
    top = socket_dir(conf)
    parent, name = os.path.split(path)
    if parent != top or not SOCKET_NAME.match(name):
        _refuse(vif, _("the vhost-user socket %(path)r is not a plain name "
                       "([A-Za-z0-9._-]) in [hci_guests]vhostuser_socket_dir %(dir)s")
                % {"path": path, "dir": top})
    return path


def _check_vhostuser(vif):
    details = vif.get("details") or {}
    if not details.get(network_model.VIF_DETAILS_VHOSTUSER_OVS_PLUG) or \
            details.get(network_model.VIF_DETAILS_VHOSTUSER_FP_PLUG) or \
            details.get(network_model.VIF_DETAILS_VHOSTUSER_VROUTER_PLUG):
        _refuse(vif, _("only vhost-user ports plugged into Open vSwitch "
                       "(vhostuser_ovs_plug) are supported"))
    mode = details.get(network_model.VIF_DETAILS_VHOSTUSER_MODE, "server")
    if mode != "server":
        _refuse(vif, _("vhostuser_mode %r: only 'server' (the hypervisor creates the "
                       "socket, Open vSwitch's dpdkvhostuserclient connects) is "
                       "supported") % mode)
    if not (vif.get("network") or {}).get("bridge"):
        _refuse(vif, _("Neutron gave no integration bridge"))
    socket_path(vif)


def _mtu(vif):
    network = vif.get("network")
    return network.get_meta("mtu") if network else None


def _tap_mac(mac):
    """The tap's own MAC for an OVS port: the guest's with its first byte FE (FA if that
    is already FE), as libvirt does, so the host never uses the guest's address."""
    first = "fa" if mac.lower().startswith("fe") else "fe"
    return first + mac[2:]


def _to_os_vif(instance, vif):
    """The os-vif objects of an ``ovs`` port: (VIF, InstanceInfo)."""
    os_vif.initialize()     # idempotent; nova-compute has already done it at start
    obj = os_vif_util.nova_to_osvif_vif(vif)
    if not isinstance(obj, (osv_vif.VIFOpenVSwitch, osv_vif.VIFBridge)):
        _refuse(vif, _("os-vif made a %s of it, which this driver cannot plug")
                % type(obj).__name__)
    # no libvirt here to write the OVS row: os-vif must (nova sets this for every port
    # it builds from Neutron's)
    obj.port_profile.create_port = True
    # the device is ours, made after the row (a tap of os-vif's would be root's, and
    # would take a container's veth name); os-vif's unplug still removes it
    obj.port_profile.create_tap = False
    return obj, os_vif_util.nova_to_osvif_instance(instance)


# the queues a tap takes (the kernel's MAX_TAP_QUEUES since Linux 4.0; nova's libvirt
# driver knows the same limit)
MAX_TAP_QUEUES = 256


def queues(instance):
    """The queue pairs of the instance's virtio-net interfaces: its vCPUs when the
    flavor's ``hw:vif_multiqueue_enabled`` or the image's ``hw_vif_multiqueue_enabled``
    asks (nova's rule: never for one vCPU; conflicting values raise
    ``FlavorImageConflict``), capped at what a tap takes, as libvirt does; else 1."""
    image_meta = instance.image_meta
    if not image_meta.obj_attr_is_set("name"):     # (named in nova's conflict message)
        # a server booted from a volume has no image_ref: the name must still be a str
        image_meta.name = instance.image_ref or ""
    if not hardware.get_vif_multiqueue_constraint(instance.flavor, image_meta):
        return 1
    return min(instance.flavor.vcpus, MAX_TAP_QUEUES)


def plug(instance, vif, owner=None, queues=1, peer=None):
    """Make the host side of ``vif`` (idempotent: ``plug_vifs`` runs it again at host
    start) and return the name of its host device: a tap owned by the uid ``owner`` (the
    guest process's; default: this process's), multi-queue when ``queues`` > 1; with
    ``peer``, a veth pair whose other end ``peer`` (the port's MAC and MTU) a container
    takes."""
    check(vif)
    if vif["type"] == network_model.VIF_TYPE_VHOSTUSER:
        return _plug_vhostuser(instance, vif, os.getuid() if owner is None else owner)
    dev = vif["devname"]
    made = not privsep.device_exists(dev)
    if vif["type"] == network_model.VIF_TYPE_TAP:
        try:
            _make_device(vif, owner, queues, peer, ovs=False)
        except Exception:
            with excutils.save_and_reraise_exception():
                if made:
                    privsep.delete_tap(dev)
        return dev
    obj, info = _to_os_vif(instance, vif)
    try:
        os_vif.plug(obj, info)         # the OVS row first, then the device
        _make_device(vif, owner, queues, peer, ovs=True)
        if isinstance(obj, osv_vif.VIFBridge):
            privsep.set_master(dev, obj.bridge_name)
    except Exception as e:
        with excutils.save_and_reraise_exception(reraise=False):
            LOG.error("Plugging port %(id)s failed: %(e)s", {"id": vif["id"], "e": e},
                      instance=instance)
            _undo(instance, obj, info, dev if made else None)
        raise exception.VirtualInterfacePlugException(
            _("plugging port %(id)s into Open vSwitch failed: %(e)s")
            % {"id": vif["id"], "e": e})
    LOG.info("Plugged port %(id)s (%(kind)s %(dev)s) into %(how)s", {
        "id": vif["id"], "dev": dev, "kind": "veth" if peer else "tap",
        "how": ("Linux bridge %s" % obj.bridge_name if isinstance(obj, osv_vif.VIFBridge)
                else "Open vSwitch bridge %s" % obj.network.bridge)}, instance=instance)
    return dev


def _vhostuser_to_os_vif(instance, vif):
    os_vif.initialize()
    obj = os_vif_util.nova_to_osvif_vif(vif)
    if not isinstance(obj, osv_vif.VIFVHostUser) or obj.plugin != "ovs":
        _refuse(vif, _("os-vif made a %s of it, which this driver cannot plug")
                % type(obj).__name__)
    return obj, os_vif_util.nova_to_osvif_instance(instance)


def _socket_dir_for(owner):
    """Make ``[hci_guests]vhostuser_socket_dir`` if missing (sticky, no access for
    others) and let ``owner`` (a guest uid) create its socket in it (a POSIX ACL, as
    for instance directories); Open vSwitch reaches it as root."""
    top = socket_dir()
    if not os.path.isdir(top):
        os.makedirs(top, mode=0o750, exist_ok=True)
    st = os.stat(top)
    if st.st_uid == os.getuid() and not st.st_mode & stat.S_ISVTX:
        os.chmod(top, stat.S_IMODE(st.st_mode) | stat.S_ISVTX)
    if owner != os.getuid():
        confine.grant_socket_dir(top, owner)
    return top


def _plug_vhostuser(instance, vif, owner):
    """os-vif writes the ``dpdkvhostuserclient`` port (with ``vhost-server-path``,
    ``iface-id``, ``attached-mac``, ``vm-uuid``); returns the socket path the hypervisor
    listens on."""
    path = socket_path(vif)
    obj, info = _vhostuser_to_os_vif(instance, vif)
    try:
        _socket_dir_for(owner)
    except (OSError, processutils.ProcessExecutionError) as e:
        _refuse(vif, _("cannot prepare the vhost-user socket directory %(dir)s for uid "
                       "%(uid)s: %(e)s") % {"dir": socket_dir(), "uid": owner, "e": e})
    try:
        os_vif.plug(obj, info)
    except Exception as e:
        with excutils.save_and_reraise_exception(reraise=False):
            LOG.error("Plugging port %(id)s failed: %(e)s", {"id": vif["id"], "e": e},
                      instance=instance)
            _undo(instance, obj, info, None)
        raise exception.VirtualInterfacePlugException(
            _("plugging port %(id)s into Open vSwitch failed: %(e)s")
            % {"id": vif["id"], "e": e})
    LOG.info("Plugged port %(id)s (vhost-user socket %(path)s) into Open vSwitch bridge "
             "%(br)s", {"id": vif["id"], "path": path, "br": obj.network.bridge},
             instance=instance)
    return path


def backend(vif, plugged):
    """What the hypervisor attaches for ``vif``, given what ``plug`` returned: the tap
    (``{"tap": name}``) or the vhost-user socket (``{"vhostuser": path}``)."""
    if vif["type"] == network_model.VIF_TYPE_VHOSTUSER:
        return {"vhostuser": plugged}
    return {"tap": plugged}


def _os_vif_unplug(vif, obj, info):
    """os-vif removes the port's OVS row; its failure is nova's ``InternalError``."""
    try:
        os_vif.unplug(obj, info)
    except osv_exception.ExceptionBase as e:
        raise exception.InternalError(
            _("unplugging port %(id)s from Open vSwitch failed: %(e)s")
            % {"id": vif["id"], "e": e})


def _unplug_vhostuser(instance, vif):
    try:
        path = socket_path(vif)
        obj, info = _vhostuser_to_os_vif(instance, vif)
    except exception.VirtualInterfacePlugException:
        return          # never plugged (refused)
    _os_vif_unplug(vif, obj, info)
    # a socket the hypervisor left (QEMU keeps it when killed): only a socket, by name
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        LOG.warning("could not remove the vhost-user socket %(path)s: %(e)s",
                    {"path": path, "e": e}, instance=instance)
    LOG.info("Unplugged port %s", vif["id"], instance=instance)


def _make_device(vif, owner, queues, peer, ovs):
    dev, mtu = vif["devname"], _mtu(vif)
    if peer:
        privsep.create_veth(dev, peer, mtu=mtu, peer_mac=vif["address"],
                            disable_ipv6=ovs)
    else:
        mac = _tap_mac(vif["address"]) if ovs else \
            vif["details"].get(network_model.VIF_DETAILS_TAP_MAC_ADDRESS)
        # (disable_ipv6 only for OVS ports: routed tap backends such as Calico need it)
        extra = {"disable_ipv6": True} if ovs else {}
        privsep.create_tap(dev, os.getuid() if owner is None else owner, mtu=mtu,
                           mac=mac, multiqueue=queues > 1, **extra)


def _undo(instance, obj, info, dev):
    try:
        os_vif.unplug(obj, info)
    except osv_exception.ExceptionBase:
        LOG.exception("Could not unplug %s again", obj.id, instance=instance)
    if dev:
        privsep.delete_tap(dev)


def unplug(instance, vif):
    """Remove the host side of ``vif`` (what is already gone is fine). Ports this driver
    refuses were never plugged: nothing to do."""
    if vif["type"] == network_model.VIF_TYPE_VHOSTUSER:
        return _unplug_vhostuser(instance, vif)
    if vif["type"] not in SUPPORTED or not vif.get("devname"):
        return
    if vif["type"] == network_model.VIF_TYPE_OVS:
        try:
            obj, info = _to_os_vif(instance, vif)
        except exception.VirtualInterfacePlugException:
            obj = None
        if obj is not None:
            _os_vif_unplug(vif, obj, info)
    privsep.delete_tap(vif["devname"])
    LOG.info("Unplugged port %s", vif["id"], instance=instance)
