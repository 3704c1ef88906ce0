"""Privileged: a port's interface into a running container and out again (interface
hot-plug).

The veth pair is made on the host when the port is plugged (``nova_common.vifs``, before
the container sees it): its host end is named for the port (wired by the network
backend), its other end ``peer`` has the port's MAC and MTU. At start liblxc moves the
peers of the container's config in (``lxc.net.<slot>.type = phys``); for a running
container the peer is moved in here, as ``eth<slot>``, by liblxc (``add_device_net``),
then its fixed IPv4 addresses, link and default route are set inside with the host's
``ip`` run in that namespace only (``nsenter --net``). Removing the host end removes the
pair.
"""
import os
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


def attach(name, lxcpath, peer, slot, mac, mtu, ipv4, gateway):
    # the same checks as the container's config (nothing else reaches a command line)
    config.nic_items(slot, peer, mac, mtu, ipv4, gateway)
    c = container._container(name, lxcpath)
    pid = c.init_pid
    if not c.running or pid <= 0:
        raise container.ContainerError(name=name, reason="not running")
    if not os.path.exists(os.path.join("/sys/class/net", peer)):
        raise container.ContainerError(name=name, reason="the port's device %s is not "
                                       "on the host (not plugged)" % peer)
    inside = "eth%d" % int(slot)
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


def detach(name, lxcpath, host_dev):
    """Remove the pair (its host end; gone already is fine)."""
    config.check_name(name)
    if not config.DEVICE.match(host_dev or ""):
        raise config.invalid("not a network device name: %r" % (host_dev,))
    subprocess.run(["ip", "link", "del", host_dev], capture_output=True, timeout=TIMEOUT)
