from unittest import mock

import fixtures
from manila import exception
from manila.share import configuration
from manila.share import driver as share_driver
from manila.share import manager  # noqa: F401 - registers manila's own options
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from tests.unit.zfs_common.fakes import RecordingExecutor
from zfs_common import client as zfs_client
from zfs_common import exception as zfs_exc
from zfs_common import opts as zfs_opts
from zfs_manila import driver
from zfs_manila import opts

GiB = 1024 ** 3
NOT_FOUND = (1, "", "cannot open 'x': dataset does not exist")


def share(share_id="s1", pool="tank", size=1, proto="NFS"):
    return {"id": share_id, "host": "h@zfs_unit#" + pool, "size": size, "share_proto": proto,
            "share_type_id": "t1"}


class DriverTestCase(testtools.TestCase):
    def setUp(self):
        super().setUp()
        group = "zfs_unit"
        conf = self.useFixture(config_fixture.Config(cfg.CONF))
        conf.register_opts(share_driver.share_opts + opts.zfs_share_opts
                           + zfs_opts.zfs_host_opts, group=group)
        conf.config(group=group, zfs_dataset_roots=["tank/manila", "other/m"],
                    zfs_share_export_ip="fd00::10", driver_handles_share_servers=False)
        self.conf = configuration.Configuration(share_driver.share_opts, config_group=group)
        self.specs = {}
        self.useFixture(fixtures.MockPatchObject(driver.share_types, "get_extra_specs_from_share",
                               lambda s: self.specs))
        self.drv = driver.ZFSShareDriver(configuration=self.conf)
        with mock.patch.object(zfs_client.ZFSClient, "from_config",
                               return_value=zfs_client.ZFSClient(RecordingExecutor())):
            self.drv.do_setup(None)
        self.ex = self.drv.zfs.executor

    def answer(self, *results):
        self.ex.results.extend(results)


class TestDriver(DriverTestCase):
    def test_create_share_makes_a_dataset_with_refquota(self):
        self.specs = {"zfs:recordsize": "1M"}
        self.ex.respond = lambda argv: (
            (0, "tank/manila/share-s1\tmountpoint\t/tank/manila/share-s1\n", "")
            if "mountpoint" in argv else None)
        locations = self.drv.create_share(None, share())
        # root-squashed clients can write into the share's root directory
        self.assertEqual("0o777", self.ex.files["/tank/manila/share-s1#mode"])
        create = self.ex.calls[0]
        self.assertEqual(["zfs", "create"], create[:2])
        self.assertEqual("tank/manila/share-s1", create[-1])
        self.assertIn("refquota=%d" % GiB, create)
        self.assertIn("recordsize=1M", create)
        self.assertIn("sharenfs=off", create)
        self.assertEqual([{"path": "[fd00::10]:/tank/manila/share-s1", "is_admin_only": False,
                           "metadata": {"preferred": True}}], locations)

    def test_create_share_removes_the_dataset_it_cannot_export(self):
        self.answer((0, "", ""), (0, "tank/manila/share-s1\tmountpoint\tnone\n", ""),
                    (0, "", ""), (0, "", ""))   # snapshots (none), destroy
        self.assertRaises(exception.ShareBackendException, self.drv.create_share, None,
                          share())
        self.assertEqual(["zfs", "destroy", "-r", "tank/manila/share-s1"], self.ex.calls[-1])

    def test_only_nfs(self):
        self.assertRaises(exception.InvalidShare, self.drv.create_share, None,
                          share(proto="CIFS"))
        self.assertEqual([], self.ex.calls)

    def test_unknown_pool(self):
        self.assertRaises(exception.ShareBackendException, self.drv.create_share, None,
                          share(pool="elsewhere"))

    def test_hostile_extra_spec_is_invalid_input_and_creates_nothing(self):
        self.specs = {"zfs:mountpoint": "/etc"}
        self.assertRaises(exception.InvalidInput, self.drv.create_share, None, share())
        self.assertEqual([], self.ex.calls)

    def test_shrink_below_usage_is_refused(self):
        self.answer((0, "tank/manila/share-s1\treferenced\t%d\n" % (2 * GiB), ""))
        self.assertRaises(exception.ShareShrinkingPossibleDataLoss, self.drv.shrink_share,
                          share(size=3), 1)
        self.assertEqual(1, len(self.ex.calls))

    def test_delete_of_a_missing_dataset_succeeds(self):
        self.answer(NOT_FOUND)
        self.drv.delete_share(None, share())
        self.assertEqual(1, len(self.ex.calls))

    def test_a_delete_still_busy_after_the_cache_flush_says_why_and_keeps_the_share(self):
        self.drv.zfs.busy_timeout = 0
        busy = (1, "", "cannot unmount '/m': pool or dataset is busy")

        def respond(argv):
            if argv[:2] == ["zfs", "get"] and "mountpoint,refquota" in " ".join(argv):
                return (0, "tank/manila/share-s1\tmountpoint\t/m\n"
                           "tank/manila/share-s1\trefquota\t1073741824\n"
                           "tank/manila/share-s1\torg.openstack:nfs_clients\t-\n", "")
            if argv[:2] == ["zfs", "destroy"] and "share-s1" in argv[-1]:
                return busy
            return None
        self.ex.respond = respond
        e = self.assertRaises(exception.ShareBackendException, self.drv.delete_share,
                              None, share())
        self.assertIn("export caches flushed", str(e))
        self.assertIn(["exportfs", "-f"], self.ex.calls)
        self.assertEqual(2, sum(1 for c in self.ex.calls if c[:2] == ["zfs", "destroy"]
                                and c[-1] == "tank/manila/share-s1"))

    def test_update_access_reports_refused_rules(self):
        self.answer((0, "tank/manila/share-s1\tmountpoint\t/m\n", ""),
                    (0, "tank/manila/share-s1\torg.openstack:nfs_clients\t-\n", ""))
        result = self.drv.update_access(None, share(), [
            {"access_type": "ip", "access_to": "10.0.0.0/8", "access_level": "rw",
             "access_id": "a"},
            {"access_type": "cert", "access_to": "x", "access_level": "rw",
             "access_id": "b"}], [], [], [])
        self.assertEqual({"b": {"state": "error"}}, result)
        self.assertIn(["exportfs", "-i", "-o", "rw,root_squash,sync,no_subtree_check,sec=sys",
                       "10.0.0.0/8:/m"], self.ex.calls)

    def test_snapshot_from_another_pool_is_received_not_cloned(self):
        snapshot = {"id": "i1", "snapshot_id": "n1", "share_instance_id": "s1",
                    "share_instance": {"host": "h@zfs_unit#tank"}}
        calls = []
        self.useFixture(fixtures.MockPatchObject(zfs_client.executor_mod, "pipe",
                               lambda *a, **kw: calls.append(a)))
        self.ex.respond = lambda argv: (
            (0, "other/m/share-s2\tmountpoint\t/other/m/share-s2\n", "")
            if "mountpoint" in argv else None)
        self.drv.create_share_from_snapshot(None, share("s2", pool="other"), snapshot)
        (send,) = calls
        self.assertEqual(["zfs", "send", "tank/manila/share-s1@snapshot-n1"], send[1])
        self.assertEqual(["zfs", "receive", "other/m/share-s2"], send[3])
        self.assertFalse([c for c in self.ex.calls if c[:2] == ["zfs", "clone"]])

    def test_ensure_shares_reexports_and_flags_missing_datasets(self):
        def respond(argv):
            if argv[-1] == "tank/manila/share-gone":
                return NOT_FOUND
            if "mountpoint" in argv:
                return (0, "%s\tmountpoint\t/%s\n" % (argv[-1], argv[-1]), "")
            return None
        self.ex.respond = respond
        updates = self.drv.ensure_shares(None, [share("ok"), share("gone")])
        self.assertEqual("available", updates["ok"]["status"])
        self.assertTrue(updates["ok"]["reapply_access_rules"])
        self.assertEqual("[fd00::10]:/tank/manila/share-ok",
                         updates["ok"]["export_locations"][0]["path"])
        self.assertEqual({"status": "error", "reapply_access_rules": False}, updates["gone"])


class TestStats(DriverTestCase):
    def respond(self, argv):
        if argv[1] == "get" and "-r" in argv:   # the full count of one root's refquotas
            root = argv[-1]
            return (0, "%s\trefquota\t0\n%s/share-a\trefquota\t%d\n%s/share-a@s\trefquota\t-\n"
                    % (root, root, 2 * GiB, root), "")
        if "used,available" in argv:
            return (0, "%s\tused\t%d\n%s\tavailable\t%d\n" % (argv[-1], GiB, argv[-1],
                                                               9 * GiB), "")
        if "mountpoint" in argv:
            return (0, "%s\tmountpoint\t/%s\n" % (argv[-1], argv[-1]), "")
        return None

    def provisioned(self):
        self.drv._update_share_stats()
        return {p["pool_name"]: p["provisioned_capacity_gb"]
                for p in self.drv._stats["pools"]}

    def full_counts(self):
        return sum(1 for argv in self.ex.calls if argv[1] == "get" and "-r" in argv)

    def test_counted_once_then_kept_from_the_drivers_own_operations(self):
        self.ex.respond = self.respond
        self.assertEqual({"tank": 2.0, "other": 2.0}, self.provisioned())
        self.drv.create_share(None, share("s2", size=3))
        self.drv.extend_share(share("s2", size=3), 5)
        self.assertEqual({"tank": 7.0, "other": 2.0}, self.provisioned())
        self.ex.respond = lambda argv: (
            (0, "tank/manila/share-s2\tmountpoint\t/x\ntank/manila/share-s2\trefquota\t%d\n"
                "tank/manila/share-s2\torg.openstack:nfs_clients\t-\n" % (5 * GiB), "")
            if "mountpoint,refquota" in " ".join(argv) else self.respond(argv))
        self.drv.delete_share(None, share("s2", size=5))
        self.assertEqual({"tank": 2.0, "other": 2.0}, self.provisioned())
        self.assertEqual(2, self.full_counts())       # one per root, at the first update


class TestEveryZFSErrorReachesManila(DriverTestCase):
    """No ZFSError leaves the driver: each becomes a manila exception with ZFS's text."""

    MESSAGE = "cannot open 'tank/manila': pool I/O is currently suspended"

    def setUp(self):
        super().setUp()
        self.ex.respond = lambda argv: (1, "", self.MESSAGE) if argv[0] == "zfs" else None

    def assertManila(self, expected, func, *args):
        e = self.assertRaises(expected, func, *args)
        self.assertIn("pool I/O is currently suspended", str(e))

    def test_shrink(self):
        self.assertManila(exception.ShareBackendException, self.drv.shrink_share,
                          share(size=3), 1)

    def test_manage_existing(self):
        self.assertManila(exception.ManageInvalidShare, self.drv.manage_existing,
                          dict(share(), export_locations=[{"path": "h:/tank/old"}]), {})

    def test_stats(self):
        self.assertManila(exception.ShareBackendException, self.drv.get_share_stats, True)

    def test_unreachable_host_in_every_operation(self):
        def unreachable(argv):
            raise zfs_exc.ConnectionFailed("cannot reach ZFS host root@zfs1: "
                                           "pool I/O is currently suspended")
        self.ex.respond = unreachable
        snapshot = {"id": "i1", "snapshot_id": "n1", "share_instance_id": "s1",
                    "share_instance": {"host": "h@zfs_unit#tank"}, "provider_location": ""}
        calls = [
            (self.drv.create_share, None, share()),
            (self.drv.delete_share, None, share()),
            (self.drv.extend_share, share(), 2),
            (self.drv.shrink_share, share(size=3), 1),
            (self.drv.ensure_share, None, share()),
            (self.drv.ensure_shares, None, [share()]),
            (self.drv.update_access, None, share(), [], [], [], []),
            (self.drv.create_snapshot, None, snapshot),
            (self.drv.delete_snapshot, None, snapshot),
            (self.drv.revert_to_snapshot, None, snapshot, [], []),
            (self.drv.create_share_from_snapshot, None, share("s2"), snapshot),
            (self.drv.get_share_stats, True),
        ]
        for func, *args in calls:
            e = self.assertRaises(exception.ManilaException, func, *args)
            self.assertIn("pool I/O is currently suspended", str(e), func.__name__)
        self.assertManila(exception.ManageInvalidShare, self.drv.manage_existing,
                          dict(share(), export_locations=[{"path": "h:/tank/old"}]), {})
