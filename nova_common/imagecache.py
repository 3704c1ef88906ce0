"""Pruning of the base image cache (``nova_common.disks``), with nova's own semantics.

nova's compute manager calls ``manage_image_cache`` every ``[image_cache]
manager_interval`` seconds with every instance on the hosts that share
``instances_path``. A base is in use when one of those instances was booted from its
image, or when a disk file in an instance directory on this host has it as its backing
file (a rescue disk, a directory kept aside by a resize, an instance nova does not know).
A base in use has its modification time set to now; one that is unused is removed once
it has been unused for ``[image_cache]remove_unused_original_minimum_age_seconds``
(with ``remove_unused_base_images``), under the lock that its fetch takes, so a spawn
fetching or reusing it at that moment keeps it. Interrupted fetches (``.part`` files)
age the same way.
"""
import os
import time

from nova import exception
import nova.conf
from nova.virt import imagecache
from nova.virt import images
from oslo_log import log as logging

from nova_common import disks

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)


class ImageCacheManager(imagecache.ImageCacheManager):
    def _get_base(self):
        return disks.base_dir()

    def update(self, context, all_instances):
        base = self._get_base()
        try:
            names = sorted(os.listdir(base))
        except FileNotFoundError:
            return
        running = self._list_running_instances(context, all_instances)
        used = {disks.base_name(ref) for ref in running["used_images"]}
        used |= self._backing_files(base)
        max_age = CONF.image_cache.remove_unused_original_minimum_age_seconds
        for name in names:
            if name in used:
                LOG.debug("base image %s is in use", name)
                os.utime(os.path.join(base, name))
            elif CONF.image_cache.remove_unused_base_images:
                self._remove_if_old(base, name, max_age)

    @staticmethod
    def _backing_files(base):
        """Names of the bases that disk files in instance directories are backed by."""
        used = set()
        root = CONF.instances_path
        for entry in os.listdir(root):
            directory = os.path.join(root, entry)
            if directory == base or not os.path.isdir(directory):
                continue
            for name in os.listdir(directory):
                path = os.path.join(directory, name)
                if not name.startswith("disk") or not os.path.isfile(path):
                    continue
                try:
                    backing = images.qemu_img_info(path).backing_file
                except exception.DiskNotFound:
                    continue                      # removed meanwhile
                except (exception.InvalidDiskInfo, OSError) as e:
                    if os.path.exists(path):
                        LOG.warning("cannot read the disk %(path)s: %(err)s",
                                    {"path": path, "err": e})
                    continue
                if backing and os.path.dirname(backing) == base:
                    used.add(os.path.basename(backing))
        return used

    @staticmethod
    def _remove_if_old(base, name, max_age):
        path = os.path.join(base, name)
        # <base>.part, <base>.part.converted: an interrupted fetch of <base>
        with disks.base_lock(name.split(".", 1)[0]):
            try:
                age = time.time() - os.path.getmtime(path)
            except FileNotFoundError:
                return
            if age < max_age:
                LOG.info("unused base image %(path)s is too young to remove "
                         "(%(age)d of %(max)d seconds)",
                         {"path": path, "age": age, "max": max_age})
                return
            LOG.info("removing unused base image %s", path)
            try:
                os.unlink(path)
            except OSError as e:
                LOG.error("failed to remove the base image %(path)s: %(err)s",
                          {"path": path, "err": e})

    def get_disk_usage(self):
        """Bytes the cached bases occupy (0 if the cache is on another file system than
        ``instances_path``), as nova's libvirt image cache counts them."""
        base = self._get_base()
        try:
            if os.stat(base).st_dev != os.stat(CONF.instances_path).st_dev:
                return 0
            return sum(os.stat(os.path.join(base, n)).st_blocks * 512
                       for n in os.listdir(base))
        except FileNotFoundError:
            return 0
