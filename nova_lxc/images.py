"""Container root filesystems from Glance images, unpacked once into a cache.

Accepted (by content; Glance ``container_format=bare``, ``disk_format`` ``raw`` or
``qcow2``, or ``root-tar`` where Glance lists it):

- a root filesystem tarball, gzip- or xz-compressed or plain (``tar --numeric-owner``);
- an unpartitioned ext2/3/4 filesystem image, raw or qcow2 (qcow2 is converted to raw
  first; the filesystem is mounted read-only, without devices or setuid, and copied).

Each image is unpacked once per id map into ``<cache>/<key>/`` with its owners shifted into
the container's id range and device nodes dropped (containers get their /dev from liblxc);
a container's root is an overlay over that directory, so spawning copies nothing. The
functions marked *privileged* run in the driver's privsep daemon.
"""
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile

from nova import exception
from nova.i18n import _

from nova_lxc import config

TAR, EXTFS, QCOW2 = "tar", "extfs", "qcow2"
GLANCE_DISK_FORMATS = ("raw", "qcow2", "root-tar")
GLANCE_CONTAINER_FORMATS = ("bare",)
TIMEOUT = 1800


def check_meta(image_id, image_meta):
    """Refuse, from Glance's metadata alone, an image that cannot be a container root."""
    disk = image_meta.disk_format if "disk_format" in image_meta else None
    container = image_meta.container_format if "container_format" in image_meta else None
    if disk not in GLANCE_DISK_FORMATS or container not in GLANCE_CONTAINER_FORMATS:
        raise exception.ImageUnacceptable(image_id=image_id, reason=_(
            "disk_format %(d)s / container_format %(c)s cannot be a container root (use a "
            "root filesystem tarball or an ext4 filesystem image: disk_format raw, qcow2 "
            "or root-tar, container_format bare)") % {"d": disk, "c": container})


def kind(path):
    """What the file at ``path`` holds: TAR, EXTFS, QCOW2 or None."""
    with open(path, "rb") as f:
        head = f.read(2048)
    if head[:4] == b"QFI\xfb":
        return QCOW2
    if head[:2] == b"\x1f\x8b" or head[:6] == b"\xfd7zXZ\x00" or head[257:262] == b"ustar":
        return TAR
    if head[1080:1082] == b"\x53\xef":                   # ext2/3/4 superblock magic
        return EXTFS
    return None


def cache_key(image_id, idmap):
    """Directory name of an image unpacked for an id map ((start, size) or None for
    privileged containers)."""
    digest = hashlib.sha1(image_id.encode()).hexdigest()
    return digest + ("-priv" if idmap is None else "-%d-%d" % idmap)


def _run(argv, what):
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=TIMEOUT)
    except subprocess.CalledProcessError as e:
        raise exception.ImageUnacceptable(image_id=what, reason=_(
            "%(cmd)s failed: %(err)s") % {"cmd": argv[0],
                                          "err": e.stderr.decode(errors="replace")[-500:]})
    except subprocess.TimeoutExpired:
        raise exception.ImageUnacceptable(image_id=what, reason=_("%s timed out") % argv[0])


def shift_tree(root, idmap):
    """Privileged: move every owner under ``root`` into the id range (ids beyond the range
    become its nobody), keep setuid/setgid bits, drop device nodes, FIFOs and sockets."""
    start, size = idmap if idmap else (0, 2 ** 32)
    nobody = start + min(65534, size - 1)

    def fix(path, st):
        mode = st.st_mode
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) \
                or stat.S_ISSOCK(mode):
            os.unlink(path)
            return
        uid = st.st_uid + start if st.st_uid < size else nobody
        gid = st.st_gid + start if st.st_gid < size else nobody
        if idmap:
            os.lchown(path, uid, gid)
            if not stat.S_ISLNK(mode):
                os.chmod(path, stat.S_IMODE(mode))    # chown cleared setuid/setgid

    fix(root, os.lstat(root))
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            fix(path, os.lstat(path))


def unpack(image_file, cache_dir, key, idmap, image_id):
    """Privileged: unpack ``image_file`` (a tarball or an ext filesystem, raw or qcow2)
    into ``<cache_dir>/<key>`` unless there; returns that directory. Anything else is
    refused with ImageUnacceptable and nothing is left behind."""
    config.check_path(cache_dir)
    config.check_path(image_file)
    if os.sep in key or key.startswith("."):
        raise exception.InvalidInput(reason=_("bad cache key %r") % key)
    target = os.path.join(cache_dir, key)
    if os.path.isdir(target):
        return target
    os.makedirs(cache_dir, mode=0o711, exist_ok=True)
    what = kind(image_file)
    if what not in (TAR, EXTFS, QCOW2):
        raise exception.ImageUnacceptable(image_id=image_id, reason=_(
            "neither a root filesystem tarball nor an ext2/3/4 filesystem image"))
    work = tempfile.mkdtemp(prefix=key + ".part.", dir=cache_dir)
    try:
        rootfs = os.path.join(work, "rootfs")
        os.mkdir(rootfs, 0o755)
        if what == TAR:
            _run(["tar", "--numeric-owner", "--same-permissions", "--same-owner",
                  "--no-overwrite-dir", "-xf", image_file, "-C", rootfs], image_id)
        else:
            _copy_filesystem(image_file, what, work, rootfs, image_id)
        if not os.path.exists(os.path.join(rootfs, "sbin", "init")) and \
                not os.path.lexists(os.path.join(rootfs, "sbin", "init")):
            raise exception.ImageUnacceptable(image_id=image_id, reason=_(
                "the root filesystem has no /sbin/init"))
        shift_tree(rootfs, idmap)
        os.rename(rootfs, target)
    finally:
        _umount_quietly(os.path.join(work, "mnt"))
        shutil.rmtree(work, ignore_errors=True)
    return target


def _copy_filesystem(image_file, what, work, rootfs, image_id):
    raw = image_file
    if what == QCOW2:
        raw = os.path.join(work, "image.raw")
        _run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", image_file, raw], image_id)
        if kind(raw) != EXTFS:
            raise exception.ImageUnacceptable(image_id=image_id, reason=_(
                "the qcow2 image does not hold an unpartitioned ext2/3/4 filesystem"))
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt, 0o700)
    _run(["mount", "-t", "ext4", "-o", "loop,ro,nodev,nosuid,noexec", raw, mnt], image_id)
    try:
        _run(["cp", "-a", "--", mnt + "/.", rootfs], image_id)
    finally:
        _umount_quietly(mnt)


def _umount_quietly(path):
    if os.path.ismount(path):
        subprocess.run(["umount", path], capture_output=True, timeout=60)


def remove(cache_dir, key):
    """Privileged: remove one unpacked image from the cache."""
    config.check_path(cache_dir)
    if os.sep in key or key.startswith("."):
        raise exception.InvalidInput(reason=_("bad cache key %r") % key)
    shutil.rmtree(os.path.join(cache_dir, key), ignore_errors=True)
