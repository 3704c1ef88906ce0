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


class TestHostStatePath(base.TestCase):
    """``[hci_guests]host_state_path``: this host's files of an instance apart from its
    disks (a shared instances_path)."""

    def setUp(self):
        super().setUp()
        self.state = os.path.join(self.instances, "..", os.path.basename(self.instances)
                                  + "-state")
        os.makedirs(self.state)
        self.addCleanup(__import__("shutil").rmtree, self.state, True)
        self.flags(host_state_path=self.state, group="hci_guests")

    def test_disks_stay_with_the_instance_and_the_rest_is_this_hosts(self):
        uuid = uuidutils.generate_uuid()
        idir = instance_dir.InstanceDir(uuid).create()
        self.assertTrue(idir.separate)
        for name in (instance_dir.ROOT_DISK, instance_dir.CONFIG_DRIVE, "disk.eph0",
                     instance_dir.STATE_FILE):
            self.assertEqual(os.path.join(self.instances, uuid, name), idir.file(name))
        for name in ("qmp.sock", "qemu.pid", instance_dir.CONSOLE_LOG, "master-key"):
            self.assertEqual(os.path.join(self.state, uuid, name), idir.file(name))
        self.assertEqual(0o700, os.stat(idir.host_path).st_mode & 0o777)

    def test_only_instances_with_a_record_of_this_host_are_listed(self):
        mine, another_hosts = uuidutils.generate_uuid(), uuidutils.generate_uuid()
        record.write(instance_dir.InstanceDir(mine).create().host_path, a_record())
        # on the shared instances_path: another host's instance with its old-style record
        other = instance_dir.InstanceDir(another_hosts, state_root=self.instances).create()
        record.write(other.path, a_record())
        self.assertEqual([mine], instance_dir.list_uuids())

    def test_leaving_the_host_keeps_the_disks(self):
        idir = instance_dir.InstanceDir(uuidutils.generate_uuid()).create()
        open(idir.file(instance_dir.ROOT_DISK), "w").close()
        idir.remove_host()
        self.assertFalse(idir.host_exists())
        self.assertTrue(os.path.exists(idir.file(instance_dir.ROOT_DISK)))
        idir.create_host()
        idir.remove()
        self.assertFalse(idir.exists() or idir.host_exists())

    def test_rename_moves_both_directories(self):
        uuid = uuidutils.generate_uuid()
        idir = instance_dir.InstanceDir(uuid).create()
        record.write(idir.host_path, a_record())
        kept = instance_dir.InstanceDir(uuid, suffix="_resize")
        idir.rename(kept)
        self.assertTrue(kept.exists() and kept.host_exists())
        self.assertEqual([], instance_dir.list_uuids())
        kept.rename(idir)
        self.assertEqual([uuid], instance_dir.list_uuids())
