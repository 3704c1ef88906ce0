import os
import subprocess
import time

import fixtures
from nova import objects

from nova_common import disks
from nova_common import imagecache
from tests.unit.nova_common import base

objects.register_all()
DAY = 24 * 3600
IMAGES = ("a1111111-2222-3333-4444-555555555555", "b1111111-2222-3333-4444-555555555555",
          "c1111111-2222-3333-4444-555555555555", "d1111111-2222-3333-4444-555555555555")


def instance(image_ref):
    return objects.Instance(id=1, uuid=image_ref.replace("1111111", "0000000"),
                            image_ref=image_ref, kernel_id=None, ramdisk_id=None,
                            host="compute", task_state=None, vm_state="active")


class TestImageCache(base.TestCase):
    def setUp(self):
        super().setUp()
        self.flags(host="compute")
        # the database behind nova's listing of the instances' mappings
        self.useFixture(fixtures.MockPatch(
            "nova.objects.BlockDeviceMappingList.bdms_by_instance_uuid", return_value={}))
        self.bases = {}
        for image_id in IMAGES:
            path = disks.base_path(image_id)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.truncate(1024 * 1024)
            self.bases[image_id] = path
        # an instance directory nova does not list (e.g. a rescue disk): backed by C
        self.idir = os.path.join(self.instances, "e0000000-2222-3333-4444-555555555555")
        os.mkdir(self.idir)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                        self.bases[IMAGES[2]], os.path.join(self.idir, "disk.rescue")],
                       check=True)
        self.cache = imagecache.ImageCacheManager()

    def age(self, seconds, *image_ids):
        for image_id in image_ids:
            then = time.time() - seconds
            os.utime(self.bases[image_id], (then, then))

    def exists(self):
        return [os.path.exists(self.bases[i]) for i in IMAGES]

    def test_unused_bases_go_after_their_minimum_age_used_ones_never(self):
        a, b, c, d = IMAGES
        self.age(10 * DAY, a, c)
        self.age(DAY - 60, b)           # unused, but not for long enough
        self.age(DAY + 60, d)           # unused for longer than the default day
        with open(self.bases[d] + ".part", "wb"):
            pass                        # an interrupted fetch, long ago
        os.utime(self.bases[d] + ".part", (0, 0))
        self.cache.update(None, [instance(a)])
        self.assertEqual([True, True, True, False], self.exists())
        self.assertFalse(os.path.exists(self.bases[d] + ".part"))
        for image_id in (a, c):         # in use: their age starts again
            self.assertLess(time.time() - os.path.getmtime(self.bases[image_id]), 60)

        self.flags(remove_unused_original_minimum_age_seconds=30, group="image_cache")
        self.cache.update(None, [instance(a)])
        self.assertEqual([True, False, True, False], self.exists())

        os.unlink(os.path.join(self.idir, "disk.rescue"))
        self.age(60, a, c)
        self.cache.update(None, [])
        self.assertEqual([False, False, False, False], self.exists())

    def test_nothing_removed_when_turned_off(self):
        self.flags(remove_unused_base_images=False, group="image_cache")
        self.age(10 * DAY, *IMAGES)
        self.cache.update(None, [])
        self.assertEqual([True] * 4, self.exists())

    def test_disk_usage_and_no_cache_yet(self):
        with open(self.bases[IMAGES[0]], "wb") as f:
            f.write(b"x" * 65536)
        self.assertEqual(65536, self.cache.get_disk_usage())     # the others are sparse
        for path in self.bases.values():
            os.unlink(path)
        os.rmdir(disks.base_dir())
        self.cache.update(None, [])
        self.assertEqual(0, self.cache.get_disk_usage())
