"""ZFSShareDriver on real ZFS: bad input, concurrency (zfs-fuse on this host) and a real
NFS mount on kernel OpenZFS in the test guest, managed over SSH."""
import concurrent.futures
import errno
import os
import subprocess
import uuid

import fixtures
from manila import exception
from manila.share import configuration
from manila.share import driver as share_driver
from manila.share import manager  # noqa: F401 - registers manila's own options
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from tests.common import privsep_fixture
from tests.common import zfsfuse
from tests.common import zfsguest
from zfs_common import opts as zfs_opts
from zfs_manila import driver
from zfs_manila import opts

GiB = 1024 ** 3


def new_share(pool, size=1, share_id=None):
    return {"id": share_id or str(uuid.uuid4()), "host": "h@zfs#" + pool, "size": size,
            "share_proto": "NFS", "share_type_id": "t"}


def rule(to, level="rw"):
    return {"access_type": "ip", "access_to": to, "access_level": level,
            "access_id": "r-" + to}


class DriverOnZfs(testtools.TestCase):
    """Builds a driver from a backend section, as manila's share manager does."""

    def make_driver(self, **options):
        group = "zfs"    # the backend name in the hosts of new_share()
        conf = self.useFixture(config_fixture.Config(cfg.CONF))
        conf.register_opts(share_driver.share_opts + opts.zfs_share_opts
                           + zfs_opts.zfs_host_opts, group=group)
        conf.config(group=group, driver_handles_share_servers=False, **options)
        self.specs = {}
        self.useFixture(fixtures.MockPatchObject(
            driver.share_types, "get_extra_specs_from_share", lambda s: self.specs))
        drv = driver.ZFSShareDriver(configuration=configuration.Configuration(
            share_driver.share_opts, config_group=group))
        drv.do_setup(None)
        drv.check_for_setup_error()
        return drv


class TestDriverOnZfsFuse(DriverOnZfs):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(300, gentle=True))
        self.useFixture(privsep_fixture.PrivsepInProcess())
        self.pool = self.useFixture(zfsfuse.FusePool(size=3 * GiB, prefix="dp"))
        self.root = self.pool.name + "/manila"
        self.drv = self.make_driver(zfs_dataset_roots=[self.root],
                                    zfs_share_export_ip="127.0.0.1")

    def datasets(self):
        return zfsfuse.run("zfs", "list", "-H", "-o", "name", "-t", "all", "-r",
                           self.root).split()

    def exports(self):
        with open("/var/lib/nfs/etab") as f:
            etab = [line for line in f if line.startswith(self.pool.mountpoint)]
        files = [n for n in os.listdir("/etc/exports.d") if self.pool.name in n]
        return etab + files

    def test_missing_pool_is_a_configuration_error(self):
        self.assertRaises(exception.BadConfigurationException, self.make_driver,
                          zfs_dataset_roots=["nosuchpool/manila"],
                          zfs_share_export_ip="127.0.0.1")

    def test_hostile_root_is_a_configuration_error(self):
        self.assertRaises(exception.BadConfigurationException, self.make_driver,
                          zfs_dataset_roots=["tank/$(reboot)"], zfs_share_export_ip="127.0.0.1")

    def test_full_pool_refuses_a_thick_share_and_leaves_nothing(self):
        self.specs = {"thin_provisioning": "<is> False"}
        self.assertRaises(exception.ShareBackendException, self.drv.create_share, None,
                          new_share(self.pool.name, size=50))
        self.assertEqual([self.root], self.datasets())

    def test_hostile_share_id_is_invalid_input(self):
        self.assertRaises(exception.InvalidInput, self.drv.create_share, None,
                          new_share(self.pool.name, share_id="x;zfs destroy -r tank"))
        self.assertEqual([self.root], self.datasets())

    def test_hostile_extra_spec_is_invalid_input(self):
        self.specs = {"zfs:compression": "on\nreadonly=off"}
        self.assertRaises(exception.InvalidInput, self.drv.create_share, None,
                          new_share(self.pool.name))
        self.assertEqual([self.root], self.datasets())

    def test_shrink_below_data_is_refused(self):
        share = new_share(self.pool.name, size=2)
        self.drv.create_share(None, share)
        mountpoint = zfsfuse.run("zfs", "get", "-H", "-o", "value", "mountpoint",
                                 self.drv._dataset(share)).strip()
        with open(os.path.join(mountpoint, "data"), "wb") as f:
            f.write(os.urandom(1024 * 1024) * 1200)     # ~1.2 GiB of incompressible data
        subprocess.run(["sync"], check=True)
        self.assertRaises(exception.ShareShrinkingPossibleDataLoss, self.drv.shrink_share,
                          share, 1)
        self.drv.delete_share(None, share)

    def test_busy_share_is_a_backend_error_and_stays_whole(self):
        share = new_share(self.pool.name)
        self.drv.create_share(None, share)
        dataset = self.drv._dataset(share)
        mountpoint = zfsfuse.run("zfs", "get", "-H", "-o", "value", "mountpoint",
                                 dataset).strip()
        holder = subprocess.Popen(["sleep", "60"], cwd=mountpoint)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        self.drv.zfs.busy_timeout = 0.5
        self.assertRaises(exception.ShareBackendException, self.drv.delete_share, None, share)
        self.assertIn(dataset, self.datasets())
        holder.kill()
        holder.wait()
        self.drv.zfs.busy_timeout = 30     # zfs-fuse: busy for a moment after I/O
        self.drv.delete_share(None, share)
        self.assertEqual([self.root], self.datasets())

    def test_manage_and_unmanage_share_and_snapshot(self):
        legacy = self.pool.name + "/legacy"
        zfsfuse.run("zfs", "create", legacy)
        mountpoint = zfsfuse.run("zfs", "get", "-H", "-o", "value", "mountpoint",
                                 legacy).strip()
        with open(os.path.join(mountpoint, "data"), "wb") as f:
            f.write(b"x" * 4096)
        zfsfuse.run("zfs", "snapshot", legacy + "@before")
        share = dict(new_share(self.pool.name),
                     export_locations=[{"path": "127.0.0.1:" + mountpoint}])
        bad = dict(share, export_locations=[{"path": "127.0.0.1:/nowhere"}])
        self.assertRaises(exception.ManageInvalidShare, self.drv.manage_existing, bad, {})
        self.assertEqual(0.0, self.provisioned_gb())
        result = self.drv.manage_existing(share, {})
        self.assertEqual(1.0, self.provisioned_gb())        # recounted after the manage
        dataset = self.drv._dataset(share)
        self.assertEqual(1, result["size"])                  # usage rounded up to 1 GiB
        self.assertIn(dataset, self.datasets())
        self.assertNotIn(legacy, self.datasets())
        self.assertEqual(str(GiB), zfsfuse.run("zfs", "get", "-H", "-p", "-o", "value",
                                               "refquota", dataset).strip())
        snap = {"id": "i", "snapshot_id": "ms1", "share_instance_id": share["id"],
                "share_instance": share, "provider_location": dataset + "@before"}
        self.assertRaises(exception.ManageInvalidShareSnapshot,
                          self.drv.manage_existing_snapshot,
                          dict(snap, provider_location=self.root + "@x"), {})
        managed = self.drv.manage_existing_snapshot(snap, {})
        self.assertEqual(dataset + "@snapshot-ms1", managed["provider_location"])
        self.assertIn(dataset + "@snapshot-ms1", self.datasets())
        # unmanage forgets without touching ZFS
        self.drv.unmanage_snapshot(snap)
        self.drv.unmanage(share)
        self.assertIn(dataset + "@snapshot-ms1", self.datasets())
        # (the pool fixture destroys the dataset: a `zfs destroy` right after I/O can meet
        # zfs-fuse's transient "dataset is busy")

    def test_stats_report_capacity_and_provisioning(self):
        self.drv.create_share(None, new_share(self.pool.name, size=2))
        self.specs = {"thin_provisioning": "<is> False"}
        self.drv.create_share(None, new_share(self.pool.name, size=1))
        stats = self.drv.get_share_stats(refresh=True)
        (pool,) = stats["pools"]
        self.assertEqual(self.pool.name, pool["pool_name"])
        self.assertEqual(3.0, pool["provisioned_capacity_gb"])
        self.assertGreater(pool["total_capacity_gb"], 2.5)
        # the thick share reserves its 1 GiB: free space dropped by at least that
        self.assertLess(pool["free_capacity_gb"], pool["total_capacity_gb"] - 0.99)
        self.assertEqual([True, False], pool["thin_provisioning"])
        self.assertEqual("NFS", stats["storage_protocol"])
        self.assertTrue(stats["revert_to_snapshot_support"])

    def provisioned_gb(self, drv=None):
        (pool,) = (drv or self.drv).get_share_stats(refresh=True)["pools"]
        return pool["provisioned_capacity_gb"]

    def test_provisioned_capacity_follows_the_drivers_operations_and_recounts(self):
        self.assertEqual(0.0, self.provisioned_gb())
        share = new_share(self.pool.name, size=2)
        self.drv.create_share(None, share)
        self.drv.extend_share(share, 3)
        share["size"] = 3
        self.assertEqual(3.0, self.provisioned_gb())
        self.drv.delete_share(None, share)
        self.assertEqual(0.0, self.provisioned_gb())
        # a dataset made outside manila shows at the next recount (600 s here), not before;
        # a backend set to recount every time sees it at once
        zfsfuse.run("zfs", "create", "-o", "refquota=1G", self.root + "/outside")
        self.assertEqual(0.0, self.provisioned_gb())
        recounting = self.make_driver(zfs_dataset_roots=[self.root],
                                      zfs_share_export_ip="127.0.0.1",
                                      zfs_provisioned_recount_interval=0)
        self.assertEqual(1.0, self.provisioned_gb(recounting))


class TestDriverOnOpenZfsGuest(DriverOnZfs):
    """Over SSH, as with a remote ZFS host; the guest's kernel NFS server serves exports."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        self.guest = zfsguest.shared_guest()
        self.useFixture(privsep_fixture.PrivsepInProcess())
        self.pool = self.useFixture(zfsguest.ZfsPool(self.guest)).name
        self.guest.run("/usr/local/sbin/start-nfsd")
        self.drv = self.make_driver(
            zfs_dataset_roots=[self.pool + "/manila"], zfs_share_export_ip="127.0.0.1",
            zfs_ssh_host="127.0.0.1", zfs_ssh_port=self.guest.ports["ssh"],
            zfs_ssh_private_key=self.guest.ssh_key, zfs_ssh_known_hosts_file="/dev/null",
            zfs_ssh_strict_host_key_checking="no")

    def mount(self, location, *commands):
        script = ("mkdir -p /mnt/t && mount -t nfs -o vers=4.2,soft,timeo=50 %s /mnt/t && "
                  "{ %s; }; rc=$?; umount /mnt/t; exit $rc" % (location, "; ".join(commands)))
        return self.guest.run(script, check=False)

    def test_nfs_export_rw_then_ro_then_revoked(self):
        share = new_share(self.pool)
        (location,) = self.drv.create_share(None, share)
        self.addCleanup(self.drv.delete_share, None, share)
        # KNOWN LIMITATION: after NFSv4 use the guest's kernel (6.1) can keep entries for
        # the share in its export caches (/proc/net/rpc/nfsd.export/content, nfsd.fh) that
        # `exportfs -f` does not remove; they hold the dataset mounted, so a delete then
        # fails (a clear ShareBackendException, share intact). Measured: in 3 of 3 runs
        # that followed this class's other tests, never in 21 deletes without them; gone
        # by themselves after 3-4 minutes, at once with `rpc.nfsd 0`. The test stops nfsd
        # before its delete rather than wait minutes.
        self.addCleanup(self.guest.run, "rpc.nfsd 0; exportfs -f", check=False)
        path = location["path"]
        self.assertNotEqual(0, self.mount(path, "true").rc)       # nobody is allowed yet
        self.drv.update_access(None, share, [rule("127.0.0.1")], [], [], [])
        res = self.mount(path, "echo hi > /mnt/t/f", "cat /mnt/t/f")
        self.assertEqual((0, "hi"), (res.rc, res.out.strip()), res.err)
        self.drv.update_access(None, share, [rule("127.0.0.1", "ro")], [], [], [])
        res = self.mount(path, "cat /mnt/t/f", "touch /mnt/t/g")
        self.assertNotEqual(0, res.rc)
        self.assertIn("Read-only", res.err)
        # root is squashed: a file root writes belongs to nobody
        self.drv.update_access(None, share, [rule("127.0.0.0/8")], [], [], [])
        res = self.mount(path, "touch /mnt/t/h", "stat -c %U /mnt/t/h")
        self.assertEqual("nobody", res.out.strip().splitlines()[-1], res.err)
        self.assertIn("zfs-manila-", self.guest.run("ls /etc/exports.d").out)
        self.drv.update_access(None, share, [], [], [], [])
        self.assertNotEqual(0, self.mount(path, "true").rc)
        self.assertNotIn(share["id"], self.guest.run("ls /etc/exports.d; exportfs -v").out)

    def test_share_from_snapshot_is_a_clone_and_delete_keeps_children(self):
        parent = new_share(self.pool)
        self.drv.create_share(None, parent)
        snap = {"id": "sn1", "snapshot_id": "m-sn1", "share_instance_id": parent["id"],
                "share_instance": {"host": parent["host"]}}
        self.drv.create_snapshot(None, snap)
        child = new_share(self.pool)
        self.drv.create_share_from_snapshot(None, child, snap)
        self.assertEqual(self.drv._snapshot_name(snap),
                         self.drv.zfs.get_one(self.drv._dataset(child), "origin"))
        # manila deletes the snapshot and the parent first: the clone must survive
        self.drv.delete_snapshot(None, snap)
        self.drv.delete_share(None, parent)
        self.assertTrue(self.drv.zfs.exists(self.drv._dataset(child)))
        self.drv.delete_share(None, child)
        self.assertEqual([self.pool + "/manila"], self.drv.zfs.list(
            self.pool + "/manila", types=("filesystem", "snapshot")))


    def test_fifty_concurrent_creates_and_deletes_leave_nothing(self):
        # on kernel OpenZFS: zfs-fuse itself deadlocks under concurrent creates while
        # exportfs stats its FUSE mounts (seen here), which is no test of this driver
        root = self.pool + "/manila"
        shares = [new_share(self.pool) for _ in range(50)]

        def lifecycle(share):
            self.drv.create_share(None, share)
            self.drv.update_access(None, share, [rule("10.1.0.0/16"), rule("fd00::9", "ro")],
                                   [], [], [])
            self.drv.delete_share(None, share)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(lifecycle, s) for s in shares]:
                future.result()
        self.assertEqual([root], self.drv.zfs.list(root, types=("filesystem", "snapshot")))
        leftovers = self.guest.run("ls /etc/exports.d; exportfs -v").out
        self.assertNotIn(root, leftovers)
        self.assertNotIn("zfs-manila", leftovers)


class TestReplicationOnZfsFuse(DriverOnZfs):
    """Readable replication between two zfs-fuse pools (two manila pools of a backend)."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(300, gentle=True))
        self.useFixture(privsep_fixture.PrivsepInProcess())
        self.a = self.useFixture(zfsfuse.FusePool(size=2 * GiB, prefix="ra"))
        self.b = self.useFixture(zfsfuse.FusePool(size=2 * GiB, prefix="rb"))
        self.drv = self.make_driver(
            zfs_dataset_roots=[self.a.name + "/m", self.b.name + "/m"],
            zfs_share_export_ip="127.0.0.1", replication_domain="hci")

    def mountpoint(self, share):
        return self.drv.zfs.get_one(self.drv._dataset(share), "mountpoint")

    def writable(self, share):
        """Whether the dataset takes writes (zfs-fuse shows the readonly property as
        "off temporary" whatever it is set to, but enforces it)."""
        try:
            self.write(share, ".probe", "x")
        except OSError as e:
            self.assertEqual(errno.EROFS, e.errno)
            return False
        os.unlink(os.path.join(self.mountpoint(share), ".probe"))
        return True

    def write(self, share, name, data):
        with open(os.path.join(self.mountpoint(share), name), "w") as f:
            f.write(data)

    def read(self, share, name):
        with open(os.path.join(self.mountpoint(share), name)) as f:
            return f.read()

    def test_replicate_snapshot_promote_and_delete(self):
        active = dict(new_share(self.a.name), replica_state="active")
        replica = dict(new_share(self.b.name), replica_state="out_of_sync")
        self.drv.create_share(None, active)
        self.write(active, "one", "1")
        rules = [rule("10.0.0.0/8")]
        self.drv.update_access(None, active, rules, [], [], [])
        update = self.drv.create_replica(None, [active, replica], replica, rules, [])
        self.assertEqual("in_sync", update["replica_state"])
        self.assertEqual("1", self.read(replica, "one"))
        self.assertFalse(self.writable(replica))
        # the replica is exported read-only to the share's clients
        self.assertEqual({"10.0.0.0/8": "ro"}, {
            n: c.level for n, c in self.drv.nfs.exported(self.drv._dataset(replica)).items()})

        # new data and a manila snapshot travel with the next sync
        self.write(active, "two", "2")
        snaps = [{"id": "si-a", "snapshot_id": "snap1", "share_instance_id": active["id"],
                  "status": "creating"},
                 {"id": "si-b", "snapshot_id": "snap1", "share_instance_id": replica["id"],
                  "status": "creating"}]
        updates = self.drv.create_replicated_snapshot(None, [active, replica], snaps)
        self.assertEqual({"si-a": "available", "si-b": "creating"},
                         {u["id"]: u["status"] for u in updates})
        self.assertIsNone(self.drv.update_replicated_snapshot(
            None, [active, replica], replica, snaps, snaps[1]))
        self.assertEqual("in_sync", self.drv.update_replica_state(
            None, [active, replica], replica, rules, snaps))
        self.assertEqual("2", self.read(replica, "two"))
        self.assertEqual("available", self.drv.update_replicated_snapshot(
            None, [active, replica], replica, snaps, snaps[1])["status"])
        # only the latest sync snapshot stays on either side
        for share in (active, replica):
            sync = [s for s in self.drv.zfs.snapshots(self.drv._dataset(share))
                    if "@replica-" in s]
            self.assertEqual(1, len(sync), sync)

        # promote: the replica becomes the writable active one, the old active follows
        self.write(active, "three", "3")
        updates = {u["id"]: u for u in self.drv.promote_replica(
            None, [active, replica], replica, rules)}
        self.assertEqual("active", updates[replica["id"]]["replica_state"])
        self.assertEqual("3", self.read(replica, "three"))
        self.assertTrue(self.writable(replica))
        self.assertFalse(self.writable(active))
        active["replica_state"], replica["replica_state"] = "in_sync", "active"
        self.write(replica, "four", "4")
        self.assertEqual("in_sync", self.drv.update_replica_state(
            None, [active, replica], active, rules, []))
        self.assertEqual("4", self.read(active, "four"))

        # delete the snapshot everywhere, then the replica, then the share
        deleted = self.drv.delete_replicated_snapshot(None, [active, replica], snaps)
        self.assertEqual({"deleted"}, {u["status"] for u in deleted})
        self.drv.delete_replica(None, [active, replica], [], active)
        self.drv.delete_share(None, replica)
        for pool in (self.a, self.b):
            self.assertEqual([pool.name + "/m"], zfsfuse.run(
                "zfs", "list", "-H", "-o", "name", "-t", "all", "-r", pool.name + "/m").split())
