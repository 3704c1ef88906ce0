"""Root disks from Glance images, and config drives.

Images are fetched once into ``<instances_path>/_base/`` (named by image ID) with nova's
own helper and converted to raw there; each instance gets a qcow2 overlay backed by that
base, grown to the flavor's root size. Only ``qcow2`` and ``raw`` images are accepted.
"""
import hashlib
import os

from nova import exception
from nova.api.metadata import base as instance_metadata
import nova.conf
from nova.i18n import _
from nova.virt import configdrive
from nova.virt import images
from oslo_concurrency import lockutils
from oslo_concurrency import processutils

CONF = nova.conf.CONF
DISK_FORMATS = ("qcow2", "raw")
GiB = 1024 ** 3


def check_image(instance, image_meta, formats=DISK_FORMATS):
    fmt = image_meta.disk_format if "disk_format" in image_meta else None
    if fmt not in formats:
        raise exception.ImageUnacceptable(
            image_id=instance.image_ref,
            reason=_("disk format %(fmt)s is not supported (use %(ok)s)")
            % {"fmt": fmt, "ok": " or ".join(formats)})


def base_path(image_id):
    name = hashlib.sha1(image_id.encode()).hexdigest()
    return os.path.join(CONF.instances_path, "_base", name)


def fetch_base(context, instance, image_id=None):
    """The raw base image of ``image_id`` (default: the instance's image) in the cache,
    fetched if missing."""
    image_id = image_id or instance.image_ref
    path = base_path(image_id)
    with lockutils.lock("nova-common-base-" + os.path.basename(path)):
        if not os.path.exists(path):
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
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, path]
    root_gb = instance.flavor.root_gb
    if root_gb and root_gb * GiB > os.path.getsize(base):
        argv.append(str(root_gb * GiB))          # else the base image's size
    processutils.execute(*argv)
    os.chmod(path, 0o600)
    return path


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
