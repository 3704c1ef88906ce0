"""A container's liblxc configuration, as an ordered list of (key, value) items.

Built from plain values (the driver reads them from the instance and flavor), so the same
code runs on the unprivileged and the privileged side, and every value is checked here:
a value that would add a line, or a key liblxc would reject at start, is refused before
anything is written.
"""
import os
import re

from nova import exception
from nova.i18n import _

NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")           # IFNAMSIZ - 1
MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
SIGNAL = re.compile(r"^SIG(RTMIN\+[0-9]{1,2}|[A-Z]{2,6}[0-9]?)$")
MiB = 1024 ** 2
CPU_PERIOD_US = 100000            # the kernel's default CFS period
USERNS_CONF = "/usr/share/lxc/config/userns.conf"
# the limits this driver writes, by cgroup version: any other key is refused (one key
# the host does not have makes liblxc's start fail as a whole)
CGROUP_KEYS = {
    1: ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cpu.shares",
        "cpu.cfs_quota_us", "cpu.cfs_period_us", "pids.max"),
    2: ("memory.max", "memory.swap.max", "cpu.weight", "cpu.max", "pids.max"),
}


def invalid(reason):
    return exception.InvalidInput(reason=reason)


def check_name(name):
    if not isinstance(name, str) or not NAME.match(name):
        raise invalid(_("not a container name (an instance UUID): %r") % (name,))
    return name


def check_path(path):
    if not isinstance(path, str) or not os.path.isabs(path) or "\n" in path \
            or ":" in path or path != os.path.normpath(path):
        raise invalid(_("not a usable absolute path: %r") % (path,))
    return path


def check_signal(sig):
    if not isinstance(sig, str) or not SIGNAL.match(sig):
        raise invalid(_("not a signal name: %r") % (sig,))
    return sig


def host_cgroup_version(root="/sys/fs/cgroup"):
    """2 on a unified (pure v2) host, else 1 (v1 or hybrid hierarchies)."""
    return 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1


def shares_to_weight(shares):
    """cgroup v1 cpu.shares (2..262144, default 1024) -> v2 cpu.weight (1..10000, default
    100), the kernel's and systemd's conversion."""
    shares = min(max(int(shares), 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def cgroup_limits(version, memory_mb, vcpus, cpu_shares=None, cpu_quota=None,
                  cpu_period=None, pids_max=0):
    """The cgroup items of a container's limits.

    ``memory_mb``: hard memory limit (swap included on v1 where memsw exists is left to
    the host; on v2 the container gets no swap). ``cpu_shares``: relative weight
    (default 1024 per vCPU). ``cpu_quota``/``cpu_period`` (µs): a CFS bandwidth cap;
    unset, the container may use ``vcpus`` full CPUs. ``pids_max``: 0 for no limit.
    """
    if version not in CGROUP_KEYS:
        raise invalid(_("unsupported cgroup version %r") % (version,))
    for label, value in (("memory_mb", memory_mb), ("vcpus", vcpus)):
        if not isinstance(value, int) or value <= 0:
            raise invalid(_("%(label)s must be a positive integer, not %(value)r")
                          % {"label": label, "value": value})
    shares = int(cpu_shares) if cpu_shares else 1024 * vcpus
    period = int(cpu_period) if cpu_period else CPU_PERIOD_US
    quota = int(cpu_quota) if cpu_quota else period * vcpus
    if shares <= 0 or period < 1000 or period > 1000000 or quota < 1000:
        raise invalid(_("bad CPU limits: shares %(s)s, quota %(q)s, period %(p)s")
                      % {"s": shares, "q": quota, "p": period})
    memory = memory_mb * MiB
    if version == 1:
        items = [("memory.limit_in_bytes", memory), ("cpu.shares", shares),
                 ("cpu.cfs_period_us", period), ("cpu.cfs_quota_us", quota)]
    else:
        items = [("memory.max", memory), ("memory.swap.max", 0),
                 ("cpu.weight", shares_to_weight(shares)),
                 ("cpu.max", "%d %d" % (quota, period))]
    if pids_max:
        items.append(("pids.max", int(pids_max)))
    prefix = "lxc.cgroup." if version == 1 else "lxc.cgroup2."
    return [(prefix + key, str(value)) for key, value in items]


def check_cgroup_item(key, version):
    """Refuse a cgroup key this host's version does not have (liblxc would fail at
    start)."""
    prefix = "lxc.cgroup." if version == 1 else "lxc.cgroup2."
    if not key.startswith(prefix) or key[len(prefix):] not in CGROUP_KEYS[version]:
        raise invalid(_("unsupported cgroup key %(key)s on a cgroup v%(v)d host")
                      % {"key": key, "v": version})


def id_map(start, size):
    """The lxc.idmap items mapping container ids 0..size-1 to host ids start.."""
    if not isinstance(start, int) or not isinstance(size, int) or start < 1 \
            or size < 1 or start + size > 2 ** 32 - 1:
        raise invalid(_("bad id map: start %(start)r, size %(size)r")
                      % {"start": start, "size": size})
    return [("lxc.idmap", "u 0 %d %d" % (start, size)),
            ("lxc.idmap", "g 0 %d %d" % (start, size))]


def peer_name(host_dev):
    """The container's end of the veth pair whose host end is ``host_dev``
    (``tap<id>`` -> ``vp<id>``), its name while it is on the host."""
    if not DEVICE.match(host_dev or ""):
        raise invalid(_("not a network device name: %r") % (host_dev,))
    return "vp" + (host_dev[3:] if host_dev.startswith("tap") else host_dev[:13])


def nic_items(index, peer, mac, mtu=None, ipv4=(), gateway=None):
    """A port's interface: ``peer``, the container's end of a veth pair made on the host
    when the port was plugged (its host end, named for the port, wired by the network
    backend), handed to liblxc as a physical device: liblxc moves it into the container
    as ``eth<index>`` with the port's MAC and gives it back at stop.

    ``ipv4``: (address, prefix length, broadcast) triples configured by liblxc before the
    container's init runs (the broadcast is explicit: liblxc would compute 0.0.0.255).
    """
    if not DEVICE.match(peer or ""):
        raise invalid(_("not a network device name: %r") % (peer,))
    if not MAC.match(mac or ""):
        raise invalid(_("not a MAC address: %r") % (mac,))
    key = "lxc.net.%d." % int(index)
    items = [(key + "type", "phys"), (key + "link", peer),
             (key + "name", "eth%d" % int(index)), (key + "hwaddr", mac.lower()),
             (key + "flags", "up")]
    if mtu:
        items.append((key + "mtu", str(int(mtu))))
    for address, prefix, broadcast in ipv4:
        items.append((key + "ipv4.address", "%s/%d %s" % (
            _ipv4(address), int(prefix), _ipv4(broadcast))))
    if gateway:
        items.append((key + "ipv4.gateway", _ipv4(gateway)))
    return items


def _ipv4(text):
    parts = str(text).split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise invalid(_("not an IPv4 address: %r") % (text,))
    return str(text)


def container_config(name, rootfs, console_log, limits, includes=(), privileged=False,
                     idmap=None, apparmor_profile=None, halt_signal="SIGPWR", nics=(),
                     mounts=(), cgroup_version=1):
    """The whole configuration of container ``name``.

    ``rootfs``: liblxc rootfs spec (``overlay:<lower>:<upper>`` or a directory);
    ``limits``: items from ``cgroup_limits``; ``idmap``: (start, size), required unless
    ``privileged``; ``nics``: items from ``nic_items``; ``mounts``: (host path, path in
    the container, options) bind mounts; ``cgroup_version``: the host's (keys of the
    other version are refused: liblxc ignores or fails on them).
    """
    check_name(name)
    if rootfs.startswith("overlay:"):
        for part in rootfs[len("overlay:"):].split(":"):
            check_path(part)
        if rootfs.count(":") != 2:
            raise invalid(_("bad overlay rootfs %r") % rootfs)
    else:
        check_path(rootfs)
    items = [("lxc.uts.name", name[:8])]
    for path in includes:
        items.append(("lxc.include", check_path(path)))
    if not privileged:
        if idmap is None:
            raise invalid(_("an unprivileged container needs an id map"))
        items.append(("lxc.include", USERNS_CONF))
        items.extend(id_map(*idmap))
    if apparmor_profile:
        if not re.match(r"^[A-Za-z0-9_.:/-]+$", apparmor_profile):
            raise invalid(_("bad AppArmor profile name %r") % apparmor_profile)
        items.append(("lxc.apparmor.profile", apparmor_profile))
    items += [("lxc.rootfs.path", rootfs),
              ("lxc.console.logfile", check_path(console_log)),
              ("lxc.signal.halt", check_signal(halt_signal)),
              ("lxc.autodev", "1"),
              ("lxc.tty.max", "0")]
    for key, value in limits:
        check_cgroup_item(key, cgroup_version)
        items.append((key, value))
    if not nics:
        items.append(("lxc.net.0.type", "empty"))
    items.extend(nics)
    for host, inside, options in mounts:
        check_path(host)
        check_path(inside)
        if not re.match(r"^[a-z,]+$", options):
            raise invalid(_("bad mount options %r") % options)
        items.append(("lxc.mount.entry", "%s %s none bind,%s,create=dir 0 0"
                      % (host, inside.lstrip("/"), options)))
    for key, value in items:
        if "\n" in value or "\r" in value:
            raise invalid(_("a line break in config item %s") % key)
    return items
