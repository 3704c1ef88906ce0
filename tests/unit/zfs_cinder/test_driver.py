from unittest import mock

from cinder import exception
from cinder.interface import util
import fixtures

from tests.unit.zfs_cinder.base import NOT_FOUND
from tests.unit.zfs_cinder.base import SNAP_ID
from tests.unit.zfs_cinder.base import VOL_ID
from tests.unit.zfs_cinder.base import DriverTestCase
from tests.unit.zfs_cinder.base import GiB
from zfs_cinder import driver
from zfs_common import exception as zfs_exc

ZVOL = "tank/cinder/volume-" + VOL_ID
SNAP = ZVOL + "@snapshot-" + SNAP_ID
BUSY = (1, "", "cannot destroy 'x': dataset is busy")


class TestContract(DriverTestCase):
    def test_required_attributes(self):
        self.assertIn(driver.ZFSVolumeDriver,
                      [d.cls for d in util.get_volume_drivers()])
        self.assertTrue(driver.ZFSVolumeDriver.VERSION)
        self.assertTrue(driver.ZFSVolumeDriver.CI_WIKI_NAME)
        names = {o.name for o in driver.ZFSVolumeDriver.get_driver_options()}
        self.assertLessEqual({"zfs_volume_root", "zfs_ssh_host", "target_helper",
                              "max_over_subscription_ratio"}, names)

    def test_bad_root_is_a_configuration_error(self):
        self.assertRaises(exception.InvalidConfigurationValue, self.make_driver,
                          zfs_volume_root="tank/-o mountpoint=/")

    def test_remote_host_needs_a_helper_that_runs_there(self):
        self.assertRaises(exception.InvalidConfigurationValue, self.make_driver,
                          zfs_ssh_host="192.0.2.5", target_helper="tgtadm")

    def test_missing_pool_fails_setup_check(self):
        self.answer(NOT_FOUND, (1, "", "cannot create 'tank/cinder': no such pool 'tank'"))
        self.assertRaises(exception.VolumeBackendAPIException,
                          self.drv.check_for_setup_error)


class TestVolumes(DriverTestCase):
    def test_create_is_sparse_with_type_properties(self):
        self.specs = {"zfs:compression": "lz4", "zfs:volblocksize": "16K"}
        self.drv.create_volume(self.volume(size=2))
        argv = self.ex.calls[0]
        self.assertEqual(["zfs", "create", "-V", str(2 * GiB), "-s"], argv[:5])
        self.assertIn("compression=lz4", argv)
        self.assertIn("volblocksize=16K", argv)
        self.assertIn("org.openstack:cinder_volume=" + VOL_ID, argv)
        self.assertEqual(ZVOL, argv[-1])

    def test_thick_type_reserves(self):
        self.specs = {"provisioning:type": "thick"}
        self.drv.create_volume(self.volume())
        self.assertNotIn("-s", self.ex.calls[0])

    def test_hostile_spec_is_invalid_input_and_runs_nothing(self):
        self.specs = {"zfs:mountpoint": "/etc"}
        self.assertRaises(exception.InvalidInput, self.drv.create_volume, self.volume())
        self.specs = {"zfs:compression": "-o readonly=on"}
        self.assertRaises(exception.InvalidInput, self.drv.create_volume, self.volume())
        self.assertEqual([], self.ex.calls)

    def test_full_pool_is_a_backend_error(self):
        self.answer((1, "", "cannot create 'x': out of space"))
        self.assertRaises(exception.VolumeBackendAPIException, self.drv.create_volume,
                          self.volume())

    def test_clone_snapshots_clones_and_marks_the_helper_snapshot(self):
        src = self.volume()
        new = self.volume(id="22222222-2222-3333-4444-555555555555", size=3)
        self.drv.create_cloned_volume(new, src)
        helper = ZVOL + "@clone-" + new.id
        self.assertEqual(["zfs", "snapshot", helper], self.ex.calls[0])
        self.assertEqual(["zfs", "clone"], self.ex.calls[1][:2])
        self.assertEqual([helper, "tank/cinder/volume-" + new.id], self.ex.calls[1][-2:])
        self.assertEqual(["zfs", "set", "volsize=%d" % (3 * GiB),
                          "tank/cinder/volume-" + new.id], self.ex.calls[2])
        self.assertEqual(["zfs", "destroy", "-d", helper], self.ex.calls[3])

    def test_failed_clone_leaves_no_helper_snapshot(self):
        self.answer((0, "", ""), (1, "", "cannot create 'x': out of space"))
        new = self.volume(id="22222222-2222-3333-4444-555555555555")
        self.assertRaises(exception.VolumeBackendAPIException,
                          self.drv.create_cloned_volume, new, self.volume())
        self.assertEqual("destroy", self.ex.calls[-1][1])

    def test_resize_failure_after_clone_destroys_the_clone(self):
        self.answer((0, "", ""), (1, "", "cannot set property: out of space"))
        snap = self.snapshot()
        new = self.volume(id="22222222-2222-3333-4444-555555555555", size=5)
        self.assertRaises(exception.VolumeBackendAPIException,
                          self.drv.create_volume_from_snapshot, new, snap)
        self.assertEqual(["zfs", "destroy", "tank/cinder/volume-" + new.id],
                         self.ex.calls[-1])

    def test_delete_retires_and_missing_is_fine(self):
        self.answer(NOT_FOUND)
        self.drv.delete_volume(self.volume())
        self.assertEqual(1, len(self.ex.calls))
        self.ex.calls.clear()
        self.answer((0, ZVOL + "\n", ""), (0, "", ""), (0, "", ""))  # exists, snapshots
        self.drv.delete_volume(self.volume())
        self.assertEqual(["zfs", "destroy", "-r", ZVOL], self.ex.calls[-1])

    def test_busy_volume(self):
        self.drv.zfs.busy_timeout = 0
        self.answer((0, ZVOL + "\n", ""), (0, "", ""), BUSY)
        self.assertRaises(exception.VolumeIsBusy, self.drv.delete_volume, self.volume())

    def test_extend(self):
        self.drv.extend_volume(self.volume(), 4)
        self.assertEqual(["zfs", "set", "volsize=%d" % (4 * GiB), ZVOL], self.ex.calls[0])


class TestSnapshots(DriverTestCase):
    def test_create_and_deferred_delete(self):
        self.drv.create_snapshot(self.snapshot())
        self.drv.delete_snapshot(self.snapshot())
        self.assertEqual([["zfs", "snapshot", SNAP], ["zfs", "destroy", "-d", SNAP]],
                         self.ex.calls)

    def test_busy_snapshot(self):
        self.drv.zfs.busy_timeout = 0
        self.answer(BUSY)
        self.assertRaises(exception.SnapshotIsBusy, self.drv.delete_snapshot,
                          self.snapshot())

    def test_revert_uses_rollback_without_temporary_snapshot(self):
        self.assertFalse(self.drv.snapshot_revert_use_temp_snapshot())
        self.answer((0, SNAP + "\n", ""))
        self.drv.revert_to_snapshot(self.ctx, self.volume(), self.snapshot())
        self.assertEqual(["zfs", "rollback", SNAP], self.ex.calls[-1])

    def test_revert_restores_a_size_grown_since_the_snapshot(self):
        self.answer((0, SNAP + "\n", ""))
        self.drv.revert_to_snapshot(self.ctx, self.volume(size=2),
                                    self.snapshot(volume_size=1))
        self.assertEqual(["zfs", "set", "volsize=%d" % (2 * GiB), ZVOL], self.ex.calls[-1])

    def test_revert_falls_back_when_newer_snapshots_have_clones(self):
        newer = ZVOL + "@clone-x"
        self.answer((0, SNAP + "\n" + newer + "\n", ""),
                    (0, newer + "\tclones\ttank/cinder/volume-x\n", ""))
        self.assertRaises(NotImplementedError, self.drv.revert_to_snapshot, self.ctx,
                          self.volume(), self.snapshot())
        self.assertNotIn("rollback", [c[1] for c in self.ex.calls])

    def test_revert_removes_newer_unused_helper_snapshots(self):
        newer = ZVOL + "@clone-x"
        self.answer((0, SNAP + "\n" + newer + "\n", ""), (0, newer + "\tclones\t\n", ""))
        self.drv.revert_to_snapshot(self.ctx, self.volume(), self.snapshot())
        self.assertEqual(["zfs", "rollback", "-r", SNAP], self.ex.calls[-1])


class TestStats(DriverTestCase):
    def test_one_pool_named_after_the_backend_from_one_command(self):
        self.answer((0, "tank\tused\t%d\ntank\tavailable\t%d\ntank/cinder\tused\t%d\n"
                     "tank/cinder\tavailable\t%d\n" % (GiB, 9 * GiB, GiB, 8 * GiB), ""))
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual([["zfs", "get", "-H", "-p", "-o", "name,property,value",
                           "used,available", "tank", "tank/cinder"]], self.ex.calls)
        (pool,) = stats["pools"]
        self.assertEqual("zfs", pool["pool_name"])
        self.assertEqual(10, pool["total_capacity_gb"])
        self.assertEqual(8, pool["free_capacity_gb"])
        self.assertNotIn("provisioned_capacity_gb", pool)   # cinder's allocated counts
        self.assertTrue(pool["thin_provisioning_support"])
        self.assertTrue(pool["multiattach"])
        self.assertEqual("ZFSVolumeDriver:local://cinderhost/tank/cinder", pool["location_info"])
        for key in ("driver_version", "storage_protocol", "vendor_name",
                    "volume_backend_name"):
            self.assertIn(key, stats)
        self.assertIn("reserved_percentage", pool)


class TestPools(DriverTestCase):
    def setUp(self):
        super().setUp()
        self.drv = self.make_driver(zfs_volume_root=None,
                                    zfs_volume_roots=["tank/cinder", "fast/c/v"])
        self.ex = self.drv.zfs.executor

    def test_a_pool_per_zpool_with_its_capacity(self):
        self.answer((0, "".join("%s\tused\t%d\n%s\tavailable\t%d\n" % (n, u, n, a)
                                for n, u, a in [("fast", GiB, GiB), ("tank", GiB, 9 * GiB),
                                                ("fast/c/v", GiB, GiB // 2),
                                                ("tank/cinder", GiB, 8 * GiB)]), ""))
        stats = self.drv.get_volume_stats(refresh=True)
        self.assertEqual(1, len(self.ex.calls))
        self.assertEqual({"fast": (2, 0.5), "tank": (10, 8)},
                         {p["pool_name"]: (p["total_capacity_gb"], p["free_capacity_gb"])
                          for p in stats["pools"]})

    def test_volumes_go_to_the_root_of_their_pool(self):
        self.drv.create_volume(self.volume(host="cinderhost@zfs#fast"))
        self.assertEqual("fast/c/v/volume-" + VOL_ID, self.ex.calls[-1][-1])
        self.assertEqual("fast", self.drv.get_pool(self.volume(host="cinderhost@zfs#fast")))

    def test_a_volume_from_a_snapshot_in_another_zpool_is_received(self):
        sent = []
        self.useFixture(fixtures.MockPatchObject(
            driver.zfs_client.executor_mod, "pipe", lambda *a, **kw: sent.append(a)))
        snapshot = self.snapshot(self.volume(host="cinderhost@zfs#tank"))
        new = self.volume(id=SNAP_ID, host="cinderhost@zfs#fast")
        self.drv.create_volume_from_snapshot(new, snapshot)
        (pipe,) = sent
        self.assertEqual(["zfs", "receive", "fast/c/v/volume-" + SNAP_ID], pipe[3])
        self.assertIn(["zfs", "destroy", "fast/c/v/volume-%s@snapshot-%s" % (SNAP_ID, SNAP_ID)],
                      self.ex.calls)
        self.assertFalse([c for c in self.ex.calls if c[:2] == ["zfs", "clone"]])

    def test_retype_to_another_pool_needs_migration(self):
        volume = self.volume(host="cinderhost@zfs#tank")
        self.assertFalse(self.drv.retype(self.ctx, volume, {"extra_specs": {}}, {},
                                         {"host": "cinderhost@zfs#fast"}))
        self.assertEqual([], self.ex.calls)

    def test_bad_pool_settings(self):
        for options in ({"zfs_volume_root": "tank/a", "zfs_volume_roots": ["fast/b"]},
                        {"zfs_volume_root": None, "zfs_volume_roots": []},
                        {"zfs_volume_root": None, "zfs_volume_roots": ["tank/a", "tank/b"]},
                        {"zfs_volume_root": None, "zfs_volume_roots": ["tank/a", "b;rm"]}):
            self.assertRaises(exception.InvalidConfigurationValue, self.make_driver,
                              **options)


class TestAttach(DriverTestCase):
    def test_same_host_gets_a_local_connection_after_the_link_appears(self):
        self.ex.paths.add("/dev/zvol/" + ZVOL)
        vol = self.volume()
        connector = {"host": "cinderhost", "initiator": "iqn.x"}
        self.assertIsNone(self.drv.create_export(self.ctx, vol, connector))
        info = self.drv.initialize_connection(vol, connector)
        self.assertEqual({"driver_volume_type": "local",
                          "data": {"device_path": "/dev/zvol/" + ZVOL}}, info)

    def test_other_hosts_get_the_target(self):
        self.ex.paths.add("/dev/zvol/" + ZVOL)
        # the target helper reads earlier CHAP credentials from cinder's database
        self.drv.target.db = mock.Mock(**{"volume_get.return_value": {"provider_auth": None}})
        vol = self.volume()
        connector = {"host": "compute2", "initiator": "iqn.1994-05.com.example:c2"}
        update = self.drv.create_export(self.ctx, vol, connector)
        self.assertIn("iqn.2010-10.org.openstack:volume-" + VOL_ID,
                      update["provider_location"])
        self.assertTrue(update["provider_auth"].startswith("CHAP "))
        vol.provider_location = update["provider_location"]
        vol.provider_auth = update["provider_auth"]
        info = self.drv.initialize_connection(vol, connector)
        self.assertEqual("iscsi", info["driver_volume_type"])
        self.assertEqual("192.0.2.10:3260", info["data"]["target_portal"])

    def test_local_attach_can_be_disabled(self):
        drv = self.make_driver(zfs_local_attach=False)
        self.assertFalse(drv._is_local({"host": "cinderhost"}))

    def test_remote_zfs_host_attaches_locally_only_where_configured(self):
        drv = self.make_driver(zfs_ssh_host="192.0.2.5", target_helper="lioadm",
                               zfs_local_attach_hosts=["zfshost"])
        self.assertTrue(drv._is_local({"host": "zfshost"}))
        self.assertFalse(drv._is_local({"host": "cinderhost"}))
        self.assertRaises(NotImplementedError, drv.local_path, self.volume())


class TestDetach(DriverTestCase):
    def attached(self, *connectors, multiattach=False):
        from cinder import objects
        vol = self.volume(multiattach=multiattach,
                          provider_location="127.0.0.1:3260,1 iqn.x 0")
        vol.volume_attachment = objects.VolumeAttachmentList(objects=[
            objects.VolumeAttachment(connector=c) for c in connectors])
        return vol

    def test_the_export_stays_while_the_same_host_has_another_attachment(self):
        c2 = {"host": "compute2", "initiator": "iqn.c2"}
        self.drv.target.terminate_connection = mock.Mock()
        vol = self.attached(c2, c2, multiattach=True)
        self.assertTrue(self.drv.terminate_connection(vol, c2))
        self.drv.target.terminate_connection.assert_not_called()

    def test_last_attachment_of_a_host_removes_its_access(self):
        c2 = {"host": "compute2", "initiator": "iqn.c2"}
        c3 = {"host": "compute3", "initiator": "iqn.c3"}
        self.drv.target.terminate_connection = mock.Mock()
        vol = self.attached(c2, c3, multiattach=True)
        self.assertTrue(self.drv.terminate_connection(vol, c2))   # c3 still attached
        self.drv.target.terminate_connection.assert_called_once_with(vol, c2)

    def test_local_detach_touches_no_target(self):
        self.drv.target.terminate_connection = mock.Mock()
        local = {"host": "cinderhost"}
        self.assertFalse(self.drv.terminate_connection(self.attached(local), local))
        self.drv.target.terminate_connection.assert_not_called()

    def test_forced_detach_without_connector(self):
        self.drv.target.terminate_connection = mock.Mock()
        self.assertFalse(self.drv.terminate_connection(self.attached({}), None))
        self.drv.target.terminate_connection.assert_not_called()


class TestEveryZFSErrorReachesCinder(DriverTestCase):
    """No ZFSError leaves the driver: each becomes a cinder exception with ZFS's text."""

    def test_unreachable_host_in_every_operation(self):
        def unreachable(argv):
            raise zfs_exc.ConnectionFailed("cannot reach ZFS host root@zfs1: "
                                           "Connection refused")
        self.ex.respond = unreachable
        volume, snapshot = self.volume(), self.snapshot()
        local = {"host": "cinderhost"}
        calls = [
            (self.drv.create_volume, volume),
            (self.drv.delete_volume, volume),
            (self.drv.extend_volume, volume, 2),
            (self.drv.create_snapshot, snapshot),
            (self.drv.delete_snapshot, snapshot),
            (self.drv.create_volume_from_snapshot, self.volume(id=SNAP_ID), snapshot),
            (self.drv.create_cloned_volume, self.volume(id=SNAP_ID), volume),
            (self.drv.revert_to_snapshot, self.ctx, volume, snapshot),
            (self.drv.initialize_connection, volume, local),
            (self.drv.create_export, self.ctx, volume, {"host": "other"}),
            (self.drv.manage_existing, volume, {"source-name": "old"}),
            (self.drv.get_manageable_volumes, [], None, 10, 0, ["size"], ["asc"]),
            (self.drv.get_volume_stats, True),
        ]
        for func, *args in calls:
            e = self.assertRaises(exception.CinderException, func, *args)
            self.assertIn("Connection refused", str(e), func.__name__)
