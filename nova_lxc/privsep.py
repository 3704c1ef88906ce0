"""The privileged side of the LXC driver (oslo.privsep context ``nova_lxc``).

nova-compute runs as its own unprivileged user; starting a container (namespaces, id
maps, mounts, cgroups, veth pairs), unpacking images with shifted owners and reading the
root-owned console log need root's capabilities, so they run in this context's daemon
(started through nova's rootwrap: ``privsep-helper --config-file ... --privsep_context
nova_lxc.privsep.lxc_admin``). Every entry point re-validates its arguments
(``nova_lxc.config``); containers themselves are started from short-lived ``lxc-start``
children, never in the daemon.
"""
from oslo_privsep import capabilities as c
from oslo_privsep import priv_context

# what liblxc needs to set up a container (root's set, minus nothing liblxc avoids)
CAPABILITIES = (c.CAP_SYS_ADMIN, c.CAP_NET_ADMIN, c.CAP_CHOWN, c.CAP_DAC_OVERRIDE,
                c.CAP_DAC_READ_SEARCH, c.CAP_FOWNER, c.CAP_FSETID, c.CAP_KILL,
                c.CAP_SETGID, c.CAP_SETUID, c.CAP_SETPCAP, c.CAP_SETFCAP, c.CAP_MKNOD,
                c.CAP_SYS_CHROOT, c.CAP_SYS_PTRACE, c.CAP_SYS_RESOURCE, c.CAP_SYS_NICE,
                c.CAP_NET_RAW, c.CAP_AUDIT_WRITE, c.CAP_IPC_LOCK, c.CAP_SYS_BOOT,
                c.CAP_MAC_ADMIN, c.CAP_MAC_OVERRIDE)


def bounded(caps, status="/proc/self/status"):
    """``caps`` without those outside this process's bounding set (a compute host that
    is itself a container may lack some, e.g. CAP_SYS_RESOURCE): the daemon cannot keep
    a capability root does not have, and asking for one makes it fail to start."""
    try:
        with open(status) as f:
            bnd = [line.split()[1] for line in f if line.startswith("CapBnd:")]
        mask = int(bnd[0], 16)
    except (OSError, IndexError, ValueError):
        return list(caps)
    return [cap for cap in caps if mask >> cap & 1]


lxc_admin = priv_context.PrivContext(
    "nova_lxc",
    cfg_section="nova_lxc_privileged",
    pypath=__name__ + ".lxc_admin",
    capabilities=bounded(CAPABILITIES),
)


# imported here (not at the top) so the entry points below are all in this module
from nova_lxc import blockdev  # noqa: E402
from nova_lxc import container  # noqa: E402
from nova_lxc import images  # noqa: E402
from nova_lxc import nics  # noqa: E402
from nova_lxc import rootdisk  # noqa: E402


@lxc_admin.entrypoint
def unpack_image(image_file, cache_dir, key, idmap, image_id):
    return images.unpack(image_file, cache_dir, key, tuple(idmap) if idmap else None,
                         image_id)


@lxc_admin.entrypoint
def remove_image(cache_dir, key):
    images.remove(cache_dir, key)


@lxc_admin.entrypoint
def define(name, lxcpath, items, upper_owner):
    return container.define(name, lxcpath, [tuple(i) for i in items], upper_owner)


@lxc_admin.entrypoint
def state(name, lxcpath):
    return container.state(name, lxcpath)


@lxc_admin.entrypoint
def list_running(lxcpath):
    return container.list_running(lxcpath)


@lxc_admin.entrypoint
def start(name, lxcpath, timeout):
    return container.start(name, lxcpath, timeout)


@lxc_admin.entrypoint
def kill(name, lxcpath, timeout):
    container.kill(name, lxcpath, timeout)


@lxc_admin.entrypoint
def shutdown(name, lxcpath, timeout):
    return container.shutdown(name, lxcpath, timeout)


@lxc_admin.entrypoint
def freeze(name, lxcpath, timeout):
    container.freeze(name, lxcpath, timeout)


@lxc_admin.entrypoint
def thaw(name, lxcpath, timeout):
    container.thaw(name, lxcpath, timeout)


@lxc_admin.entrypoint
def set_cgroup_items(name, lxcpath, items):
    container.set_cgroup_items(name, lxcpath, [tuple(i) for i in items])


@lxc_admin.entrypoint
def console_log(name, lxcpath, size):
    return container.console_log(name, lxcpath, size)


@lxc_admin.entrypoint
def remove(name, lxcpath):
    if container.state(name, lxcpath)["state"] == "STOPPED":
        rootdisk.umount(name, lxcpath)
    container.remove(name, lxcpath)


@lxc_admin.entrypoint
def mount_root_disk(name, lxcpath, root_gb, upper_owner):
    return rootdisk.mount(name, lxcpath, root_gb, upper_owner)


@lxc_admin.entrypoint
def umount_root_disk(name, lxcpath):
    rootdisk.umount(name, lxcpath)


@lxc_admin.entrypoint
def export_rootfs(name, lxcpath, base, out_path, idmap, owner_uid):
    return container.export_rootfs(name, lxcpath, base, out_path,
                                   tuple(idmap) if idmap else None, owner_uid)


@lxc_admin.entrypoint
def signal_init(name, lxcpath, signame):
    return container.signal_init(name, lxcpath, signame)


@lxc_admin.entrypoint
def write_seed(name, lxcpath, files, owner):
    container.write_seed(name, lxcpath, dict(files), owner)


@lxc_admin.entrypoint
def attach_block(name, lxcpath, source, node, volume_id, owner):
    return blockdev.attach(name, lxcpath, source, node, volume_id, owner)


@lxc_admin.entrypoint
def detach_block(name, lxcpath, source, node, volume_id, owner):
    blockdev.detach(name, lxcpath, source, node, volume_id, owner)


@lxc_admin.entrypoint
def attach_nic(name, lxcpath, peer, slot, mac, mtu, ipv4, gateway):
    nics.attach(name, lxcpath, peer, slot, mac, mtu, [tuple(a) for a in ipv4], gateway)


@lxc_admin.entrypoint
def detach_nic(name, lxcpath, host_dev):
    nics.detach(name, lxcpath, host_dev)
