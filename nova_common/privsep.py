"""The privileged side of the compute drivers (oslo.privsep), two contexts:

- ``net_admin`` (CAP_NET_ADMIN): tap devices, created for the guest's own uid so its
  hypervisor process opens them without privileges;
- ``guest_admin``: starting hypervisor processes under their guest uid (systemd-run or
  the detached supervisor), signalling them, and device ACLs of attached volumes
  (``nova_common.launcher`` validates every argument).

Everything takes validated names and runs commands with an argument vector (no shell).
"""
import os
import re

from oslo_concurrency import processutils
from oslo_privsep import capabilities
from oslo_privsep import priv_context

from nova_common import launcher

net_admin = priv_context.PrivContext(
    "nova_common",
    cfg_section="nova_common_privileged",
    pypath=__name__ + ".net_admin",
    capabilities=[capabilities.CAP_NET_ADMIN],
)
guest_admin = priv_context.PrivContext(
    "nova_common",
    cfg_section="nova_common_guest_admin",
    pypath=__name__ + ".guest_admin",
    # systemd-run talks to systemd as root; setuid/setgid for the detached supervisor,
    # kill for guest uids, fowner for ACLs on device nodes root owns
    capabilities=[capabilities.CAP_SETUID, capabilities.CAP_SETGID,
                  capabilities.CAP_KILL, capabilities.CAP_FOWNER,
                  capabilities.CAP_DAC_OVERRIDE, capabilities.CAP_SYS_ADMIN],
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


def device_exists(dev):
    """Whether the network device exists (no privileges needed)."""
    return os.path.exists(os.path.join("/sys/class/net", _device(dev)))


@net_admin.entrypoint
def create_tap(dev, owner_uid, mtu=None, mac=None, disable_ipv6=False, multiqueue=False):
    """A tap device owned by ``owner_uid``, up (idempotent).

    ``multiqueue``: made with ``IFF_MULTI_QUEUE``, so that the hypervisor can attach one
    queue per file descriptor (a tap made without it takes a single one).

    ``disable_ipv6`` as os-vif does for the taps of Open vSwitch ports: the host must
    neither run duplicate address detection on the guest's link nor accept the tenant's
    router advertisements. (Routed ``tap`` backends such as Calico need IPv6 on the tap.)
    """
    _device(dev)
    out, _err = processutils.execute("ip", "-o", "link", "show", "dev", dev,
                                     check_exit_code=[0, 1])
    if not out:
        processutils.execute("ip", "tuntap", "add", "dev", dev, "mode", "tap",
                             "user", str(int(owner_uid)), "vnet_hdr",
                             *(["multi_queue"] if multiqueue is True else []))
    knob = "/proc/sys/net/ipv6/conf/%s/disable_ipv6" % dev
    if disable_ipv6 and os.path.exists(knob):   # absent when the host has no IPv6
        with open(knob, "w") as f:
            f.write("1")
    if mtu:
        processutils.execute("ip", "link", "set", "dev", dev, "mtu", str(int(mtu)))
    if mac:
        processutils.execute("ip", "link", "set", "dev", dev, "address", _mac(mac))
    processutils.execute("ip", "link", "set", "dev", dev, "up")


def _veth_names(dev, peer):
    if _device(dev) == _device(peer):
        raise ValueError("a veth pair needs two names: %r" % (dev,))
    return dev, peer


@net_admin.entrypoint
def create_veth(dev, peer, mtu=None, peer_mac=None, disable_ipv6=False):
    """A veth pair for a container's port (idempotent): ``dev`` stays on the host, up
    (the end the network backend wires; IPv6 off on it as on an OVS port's tap),
    ``peer`` is the container's end, given the port's MAC and MTU, that liblxc moves
    into the container. While the container runs its end is not on the host: the host
    end is then only kept up (``plug_vifs`` at nova-compute start)."""
    _veth_names(dev, peer)
    mtu_args = ["mtu", str(int(mtu))] if mtu else []
    if not device_exists(dev):
        processutils.execute("ip", "link", "add", "dev", dev, *mtu_args, "type", "veth",
                             "peer", "name", peer, *mtu_args)
    knob = "/proc/sys/net/ipv6/conf/%s/disable_ipv6" % dev
    if disable_ipv6 and os.path.exists(knob):
        with open(knob, "w") as f:
            f.write("1")
    if mtu:
        processutils.execute("ip", "link", "set", "dev", dev, *mtu_args)
    if device_exists(peer):
        if peer_mac:
            processutils.execute("ip", "link", "set", "dev", peer, "address",
                                 _mac(peer_mac))
        if mtu:
            processutils.execute("ip", "link", "set", "dev", peer, *mtu_args)
    processutils.execute("ip", "link", "set", "dev", dev, "up")


@net_admin.entrypoint
def set_master(dev, bridge):
    """Put ``dev`` on the Linux bridge ``bridge`` (hybrid-plugged OVS ports)."""
    processutils.execute("ip", "link", "set", "dev", _device(dev), "master", _device(bridge))


@net_admin.entrypoint
def delete_tap(dev):
    """Remove a tap device; one that is already gone is fine."""
    processutils.execute("ip", "link", "del", "dev", _device(dev), check_exit_code=[0, 1])


@guest_admin.entrypoint
def start_guest(uuid, argv, uid, log_path, console_max=None, pidfile=None,
                serial_socket=None):
    return launcher.start_guest(uuid, argv, uid, log_path, console_max, pidfile,
                                serial_socket)


@guest_admin.entrypoint
def signal_guest(uuid, signum, pid=None):
    return launcher.signal_guest(uuid, signum, pid)


@guest_admin.entrypoint
def grant_device(path, uid):
    launcher.grant_device(path, uid)


@guest_admin.entrypoint
def revoke_device(path, uid):
    launcher.revoke_device(path, uid)


@guest_admin.entrypoint
def grant_tun(gid):
    launcher.grant_tun(gid)
