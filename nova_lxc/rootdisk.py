"""The flavor's root disk size for a container: its overlay's upper (and work) directory on
an ext4 filesystem of its own, a sparse image file in the instance directory mounted
through a loop device.

The container's root is an overlay over the cached image; what the container writes lands
in the upper directory. On a plain instances filesystem (ext4 without project quotas) the
only way to bound that is to give the upper directory a filesystem of ``root_gb``: a sparse
file (it takes only what is written), formatted once, mounted when the container starts and
unmounted when it stops or is deleted (``mount -o loop`` marks the loop device to free
itself at unmount, so none is left), grown (never shrunk) when a resize asks for more.

These functions run on the privileged side (``nova_lxc.privsep``) and check every path and
size they are given.
"""
import os
import subprocess

from nova import exception
from nova.i18n import _
from oslo_log import log as logging

from nova_lxc import container

LOG = logging.getLogger(__name__)
IMAGE = "rootfs.disk"        # the sparse ext4 image file
MOUNT = container.ROOT_DISK_MOUNT   # where it is mounted; holds UPPER and OVERLAY_WORK
GIB = 1024 ** 3
MAX_GB = 64 * 1024
TIMEOUT = 600


def check_size(root_gb):
    if isinstance(root_gb, bool) or not isinstance(root_gb, int) \
            or not 0 < root_gb <= MAX_GB:
        raise exception.InvalidInput(reason=_(
            "not a root disk size in GiB: %r") % (root_gb,))
    return root_gb


def paths(name, lxcpath):
    """(image file, mount point, upper directory) of one container."""
    cdir = container.container_dir(name, lxcpath)
    mnt = os.path.join(cdir, MOUNT)
    return (os.path.join(cdir, IMAGE), mnt, os.path.join(mnt, container.UPPER))


def check_owner(owner):
    if owner is not None and (isinstance(owner, bool) or not isinstance(owner, int)
                              or not 0 < owner < 2 ** 32 - 1):
        raise exception.InvalidInput(reason=_("not a host uid: %r") % (owner,))
    return owner


def _run(argv, name, ok=(0,)):
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
        if proc.returncode not in ok:
            raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout,
                                                proc.stderr)
    except subprocess.CalledProcessError as e:
        raise container.ContainerError(name=name, reason=_(
            "%(cmd)s failed: %(err)s") % {
                "cmd": argv[0], "err": e.stderr.decode(errors="replace")[-500:]})
    except subprocess.TimeoutExpired:
        raise container.ContainerError(name=name, reason=_("%s timed out") % argv[0])


def _no_link(path, name):
    if os.path.islink(path):
        raise container.ContainerError(name=name, reason=_(
            "%s is a symbolic link") % path)


def mount(name, lxcpath, root_gb, upper_owner=None):
    """Make (first time), grow (if ``root_gb`` is larger than the image) and mount the
    container's root disk; its upper and work directories belong to ``upper_owner``
    (host uid of the container's root; None: privileged). Returns the upper directory."""
    check_size(root_gb)
    check_owner(upper_owner)
    image, mnt, upper = paths(name, lxcpath)
    cdir = os.path.dirname(image)
    if not os.path.isdir(cdir) or os.path.islink(cdir):
        raise container.ContainerError(name=name, reason=_(
            "no instance directory %s") % cdir)
    for path in (image, mnt):
        _no_link(path, name)
    if os.path.ismount(mnt):
        return upper
    size = root_gb * GIB
    if not os.path.exists(image):
        fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        try:
            _run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E",
                  "lazy_itable_init=1,lazy_journal_init=1", "--", image], name)
        except Exception:
            os.unlink(image)
            raise
        LOG.info("root disk of %(gb)d GiB made for container %(name)s",
                 {"gb": root_gb, "name": name})
    elif os.stat(image).st_size < size:
        os.truncate(image, size)
        _run(["e2fsck", "-f", "-p", "--", image], name, ok=(0, 1))   # 1: fixed
        _run(["resize2fs", "--", image], name)
        LOG.info("root disk of container %(name)s grown to %(gb)d GiB",
                 {"gb": root_gb, "name": name})
    os.makedirs(mnt, mode=0o755, exist_ok=True)
    _run(["mount", "-t", "ext4", "-o", "loop,nosuid,nodev", "--", image, mnt], name)
    try:
        os.chmod(mnt, 0o755)
        for sub in (container.UPPER, container.OVERLAY_WORK):
            path = os.path.join(mnt, sub)
            _no_link(path, name)
            os.makedirs(path, mode=0o755, exist_ok=True)
            if upper_owner is not None:
                os.chown(path, upper_owner, upper_owner)
    except Exception:
        umount(name, lxcpath)
        raise
    return upper


def umount(name, lxcpath):
    """Unmount the container's root disk (its loop device goes with it); the image file
    stays for the next start."""
    _image, mnt, _upper = paths(name, lxcpath)
    _no_link(mnt, name)
    if os.path.ismount(mnt):
        _run(["umount", "--", mnt], name)
