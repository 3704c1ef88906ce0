"""Driver-assisted migration: where a pool is, and what the source backend does."""
from cinder import exception
from cinder import objects
import fixtures

from tests.unit.zfs_cinder.base import NOT_FOUND
from tests.unit.zfs_cinder.base import VOL_ID
from tests.unit.zfs_cinder.base import DriverTestCase
from tests.unit.zfs_common.fakes import RecordingExecutor
from zfs_cinder import migration
from zfs_common import client as zfs_client
from zfs_common import exception as zfs_exc
from zfs_common import executor as executor_mod

ZVOL = "tank/cinder/volume-" + VOL_ID


def host(info):
    return {"host": "otherhost@zfs2#zfs2", "capabilities": {"location_info": info}}


class TestLocations(DriverTestCase):
    def test_round_trip_of_every_kind(self):
        for loc in (migration.Location("ssh", "192.0.2.20", 2222, "pool2/cinder"),
                    migration.Location("ssh", "fd00::20", 22, "p/c"),
                    migration.Location("local", "cinderhost", 0, "tank/cinder")):
            self.assertEqual(loc, migration.parse(migration.location_info(loc)))

    def test_foreign_or_hostile_locations_are_not_ours(self):
        for info in (None, 42, "LVMVolumeDriver:h:vg:default:0", "ZFSVolumeDriver:h:tank",
                     "ZFSVolumeDriver:ssh://h:22/tank/-o x", "ZFSVolumeDriver:ftp://h/t",
                     "ZFSVolumeDriver:ssh://h:99999/tank", "ZFSVolumeDriver:local:///tank"):
            self.assertIsNone(migration.parse(info), info)

    def test_reported_location_follows_how_the_zfs_host_is_reached(self):
        conf = self.drv.configuration
        self.assertEqual("ZFSVolumeDriver:local://cinderhost/tank/cinder",
                         migration.location_info(migration.own_location(conf, "tank/cinder")))
        drv = self.make_driver(zfs_peer_ssh_host="192.0.2.10")
        self.assertEqual("ZFSVolumeDriver:ssh://192.0.2.10:22/tank/cinder",
                         migration.location_info(migration.own_location(drv.configuration,
                                                                        "tank/cinder")))


class TestMigrate(DriverTestCase):
    def available(self, **kw):
        vol = self.volume(status="available", **kw)
        vol.volume_attachment = objects.VolumeAttachmentList()
        return vol

    def test_attached_foreign_or_unreachable_destinations_fall_back_to_cinder(self):
        attached = self.volume(status="in-use")
        self.assertEqual((False, None), self.drv.migrate_volume(
            self.ctx, attached, host("ZFSVolumeDriver:ssh://192.0.2.20:22/p/c")))
        vol = self.available()
        for info in ("LVMVolumeDriver:h:vg:default:0",
                     "ZFSVolumeDriver:local://otherhost/p/c"):   # another host's local ZFS
            self.assertEqual((False, None), self.drv.migrate_volume(self.ctx, vol,
                                                                    host(info)))
        self.assertEqual([], self.ex.calls)

    def test_same_zpool_of_this_zfs_host_is_a_rename(self):
        vol = self.available()
        moved = self.drv.migrate_volume(
            self.ctx, vol, host("ZFSVolumeDriver:local://cinderhost/tank/other"))
        self.assertEqual((True, None), moved)
        self.assertIn(["zfs", "rename", ZVOL, "tank/other/volume-" + VOL_ID], self.ex.calls)
        self.assertFalse([c for c in self.ex.calls if c[:2] == ["zfs", "send"]])

    def test_same_root_is_refused(self):
        self.assertRaises(exception.VolumeBackendAPIException, self.drv.migrate_volume,
                          self.ctx, self.available(),
                          host("ZFSVolumeDriver:local://cinderhost/tank/cinder"))

    def test_another_zfs_host_gets_a_stream_from_a_snapshot(self):
        vol = self.available()
        sent, dest = [], []
        self.useFixture(fixtures.MockPatchObject(executor_mod, "pipe",
                                                 lambda *a, **kw: sent.append(a)))

        def client(drv, here, there):
            c = zfs_client.ZFSClient(RecordingExecutor())
            c.executor.respond = lambda argv: NOT_FOUND if argv[1] == "list" else None
            dest.append((c, there))
            return c
        self.useFixture(fixtures.MockPatchObject(migration, "_client_for", client))
        self.assertEqual((True, None), self.drv.migrate_volume(
            self.ctx, vol, host("ZFSVolumeDriver:ssh://192.0.2.20:22/pool2/cinder")))
        ((_, send, _, recv),) = [s[:4] for s in sent]
        self.assertEqual(["zfs", "send"], send[:2])
        self.assertTrue(send[2].startswith(ZVOL + "@migrate-"))
        self.assertEqual(["zfs", "receive", "pool2/cinder/volume-" + VOL_ID], recv)
        ((d, there),) = dest
        self.assertEqual(("192.0.2.20", 22), (there.address, there.port))
        target = "pool2/cinder/volume-" + VOL_ID
        self.assertIn(["zfs", "destroy", "%s@%s" % (target, send[2].split("@")[1])],
                      d.executor.calls)
        self.assertIn("org.openstack:cinder_volume=" + VOL_ID,
                      [a for c in d.executor.calls if c[:2] == ["zfs", "set"] for a in c])
        # the source's snapshot and zvol go once the destination has it
        self.assertIn(["zfs", "destroy", send[2]], self.ex.calls)
        self.assertIn(["zfs", "destroy", "-r", ZVOL], self.ex.calls)

    def test_failed_stream_leaves_the_source_and_nothing_on_the_destination(self):
        vol = self.available()

        def broken(*a, **kw):
            raise zfs_exc.ZFSError("cannot receive: out of space")
        self.useFixture(fixtures.MockPatchObject(executor_mod, "pipe", broken))
        d = zfs_client.ZFSClient(RecordingExecutor())
        d.executor.respond = lambda argv: NOT_FOUND if argv[1] == "list" else None
        self.useFixture(fixtures.MockPatchObject(migration, "_client_for",
                                                 lambda *a: d))
        self.assertRaises(exception.VolumeBackendAPIException, self.drv.migrate_volume,
                          self.ctx, vol, host("ZFSVolumeDriver:ssh://192.0.2.20:22/p2/c"))
        self.assertIn(["zfs", "destroy", "-r", "p2/c/volume-" + VOL_ID], d.executor.calls)
        self.assertFalse([c for c in self.ex.calls if c[-1] == ZVOL and c[1] == "destroy"])
