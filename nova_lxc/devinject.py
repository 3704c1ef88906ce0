"""Put a host block device (and the filesystem on it) into a running container's mounts.

Run as a short-lived child of the LXC driver's privsep daemon (``python -m
nova_lxc.devinject attach|detach ...``): joining another mount namespace (setns) is
refused to a multi-threaded process, and this must not change the daemon's own.

An unprivileged container cannot use a device node made in its /dev (a filesystem mounted
in a user namespace never honours device nodes), so the host's node itself is
bind-mounted there: opened as a detached mount tree on the host (open_tree), the mount
namespace of the container's init joined, and the tree moved onto an empty file
``/dev/<node>`` (move_mount). An ext2/3/4 filesystem on the device is mounted on the host
side the same way (fsopen/fsmount: a filesystem a user namespace may not mount), id-mapped
through the container's user namespace (its files owned by 0 are the container root's),
and moved to ``/mnt/volumes/<volume id>``. Paths are resolved inside the container's root once its
namespace is joined. Linux >= 5.12 (the new mount API, id-mapped mounts).
"""
import ctypes
import errno
import os
import sys

# x86_64 and aarch64 share these (the generic syscall table numbers of Linux 5.2)
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 428, 429, 430, 431, 432
SYS_MOUNT_SETATTR = 442
MOUNT_ATTR_IDMAP = 0x00100000
AT_FDCWD = -100
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x2, 0x4
CLONE_NEWNS = 0x20000
MNT_DETACH = 2
VOLUMES_DIR = "/mnt/volumes"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _check(ret, what):
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))
    return ret


def _sys(number, *args, what):
    return _check(_libc.syscall(ctypes.c_long(number), *args), what)


def _b(s):
    return ctypes.c_char_p(s.encode())


def open_tree(path):
    return _sys(SYS_OPEN_TREE, ctypes.c_int(AT_FDCWD), _b(path),
                ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC), what="open_tree " + path)


def mount_fs(fstype, source):
    fs = _sys(SYS_FSOPEN, _b(fstype), ctypes.c_uint(FSOPEN_CLOEXEC), what="fsopen")
    try:
        _sys(SYS_FSCONFIG, ctypes.c_int(fs), ctypes.c_uint(FSCONFIG_SET_STRING),
             _b("source"), _b(source), ctypes.c_int(0), what="fsconfig source")
        _sys(SYS_FSCONFIG, ctypes.c_int(fs), ctypes.c_uint(FSCONFIG_CMD_CREATE), None,
             None, ctypes.c_int(0), what="mounting %s (%s)" % (source, fstype))
        return _sys(SYS_FSMOUNT, ctypes.c_int(fs), ctypes.c_uint(FSMOUNT_CLOEXEC),
                    ctypes.c_uint(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV), what="fsmount")
    finally:
        os.close(fs)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def idmap_mount(fd, pid):
    """Show the filesystem's ids through the id map of init ``pid``'s user namespace
    (its uid 0 is the container's root; Linux >= 5.12 and a filesystem that allows it)."""
    userns = os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns)
        _sys(SYS_MOUNT_SETATTR, ctypes.c_int(fd), _b(""),
             ctypes.c_uint(0x1000),      # AT_EMPTY_PATH
             ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
             what="id-mapped mount")
    finally:
        os.close(userns)


def move_mount(fd, target):
    _sys(SYS_MOVE_MOUNT, ctypes.c_int(fd), _b(""), ctypes.c_int(AT_FDCWD), _b(target),
         ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH), what="move_mount to " + target)


def join_mounts(pid):
    fd = os.open("/proc/%d/ns/mnt" % pid, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNS), "setns")
    finally:
        os.close(fd)
    os.chdir("/")


def umount(path):
    if _libc.umount2(_b(path), MNT_DETACH) < 0 and ctypes.get_errno() not in (
            errno.EINVAL, errno.ENOENT):
        err = ctypes.get_errno()
        raise OSError(err, "umount %s: %s" % (path, os.strerror(err)))


class _As:
    """Files created as the container's root (host root's ids are not mapped in the
    container's user namespace: its /dev refuses them with EOVERFLOW)."""

    def __init__(self, owner):
        self.owner = owner

    def __enter__(self):
        _libc.setfsgid(self.owner)
        _libc.setfsuid(self.owner)

    def __exit__(self, *exc):
        _libc.setfsuid(0)
        _libc.setfsgid(0)


def _mountpoint_file(path, owner):
    with _As(owner):
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
    os.close(fd)


def attach(pid, source, node, volume_id, fstype, owner):
    """Bind ``source`` at /dev/<node> in the container of init ``pid`` (and mount its
    ``fstype`` filesystem at /mnt/volumes/<volume_id> unless fstype is "-")."""
    tree = open_tree(source)
    fs = mount_fs(fstype, source) if fstype != "-" else None
    if fs is not None and owner:
        idmap_mount(fs, pid)
    join_mounts(pid)
    target = os.path.join("/dev", node)
    _mountpoint_file(target, owner)
    try:
        move_mount(tree, target)
        if fs is not None:
            where = os.path.join(VOLUMES_DIR, volume_id)
            for d in ("/mnt", VOLUMES_DIR, where):
                if not os.path.isdir(d):
                    with _As(owner):
                        os.mkdir(d, 0o755)
            move_mount(fs, where)
    except OSError:
        umount(target)
        os.unlink(target)
        raise


def detach(pid, node, volume_id):
    """Undo ``attach`` (what is gone already is fine)."""
    join_mounts(pid)
    where = os.path.join(VOLUMES_DIR, volume_id)
    if os.path.isdir(where):
        umount(where)
        os.rmdir(where)
    target = os.path.join("/dev", node)
    if os.path.lexists(target):
        umount(target)
        os.unlink(target)


def main(argv):
    if argv[:1] == ["attach"] and len(argv) == 7:
        attach(int(argv[1]), argv[2], argv[3], argv[4], argv[5], int(argv[6]))
    elif argv[:1] == ["detach"] and len(argv) == 4:
        detach(int(argv[1]), argv[2], argv[3])
    else:
        sys.stderr.write("usage: attach PID SOURCE NODE VOLUME FSTYPE OWNER | "
                         "detach PID NODE VOLUME\n")
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except OSError as e:
        sys.stderr.write("%s\n" % e)
        sys.exit(1)
