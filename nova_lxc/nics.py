"""Privileged: a port's veth pair into a running container and out again (interface
hot-plug).

At start liblxc makes the pairs of the container's config (``lxc.net.<slot>``); for a
running container the pair is made here: the host end named for the port (wired by the
network backend, as at start), the other end given the port's MAC and MTU, moved into the
container's network namespace as ``eth<slot>`` by liblxc (``add_device_net``), then its
fixed IPv4 addresses, link and default route set inside with the host's ``ip`` run in
that namespace only (``nsenter --net``). Removing the host end removes the pair.
"""
import subprocess

from nova_lxc import config
from nova_lxc import container

TIMEOUT = 30


def _ip(name, *args, netns_of=None):
    argv = ["ip", *map(str, args)]
    if netns_of:
        argv = ["nsenter", "--net=/proc/%d/ns/net" % int(netns_of), "--"] + argv
    proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
    if proc.returncode:
        raise container.ContainerError(name=name, reason="%s: %s" % (
            " ".join(argv), proc.stderr.decode(errors="replace").strip()[-300:]))


def attach(name, lxcpath, host_dev, slot, mac, mtu, ipv4, gateway):
    # the same checks as the container's config (nothing else reaches a command line)
    config.nic_items(slot, host_dev, mac, mtu, ipv4, gateway)
    c = container._container(name, lxcpath)
    pid = c.init_pid
    if not c.running or pid <= 0:
        raise container.ContainerError(name=name, reason="not running")
    peer = "vp" + host_dev[3:] if host_dev.startswith("tap") else "vp" + host_dev[:13]
    inside = "eth%d" % int(slot)
    mtu_args = ["mtu", int(mtu)] if mtu else []
    _ip(name, "link", "add", host_dev, *mtu_args, "type", "veth", "peer", "name", peer,
        *mtu_args)
    try:
        _ip(name, "link", "set", peer, "address", mac.lower())
        _ip(name, "link", "set", host_dev, "up")
        if not c.add_device_net(peer, inside):
            raise container.ContainerError(name=name, reason="liblxc could not move %s "
                                           "into the container" % peer)
        for address, prefix, broadcast in ipv4:
            _ip(name, "addr", "add", "%s/%d" % (address, int(prefix)), "broadcast",
                broadcast, "dev", inside, netns_of=pid)
        _ip(name, "link", "set", inside, "up", netns_of=pid)
        if gateway:
            _ip(name, "route", "replace", "default", "via", gateway, "dev", inside,
                netns_of=pid)
    except Exception:
        detach(name, lxcpath, host_dev)
        raise


def detach(name, lxcpath, host_dev):
    """Remove the pair (its host end; gone already is fine)."""
    config.check_name(name)
    if not config.DEVICE.match(host_dev or ""):
        raise config.invalid("not a network device name: %r" % (host_dev,))
    subprocess.run(["ip", "link", "del", host_dev], capture_output=True, timeout=TIMEOUT)
