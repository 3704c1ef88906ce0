"""Root disks from Glance images, ephemeral and swap disks, and config drives.

Images are fetched once into ``<instances_path>/<[image_cache]subdirectory_name>/``
(named as nova names them: the SHA-1 of the image ID) with nova's own helper, converted
to raw there unless ``force_raw_images`` is off; each instance gets a qcow2 overlay backed
by that base (in the base's real format), grown to the flavor's root size. Only ``qcow2``
and ``raw`` images are accepted. ``nova_common.imagecache`` removes unused bases.

Ephemeral and swap disks are sparse raw files in the instance directory, formatted as
nova's libvirt driver formats them (``nova.virt.disk.api.mkfs`` with the ``ephemeral<N>``
label, ``[DEFAULT]virt_mkfs`` and ``default_ephemeral_format``; ``mkswap`` for swap).
"""
import collections
import hashlib
import os

from nova import exception
from nova.api.metadata import base as instance_metadata
import nova.conf
from nova.i18n import _
import nova.privsep.fs
from nova.virt import configdrive
from nova.virt import driver
from nova.virt import images
from nova.virt.disk import api as disk_api
from oslo_concurrency import lockutils
from oslo_concurrency import processutils
from oslo_log import log as logging

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
DISK_FORMATS = ("qcow2", "raw")
GiB = 1024 ** 3
MiB = 1024 ** 2
SWAP_DISK = "disk.swap"
EPHEMERAL_DISK = "disk.eph%d"
# the guest file systems nova's libvirt driver accepts in a block device mapping
GUEST_FORMATS = (nova.privsep.fs.FS_FORMAT_EXT2, nova.privsep.fs.FS_FORMAT_EXT3,
                 nova.privsep.fs.FS_FORMAT_EXT4, nova.privsep.fs.FS_FORMAT_XFS)

# one ephemeral or swap disk: its file name in the instance directory, size in bytes,
# and how it is formatted (fs None: nova's default for the instance's os_type)
LocalDisk = collections.namedtuple("LocalDisk", "name kind size fs label")


def check_image(instance, image_meta, formats=DISK_FORMATS):
    fmt = image_meta.disk_format if "disk_format" in image_meta else None
    if fmt not in formats:
        raise exception.ImageUnacceptable(
            image_id=instance.image_ref,
            reason=_("disk format %(fmt)s is not supported (use %(ok)s)")
            % {"fmt": fmt, "ok": " or ".join(formats)})


def base_dir():
    return os.path.join(CONF.instances_path, CONF.image_cache.subdirectory_name)


def base_name(image_id):
    """A base's file name: nova's own (``nova.virt.libvirt.imagecache.get_cache_fname``)."""
    return hashlib.sha1(image_id.encode()).hexdigest()


def base_lock(name):
    """The lock held while a base is fetched or removed."""
    return lockutils.lock("nova-common-base-" + name)


def base_path(image_id):
    return os.path.join(base_dir(), base_name(image_id))


def fetch_base(context, instance, image_id=None):
    """The base image of ``image_id`` (default: the instance's image) in the cache,
    fetched if missing (raw, unless ``force_raw_images`` is off)."""
    image_id = image_id or instance.image_ref
    path = base_path(image_id)
    with base_lock(os.path.basename(path)):
        if os.path.exists(path):
            os.utime(path)      # used now: the image cache counts its age from here
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".part"
            images.fetch_to_raw(context, image_id, tmp,
                                trusted_certs=instance.trusted_certs)
            os.rename(tmp, path)
    return path


def create_root_disk(context, instance, path, image_id=None):
    """A qcow2 overlay at ``path`` on the cached base of the instance's image (or
    ``image_id``'s), of the flavor's root size."""
    base = fetch_base(context, instance, image_id)
    # the base's real format (a qcow2 base when force_raw_images is off); nova's
    # fetch_to_raw has refused bases with backing files of their own
    info = images.qemu_img_info(base)
    if info.file_format not in DISK_FORMATS:
        raise exception.ImageUnacceptable(
            image_id=image_id or instance.image_ref,
            reason=_("cached base %(base)s is %(fmt)s, not qcow2 or raw")
            % {"base": base, "fmt": info.file_format})
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", info.file_format, "-b", base,
            path]
    root_gb = instance.flavor.root_gb
    if root_gb and root_gb * GiB > info.virtual_size:
        argv.append(str(root_gb * GiB))          # else the base image's size
    processutils.execute(*argv)
    os.chmod(path, 0o600)
    return path


def local_disks(instance, block_device_info):
    """The ephemeral and swap disks nova asks for, as nova's libvirt driver reads them:
    the ephemeral mappings (else the flavor's ``ephemeral_gb`` as one disk), and the swap
    mapping (else the flavor's ``swap``). Unsupported guest formats are refused."""
    ephemerals = driver.block_device_info_get_ephemerals(block_device_info)
    if not ephemerals and instance.flavor.ephemeral_gb:
        ephemerals = [{"size": instance.flavor.ephemeral_gb}]
    result = []
    for index, eph in enumerate(ephemerals):
        fs = eph.get("guest_format")
        if fs and fs not in GUEST_FORMATS:
            raise exception.InvalidBDMFormat(details=_("%s format is not supported") % fs)
        result.append(LocalDisk(EPHEMERAL_DISK % index, "ephemeral", int(eph["size"]) * GiB,
                                fs, "ephemeral%d" % index))
    swap = driver.block_device_info_get_swap(block_device_info)
    swap_mb = swap["swap_size"] if driver.swap_is_usable(swap) else instance.flavor.swap
    if swap_mb and swap_mb > 0:
        result.append(LocalDisk(SWAP_DISK, "swap", int(swap_mb) * MiB, "swap", None))
    return result


def create_local_disks(instance, directory, block_device_info):
    """Create (sparse, 0600) and format the instance's ephemeral and swap disks in
    ``directory``; returns their file names, in the order the guest gets them."""
    names = []
    for disk in local_disks(instance, block_device_info):
        path = os.path.join(directory, disk.name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, disk.size)
        finally:
            os.close(fd)
        if disk.kind == "swap":
            nova.privsep.fs.unprivileged_mkfs("swap", path)
        else:
            # a file of our own: nova's unprivileged path, as libvirt's _create_ephemeral
            disk_api.mkfs(instance.os_type, disk.label, path, run_as_root=False,
                          specified_fs=disk.fs)
        LOG.info("created %(kind)s disk %(name)s of %(size)d bytes",
                 {"kind": disk.kind, "name": disk.name, "size": disk.size},
                 instance=instance)
        names.append(disk.name)
    return names


def local_disk_names(directory):
    """The ephemeral and swap disk files present in an instance directory, in order."""
    names, index = [], 0
    while os.path.exists(os.path.join(directory, EPHEMERAL_DISK % index)):
        names.append(EPHEMERAL_DISK % index)
        index += 1
    if os.path.exists(os.path.join(directory, SWAP_DISK)):
        names.append(SWAP_DISK)
    return names


def copy_local_disks(source, dest):
    """Copy the ephemeral and swap disks of one instance directory to another, sparse."""
    names = local_disk_names(source)
    for name in names:
        processutils.execute("cp", "--sparse=always", "--preserve=mode",
                             os.path.join(source, name), os.path.join(dest, name))
    return names


def create_config_drive(context, instance, injected_files, admin_password, network_info,
                        path):
    """An ISO 9660 config drive at ``path`` (nova's own builder and metadata)."""
    meta = instance_metadata.InstanceMetadata(
        instance, content=injected_files, extra_md={"admin_pass": admin_password}
        if admin_password else {}, network_info=network_info)
    with configdrive.ConfigDriveBuilder(instance_md=meta) as builder:
        builder.make_drive(path)
    os.chmod(path, 0o600)
    return path
