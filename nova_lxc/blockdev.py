"""Privileged: a host block device (a connected volume) into a running container and out
again.

The device node appears at ``/dev/<node>`` in the container (``vdb``, ``vdc``... by the
volume's slot) and an ext2/3/4 filesystem on it is mounted at
``/mnt/volumes/<volume id>``; the container's root may read and write the node (an ACL
for its host uid on the host's node) and its device controller allows it (the cgroup v1
file, or on v2 a rule liblxc adds to the container's device BPF program). The
mounts are made by ``nova_lxc.devinject`` in a short-lived child.
"""
import os
import re
import stat
import subprocess
import sys

from nova import exception
from nova.i18n import _

from nova_lxc import config
from nova_lxc import container
from nova_lxc import images

NODE = re.compile(r"^vd[b-z]$|^vd[a-z][a-z]$")
TIMEOUT = 60


def node_name(slot):
    """/dev name of the volume in ``slot`` (0 -> vdb, 24 -> vdz, 25 -> vdaa)."""
    slot = int(slot)
    if slot < 25:
        return "vd" + chr(ord("b") + slot)
    slot -= 25
    if slot >= 26 * 26:
        raise exception.InvalidInput(reason=_("no device name for slot %d") % slot)
    return "vd" + chr(ord("a") + slot // 26) + chr(ord("a") + slot % 26)


def _check(name, lxcpath, source, node, volume_id):
    config.check_name(name)
    config.check_path(lxcpath)
    config.check_path(source)
    config.check_name(volume_id)
    if not isinstance(node, str) or not NODE.match(node):
        raise exception.InvalidInput(reason=_("not a device name: %r") % (node,))
    st = os.stat(source)
    if not stat.S_ISBLK(st.st_mode):
        raise exception.InvalidInput(reason=_("%s is not a block device") % source)
    return st


def _run(argv, name):
    proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
    if proc.returncode:
        raise container.ContainerError(name=name, reason=proc.stderr.decode(
            errors="replace").strip()[-500:] or "%s failed" % argv[0])


def _inject(name, *args):
    _run([sys.executable, "-m", "nova_lxc.devinject", *map(str, args)], name)


def _devices(c, key, st):
    """Allow or deny the node in the running container's device controller. liblxc
    writes the v1 ``devices.allow``/``devices.deny`` file, and on a unified (v2) host
    turns the same key into a rule of the container's device BPF program (through its
    monitor), so one call serves both."""
    rule = "b %d:%d rwm" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    if not c.set_cgroup_item(key, rule):
        raise container.ContainerError(name=c.name, reason=_("cannot set %(k)s %(r)s")
                                       % {"k": key, "r": rule})


def attach(name, lxcpath, source, node, volume_id, owner):
    """``source`` at /dev/<node> in running container ``name`` (its filesystem, if ext,
    at /mnt/volumes/<volume_id>); ``owner``: the container root's host uid (None when
    privileged). Returns the mount path or None."""
    st = _check(name, lxcpath, source, node, volume_id)
    c = container._container(name, lxcpath)
    pid = c.init_pid
    if not c.running or pid <= 0:
        raise container.ContainerError(name=name, reason=_("not running"))
    fstype = "ext4" if images.kind(source) == images.EXTFS else "-"
    if owner:
        _run(["setfacl", "-m", "u:%d:rw" % int(owner), source], name)
    try:
        _devices(c, "devices.allow", st)
        _inject(name, "attach", pid, source, node, volume_id, fstype, int(owner or 0))
    except Exception:
        detach(name, lxcpath, source, node, volume_id, owner)
        raise
    return "/mnt/volumes/" + volume_id if fstype != "-" else None


def detach(name, lxcpath, source, node, volume_id, owner):
    """Undo ``attach``: mount, node, cgroup rule and ACL gone (a stopped container has
    none of the first three)."""
    st = _check(name, lxcpath, source, node, volume_id)
    c = container._container(name, lxcpath)
    errors = []
    if c.running and c.init_pid > 0:
        for step in (lambda: _inject(name, "detach", c.init_pid, node, volume_id),
                     lambda: _devices(c, "devices.deny", st)):
            try:
                step()
            except Exception as e:       # each step tried
                errors.append(str(e))
    if owner:
        subprocess.run(["setfacl", "-x", "u:%d" % int(owner), source],
                       capture_output=True, timeout=TIMEOUT)
    if errors:
        raise container.ContainerError(name=name, reason="; ".join(errors))
