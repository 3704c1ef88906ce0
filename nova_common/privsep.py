"""The privileged side of the compute drivers (oslo.privsep): tap devices only.

The hypervisor processes run as nova's user; a tap device created for that user can be
opened by them without privileges. Everything here takes validated names and runs ``ip``
with an argument vector (no shell).
"""
import re

from oslo_concurrency import processutils
from oslo_privsep import capabilities
from oslo_privsep import priv_context

net_admin = priv_context.PrivContext(
    "nova_common",
    cfg_section="nova_common_privileged",
    pypath=__name__ + ".net_admin",
    capabilities=[capabilities.CAP_NET_ADMIN],
)
MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")    # IFNAMSIZ - 1


def _device(name):
    if not isinstance(name, str) or not DEVICE.match(name):
        raise ValueError("not a network device name: %r" % (name,))
    return name


def _mac(mac):
    if not isinstance(mac, str) or not MAC.match(mac):
        raise ValueError("not a MAC address: %r" % (mac,))
    return mac


@net_admin.entrypoint
def create_tap(dev, owner_uid, mtu=None, mac=None):
    """A tap device owned by ``owner_uid``, up (idempotent)."""
    _device(dev)
    out, _err = processutils.execute("ip", "-o", "link", "show", "dev", dev,
                                     check_exit_code=[0, 1])
    if not out:
        processutils.execute("ip", "tuntap", "add", "dev", dev, "mode", "tap",
                             "user", str(int(owner_uid)), "vnet_hdr")
    if mtu:
        processutils.execute("ip", "link", "set", "dev", dev, "mtu", str(int(mtu)))
    if mac:
        processutils.execute("ip", "link", "set", "dev", dev, "address", _mac(mac))
    processutils.execute("ip", "link", "set", "dev", dev, "up")


@net_admin.entrypoint
def delete_tap(dev):
    """Remove a tap device; one that is already gone is fine."""
    processutils.execute("ip", "link", "del", "dev", _device(dev), check_exit_code=[0, 1])
