import os

from oslo_utils import uuidutils

from nova_common import instance_dir
from nova_common import shared_storage
from tests.unit.nova_common import base


class Instance:
    def __init__(self, uuid):
        self.uuid = uuid


class TestSharedStorageChecks(base.TestCase):
    def setUp(self):
        super().setUp()
        self.checks = shared_storage.SharedStorage()
        self.inst = Instance(uuidutils.generate_uuid())

    def test_the_other_host_sees_the_probe_only_on_shared_storage(self):
        self.assertIsNone(self.checks.check_instance_shared_storage_local(None, self.inst))
        idir = instance_dir.InstanceDir(self.inst.uuid).create()
        data = self.checks.check_instance_shared_storage_local(None, self.inst)
        self.assertTrue(self.checks.check_instance_shared_storage_remote(None, data))
        self.checks.check_instance_shared_storage_cleanup(None, data)
        self.assertFalse(self.checks.check_instance_shared_storage_remote(None, data))
        self.assertEqual([], os.listdir(idir.path))

    def test_names_from_another_host_reach_no_other_file(self):
        idir = instance_dir.InstanceDir(self.inst.uuid).create()
        open(idir.file("disk"), "w").close()
        for data in ({"uuid": self.inst.uuid, "filename": "disk"},
                     {"uuid": self.inst.uuid, "filename": "../" + self.inst.uuid},
                     {"uuid": "../../etc", "filename": shared_storage.PROBE_PREFIX},
                     {"filename": "x"}, None):
            self.assertFalse(self.checks.check_instance_shared_storage_remote(None, data))
            self.checks.check_instance_shared_storage_cleanup(None, data)
        self.assertTrue(os.path.exists(idir.file("disk")))

    def test_disks_on_disk_only_with_a_host_state_path(self):
        instance_dir.InstanceDir(self.inst.uuid).create()
        self.assertFalse(self.checks.instance_on_disk(self.inst))
        self.flags(host_state_path=os.path.join(self.instances, "_state"),
                   group="hci_guests")
        self.assertTrue(self.checks.instance_on_disk(self.inst))
        self.assertFalse(self.checks.instance_on_disk(Instance(uuidutils.generate_uuid())))
