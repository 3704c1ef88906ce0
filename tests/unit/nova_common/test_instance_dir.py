import os

from oslo_utils import uuidutils

from nova_common import instance_dir
from tests.unit.nova_common import base


class TestInstanceDir(base.TestCase):
    def test_private_directory_and_metadata(self):
        uuid = uuidutils.generate_uuid()
        idir = instance_dir.InstanceDir(uuid).create()
        self.assertEqual(0o700, os.stat(idir.path).st_mode & 0o777)
        self.assertIsNone(idir.read_meta())
        idir.write_meta({"name": "a", "argv": ["x"]})
        self.assertEqual({"name": "a", "argv": ["x"]}, idir.read_meta())
        self.assertEqual(0o600, os.stat(idir.file(instance_dir.META)).st_mode & 0o777)
        self.assertEqual([instance_dir.META], os.listdir(idir.path))   # no temp file left
        idir.remove()
        self.assertFalse(idir.exists())

    def test_listing_holds_only_instance_directories_with_metadata(self):
        with_meta, without = uuidutils.generate_uuid(), uuidutils.generate_uuid()
        instance_dir.InstanceDir(with_meta).create().write_meta({})
        instance_dir.InstanceDir(without).create()
        os.makedirs(os.path.join(self.instances, "_base"))
        self.assertEqual([with_meta], instance_dir.list_uuids())
        self.assertEqual([], instance_dir.list_uuids(os.path.join(self.instances, "none")))

    def test_names_that_are_not_uuids_are_refused(self):
        for bad in ("../etc", "", "x" * 36):
            self.assertRaises(ValueError, instance_dir.InstanceDir, bad)
