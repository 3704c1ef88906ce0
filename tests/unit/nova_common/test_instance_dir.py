import os

from oslo_utils import uuidutils

from nova_common import instance_dir
from nova_common import record
from tests.unit.nova_common import base


def a_record(**kw):
    return record.Record(name="a", vcpus=1, memory_mb=64, spec={"machine": "q35"}, **kw)


class TestInstanceDir(base.TestCase):
    def test_private_directory(self):
        uuid = uuidutils.generate_uuid()
        idir = instance_dir.InstanceDir(uuid).create()
        self.assertEqual(0o700, os.stat(idir.path).st_mode & 0o777)
        idir.remove()
        self.assertFalse(idir.exists())

    def test_listing_holds_only_instance_directories_with_a_record(self):
        with_record, without = uuidutils.generate_uuid(), uuidutils.generate_uuid()
        record.write(instance_dir.InstanceDir(with_record).create().path, a_record())
        instance_dir.InstanceDir(without).create()
        os.makedirs(os.path.join(self.instances, "_base"))
        self.assertEqual([with_record], instance_dir.list_uuids())
        self.assertEqual([], instance_dir.list_uuids(os.path.join(self.instances, "none")))

    def test_names_that_are_not_uuids_are_refused(self):
        for bad in ("../etc", "", "x" * 36):
            self.assertRaises(ValueError, instance_dir.InstanceDir, bad)
