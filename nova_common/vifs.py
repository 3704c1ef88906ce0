"""Network interfaces of instances, as tap devices.

Supported: ports Neutron binds as ``tap`` VIFs (the backend, e.g. Calico, wires the tap
device nova creates; nova 34 has no Linux-bridge VIFs any more). The tap is created for
the guest process's uid, so the hypervisor process opens it by name without privileges; Open vSwitch
ports need OVS on the host and are not supported yet.
"""
import os

from nova import exception
from nova.i18n import _
from nova.network import model as network_model

from nova_common import privsep

SUPPORTED = (network_model.VIF_TYPE_TAP,)


def check(vif, supported=SUPPORTED):
    """Refuse, before anything is made, a port this driver cannot plug."""
    supported = [t for t in supported if t in SUPPORTED]
    if vif["type"] not in supported:
        raise exception.VirtualInterfacePlugException(
            _("VIF type %(type)s of port %(id)s is not supported (supported: %(ok)s)")
            % {"type": vif["type"], "id": vif["id"], "ok": ", ".join(supported)})
    if not vif.get("devname"):
        raise exception.VirtualInterfacePlugException(
            _("port %s has no device name") % vif["id"])


def plug(instance, vif, owner=None):
    """Create the tap device of ``vif`` for the uid ``owner`` (the guest process's;
    default: this process's) (idempotent); returns its name."""
    check(vif)
    network = vif.get("network") or {}
    mtu = network.get_meta("mtu") if network else None
    privsep.create_tap(vif["devname"], os.getuid() if owner is None else owner, mtu=mtu,
                       mac=vif["details"].get(network_model.VIF_DETAILS_TAP_MAC_ADDRESS))
    return vif["devname"]


def unplug(instance, vif):
    """Remove the tap device (one that is already gone is fine)."""
    if vif.get("devname"):
        privsep.delete_tap(vif["devname"])
