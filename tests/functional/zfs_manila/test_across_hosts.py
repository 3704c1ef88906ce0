"""zfs_manila between two ZFS hosts: two kernel-OpenZFS test guests, each the ZFS host of
its own backend on its own manila-share host, both reached over SSH.

Each backend's driver reads its peer from the peer's section of the same configuration
(as every manila-share host of a replication domain carries them), streams ``zfs send``
from one guest into ``zfs receive`` on the other, promotes across the hosts while the
old primary is gone and resyncs it when it comes back, and makes a share on one host
from a snapshot on the other.
"""
import uuid

import fixtures
from manila.share import configuration
from manila.share import driver as share_driver
from manila.share import manager  # noqa: F401 - registers manila's own options
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from tests.common import privsep_fixture
from tests.common import zfsguest
from zfs_common import opts as zfs_opts
from zfs_manila import driver
from zfs_manila import nfs
from zfs_manila import opts


def rule(to, level="rw"):
    return {"access_type": "ip", "access_to": to, "access_level": level,
            "access_id": "r-" + to}


class TestAcrossTwoZfsHosts(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(1200, gentle=True))
        self.useFixture(privsep_fixture.PrivsepInProcess())
        self.conf = self.useFixture(config_fixture.Config(cfg.CONF))
        self.useFixture(fixtures.MockPatchObject(
            driver.share_types, "get_extra_specs_from_share", lambda s: {}))
        self.hosts = {}
        for backend, guest in (("zfsa", zfsguest.shared_guest()),
                               ("zfsb", zfsguest.second_guest())):
            pool = self.useFixture(zfsguest.ZfsPool(guest, prefix=backend)).name
            guest.run("/usr/local/sbin/start-nfsd")
            # after a failure: no export file or export of this pool stays on the guest
            self.addCleanup(guest.run, "rm -f %s/zfs-manila-%s_*; exportfs -ra"
                            % (nfs.EXPORTS_DIR, pool), check=False)
            self.conf.register_opts(share_driver.share_opts + opts.zfs_share_opts
                                    + zfs_opts.zfs_host_opts, group=backend)
            self.conf.config(
                group=backend, driver_handles_share_servers=False,
                replication_domain="hci", zfs_dataset_roots=[pool + "/manila"],
                zfs_share_export_ip="127.0.0.1", zfs_ssh_host="127.0.0.1",
                zfs_ssh_port=guest.ports["ssh"], zfs_ssh_private_key=guest.ssh_key,
                zfs_ssh_known_hosts_file="/dev/null", zfs_ssh_strict_host_key_checking="no")
            self.hosts[backend] = (guest, pool)
        # each driver as its own manila-share host runs it: only its backend enabled
        self.a = self.make_driver("zfsa")
        self.b = self.make_driver("zfsb")

    def make_driver(self, backend):
        drv = driver.ZFSShareDriver(configuration=configuration.Configuration(
            share_driver.share_opts, config_group=backend))
        drv.do_setup(None)
        drv.check_for_setup_error()
        self.addCleanup(drv.peers.close)
        return drv

    def share(self, backend, state=None):
        host = {"zfsa": "hosta", "zfsb": "hostb"}[backend]
        share = {"id": str(uuid.uuid4()), "size": 1, "share_proto": "NFS",
                 "share_type_id": "t", "host": "%s@%s#%s" % (host, backend,
                                                            self.hosts[backend][1])}
        if state:
            share["replica_state"] = state
        return share

    def on(self, backend, script, check=True):
        return self.hosts[backend][0].run(script, check=check)

    def path(self, backend, share):
        return "/%s/manila/share-%s" % (self.hosts[backend][1], share["id"])

    def read(self, backend, share, name):
        return self.on(backend, "cat %s/%s" % (self.path(backend, share), name)).out.strip()

    def writable(self, backend, share):
        return self.on(backend, "touch %s/.probe && rm %s/.probe"
                       % ((self.path(backend, share),) * 2), check=False).rc == 0

    def datasets(self, backend):
        return self.on(backend, "zfs list -H -o name -t all -r %s/manila"
                       % self.hosts[backend][1]).out.split()

    def test_replicate_promote_while_primary_gone_and_resync(self):
        active, replica = self.share("zfsa", "active"), self.share("zfsb", "out_of_sync")
        rules = [rule("10.0.0.0/8")]
        self.a.create_share(None, active)
        self.on("zfsa", "echo 1 > %s/one" % self.path("zfsa", active))
        # host B's driver pulls host A's share onto its own ZFS host
        update = self.b.create_replica(None, [active, replica], replica, rules, [])
        self.assertEqual("in_sync", update["replica_state"])
        self.assertEqual("1", self.read("zfsb", replica, "one"))
        self.assertFalse(self.writable("zfsb", replica))
        self.on("zfsa", "echo 2 > %s/two" % self.path("zfsa", active))
        self.assertEqual("in_sync", self.b.update_replica_state(
            None, [active, replica], replica, rules, []))
        self.assertEqual("2", self.read("zfsb", replica, "two"))

        # host A goes away with a write never replicated; B is promoted without it
        self.on("zfsa", "echo lost > %s/stale" % self.path("zfsa", active))
        pool_a = self.hosts["zfsa"][1]
        self.on("zfsa", "exportfs -ua; zpool export -f %s" % pool_a)
        self.addCleanup(self.on, "zfsa", "zpool import %s 2>/dev/null" % pool_a, check=False)
        updates = {u["id"]: u for u in self.b.promote_replica(
            None, [active, replica], replica, rules)}
        self.assertEqual("active", updates[replica["id"]]["replica_state"])
        self.assertTrue(self.writable("zfsb", replica))
        active["replica_state"], replica["replica_state"] = "in_sync", "active"
        self.on("zfsb", "echo 3 > %s/three" % self.path("zfsb", replica))

        # A comes back: its driver resyncs it from B, the lost write gives way
        self.on("zfsa", "zpool import %s" % pool_a)
        self.assertEqual("in_sync", self.a.update_replica_state(
            None, [active, replica], active, rules, []))
        self.assertEqual(("1", "2", "3"), tuple(self.read("zfsa", active, n)
                                                for n in ("one", "two", "three")))
        self.assertNotEqual(0, self.on("zfsa", "test -e %s/stale"
                                       % self.path("zfsa", active), check=False).rc)
        self.assertFalse(self.writable("zfsa", active))

        # A's replica deleted by its own host, B's share by B's: nothing left on either,
        # A's sync snapshots on B pruned across the hosts
        self.a.delete_replica(None, [active, replica], [], active)
        self.assertEqual([], [s for s in self.datasets("zfsb") if "@" in s])
        self.b.delete_share(None, replica)
        for backend in ("zfsa", "zfsb"):
            self.assertEqual(["%s/manila" % self.hosts[backend][1]], self.datasets(backend))

    def test_share_from_a_snapshot_on_the_other_host(self):
        parent = self.share("zfsa")
        self.a.create_share(None, parent)
        self.on("zfsa", "echo data > %s/f" % self.path("zfsa", parent))
        snap = {"id": "si", "snapshot_id": uuid.uuid4().hex[:8],
                "share_instance_id": parent["id"], "share_instance": {"host": parent["host"]}}
        self.a.create_snapshot(None, snap)
        child = self.share("zfsb")
        self.b.create_share_from_snapshot(None, child, snap)
        self.assertEqual("data", self.read("zfsb", child, "f"))
        self.assertTrue(self.writable("zfsb", child))
        # no snapshot carried along on B, and nothing of B's on A
        self.assertEqual(["%s/manila" % self.hosts["zfsb"][1],
                          "%s/manila/share-%s" % (self.hosts["zfsb"][1], child["id"])],
                         self.datasets("zfsb"))
        self.b.delete_share(None, child)
        self.a.delete_snapshot(None, snap)
        self.a.delete_share(None, parent)
        for backend in ("zfsa", "zfsb"):
            self.assertEqual(["%s/manila" % self.hosts[backend][1]], self.datasets(backend))
