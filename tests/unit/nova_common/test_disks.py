import json
import os
import subprocess
from unittest import mock

from nova import exception
from nova import objects
from nova.virt import images

from nova_common import disks
from tests.unit.nova_common import base

objects.register_all()
MiB = 1024 ** 2


def instance(root_gb=1):
    return objects.Instance(uuid="11111111-2222-3333-4444-555555555555",
                            image_ref="22222222-3333-4444-5555-666666666666",
                            trusted_certs=None,
                            flavor=objects.Flavor(root_gb=root_gb))


class TestDisks(base.TestCase):
    def test_only_qcow2_and_raw_images(self):
        for fmt in ("qcow2", "raw"):
            disks.check_image(instance(), objects.ImageMeta.from_dict({"disk_format": fmt}))
        for fmt in ("vmdk", "iso"):
            self.assertRaises(exception.ImageUnacceptable, disks.check_image, instance(),
                              objects.ImageMeta.from_dict({"disk_format": fmt}))

    def test_root_disk_is_a_private_overlay_on_a_base_fetched_once(self):
        def fetch(context, image_id, path, trusted_certs=None):
            with open(path, "wb") as f:
                f.truncate(8 * MiB)

        fetch = mock.Mock(side_effect=fetch)
        self.useFixture(__import__("fixtures").MockPatchObject(images, "fetch_to_raw", fetch))
        paths = []
        for n in range(2):
            paths.append(os.path.join(self.instances, "disk%d" % n))
            disks.create_root_disk(None, instance(), paths[-1])
        fetch.assert_called_once()            # the base image is cached
        base = disks.base_path(instance().image_ref)
        for path in paths:
            info = json.loads(subprocess.run(
                ["qemu-img", "info", "--output=json", "-U", path], check=True,
                capture_output=True, text=True).stdout)
            self.assertEqual(("qcow2", base, 1024 * MiB),
                             (info["format"], info["backing-filename"],
                              info["virtual-size"]))
            self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        self.assertFalse(os.path.exists(base + ".part"))
