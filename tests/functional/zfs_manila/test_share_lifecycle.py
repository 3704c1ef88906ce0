"""zfs_manila through the real manila services (API -> scheduler -> share service).

manila's own integrated framework runs them in-process (fake messaging, sqlite, noauth);
the share service loads ``zfs_manila.driver.ZFSShareDriver`` from its config line and
manages a real zfs-fuse pool on this host; exports go through the host's real exportfs.
"""
import os
import subprocess
import sys
import time

from manila.share import driver as share_driver
from manila.share import manager as share_manager
from manila.tests.integrated import integrated_helpers
from manila.tests.integrated.api import client
from oslo_config import cfg

from tests.common import privsep_fixture
from tests.common import zfsfuse
from zfs_common import opts as zfs_opts
from zfs_manila import opts as manila_opts

CONF = cfg.CONF
BACKEND = "zfs1"
GiB = 1024 ** 3
API_VERSION = "2.65"


def remove_exports(pool):
    """After a failure: no export of this test's pool stays on the host."""
    with open("/var/lib/nfs/etab") as f:
        for line in f:
            path, rest = line.split("\t", 1)
            if path.startswith(pool.mountpoint):
                client = rest.split("(")[0]
                client = "[%s]" % client if ":" in client else client
                subprocess.run(["exportfs", "-u", "%s:%s" % (client, path)], check=False)
    for name in os.listdir("/etc/exports.d"):
        if pool.name in name:
            os.unlink(os.path.join("/etc/exports.d", name))


class TestShareLifecycle(integrated_helpers._IntegratedTestBase):

    def setUp(self):
        self.pool = self.useFixture(zfsfuse.FusePool(size=4 * GiB, prefix="mp"))
        self.addCleanup(remove_exports, self.pool)
        self.useFixture(privsep_fixture.PrivsepInProcess())
        super().setUp()
        self.api.project_id = "openstack"
        self.headers = {"X-OpenStack-Manila-API-Version": API_VERSION}
        self.wait_for_backend()

    def wait_for_backend(self):
        # The share service reports its pools to the scheduler on a periodic task. Wait
        # for the scheduler to hold them before any API call asks for pools: a pool list
        # asked for earlier stays empty in the scheduler's host map.
        states = self.scheduler.manager.driver.host_manager.service_states
        deadline = time.monotonic() + 60
        while "hcihost@" + BACKEND not in states:
            self.assertLess(time.monotonic(), deadline, "the backend never reported pools")
            time.sleep(0.2)

    def start_service(self, name, host=None, **kwargs):
        if name == "share":    # one share service for the backend, as manila-share runs it
            host, kwargs["service_name"] = "hcihost@" + BACKEND, BACKEND
        return super().start_service(name, host=host, **kwargs)

    def _get_flags(self):
        f = super()._get_flags()
        CONF.register_opts(share_manager.share_manager_opts + share_driver.share_opts
                           + manila_opts.zfs_share_opts
                           + zfs_opts.zfs_host_opts, group=BACKEND)
        root = self.pool.name + "/manila"
        for key, value in {
                "share_driver": "zfs_manila.driver.ZFSShareDriver",
                "share_backend_name": "ZFS_FUSE",
                "driver_handles_share_servers": False,
                "zfs_dataset_roots": [root],
                "zfs_share_export_ip": "127.0.0.1",
                "zfs_nfs_helper": "exportfs"}.items():
            CONF.set_override(key, value, group=BACKEND)
        f["enabled_share_backends"] = [BACKEND]
        f["enabled_share_protocols"] = ["NFS"]
        f["api_paste_config"] = os.path.join(sys.prefix, "etc", "manila", "api-paste.ini")
        f["periodic_interval"] = 1
        f["periodic_fuzzy_delay"] = 0
        return f

    # -- API helpers ----------------------------------------------------------------------
    def get(self, uri):
        return self.api.api_get(uri, headers=dict(self.headers))

    def post(self, uri, body):
        try:
            return self.api.api_post(uri, body, headers=dict(self.headers))
        except client.OpenStackApiException as e:
            self.fail("POST %s %s: %s %s" % (uri, body, e.response.status_code,
                                             e.response.text))

    def delete(self, uri):
        return self.api.api_delete(uri, headers=dict(self.headers))

    def wait_for(self, uri, key, status, timeout=60, field="status"):
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(uri)[key]
            if obj[field] == status:
                return obj
            self.assertNotIn(obj[field], ("error", "extending_error", "shrinking_error",
                                          "reverting_error"), obj)
            self.assertLess(time.monotonic(), deadline, "%s stuck in %s" % (uri, obj))
            time.sleep(0.1)

    def wait_gone(self, uri, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.get(uri)
            except Exception as e:
                if "404" in str(getattr(e, "response", None)) or "Not" in type(e).__name__:
                    return
                raise
            self.assertLess(time.monotonic(), deadline, "%s not deleted" % uri)
            time.sleep(0.1)

    def wait_rules(self, share_id, expected, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            rules = self.get("/share-access-rules?share_id=%s" % share_id)["access_list"]
            states = {r["access_to"]: r["state"] for r in rules}
            if states == expected:
                return rules
            self.assertLess(time.monotonic(), deadline, "rules %s" % states)
            time.sleep(0.1)

    # -- ZFS side -------------------------------------------------------------------------
    def zfs_get(self, name, prop):
        out = zfsfuse.run("zfs", "get", "-H", "-p", "-o", "value", prop, name)
        return out.strip()

    def datasets(self):
        return zfsfuse.run("zfs", "list", "-H", "-o", "name", "-t", "all", "-r",
                           self.pool.name + "/manila").split()

    def etab(self, path):
        with open("/var/lib/nfs/etab") as f:
            return sorted(line.split("\t")[1].split("(")[0] + " " +
                          ("rw" if "(rw," in line else "ro")
                          for line in f if line.split("\t")[0] == path)

    # -- the lifecycle --------------------------------------------------------------------
    def test_share_lifecycle(self):
        stype = self.post("/types", {"share_type": {
            "name": "zfs", "extra_specs": {
                "driver_handles_share_servers": False, "snapshot_support": True,
                "create_share_from_snapshot_support": True,
                "revert_to_snapshot_support": True, "zfs:recordsize": "65536"}}})
        share = self.post("/shares", {"share": {
            "share_proto": "NFS", "size": 1, "name": "s1",
            "share_type": stype["share_type"]["id"]}})["share"]
        share = self.wait_for("/shares/%s" % share["id"], "share", "available")
        dataset = self.datasets()[1]
        self.assertTrue(dataset.startswith(self.pool.name + "/manila/share-"), dataset)
        self.assertEqual(str(GiB), self.zfs_get(dataset, "refquota"))
        self.assertEqual("65536", self.zfs_get(dataset, "recordsize"))
        mountpoint = self.zfs_get(dataset, "mountpoint")
        locations = self.get("/shares/%s/export_locations" % share["id"])["export_locations"]
        self.assertEqual(["127.0.0.1:" + mountpoint], [loc["path"] for loc in locations])

        # access: IPv4 network rw and IPv6 host ro, both in the kernel export table
        for to, level in (("10.0.0.0/24", "rw"), ("fd00::5", "ro")):
            self.post("/shares/%s/action" % share["id"], {"allow_access": {
                "access_type": "ip", "access_to": to, "access_level": level}})
        self.wait_rules(share["id"], {"10.0.0.0/24": "active", "fd00::5": "active"})
        self.assertEqual(["10.0.0.0/24 rw", "fd00::5 ro"], self.etab(mountpoint))
        # a user rule is refused, the others stay
        self.post("/shares/%s/action" % share["id"], {"allow_access": {
            "access_type": "user", "access_to": "alice", "access_level": "rw"}})
        self.wait_rules(share["id"], {"10.0.0.0/24": "active", "fd00::5": "active",
                                      "alice": "error"})
        rules = self.get("/share-access-rules?share_id=%s" % share["id"])["access_list"]
        alice = [r for r in rules if r["access_to"] == "alice"][0]
        self.post("/shares/%s/action" % share["id"], {"deny_access": {"access_id": alice["id"]}})
        self.wait_rules(share["id"], {"10.0.0.0/24": "active", "fd00::5": "active"})

        # snapshot, then revert to it
        with open(os.path.join(mountpoint, "before"), "w") as f:
            f.write("kept")
        snap = self.post("/snapshots", {"snapshot": {"share_id": share["id"],
                                                     "name": "snap1"}})["snapshot"]
        self.wait_for("/snapshots/%s" % snap["id"], "snapshot", "available")
        self.assertEqual(1, len([d for d in self.datasets() if "@" in d]))
        with open(os.path.join(mountpoint, "after"), "w") as f:
            f.write("gone after revert")
        self.post("/shares/%s/action" % share["id"], {"revert": {"snapshot_id": snap["id"]}})
        self.wait_for("/shares/%s" % share["id"], "share", "available")
        self.assertEqual(["before"], sorted(os.listdir(mountpoint)))

        # a share from the snapshot is a ZFS clone of it
        child = self.post("/shares", {"share": {
            "share_proto": "NFS", "size": 1, "snapshot_id": snap["id"],
            "share_type": stype["share_type"]["id"]}})["share"]
        self.wait_for("/shares/%s" % child["id"], "share", "available")
        instance = self.get("/shares/%s/instances" % child["id"])["share_instances"][0]
        child_ds = "%s/manila/share-%s" % (self.pool.name, instance["id"])
        self.assertIn(child_ds, self.datasets())
        self.assertTrue(self.zfs_get(child_ds, "origin").startswith(dataset + "@"))
        self.assertEqual(["before"], sorted(os.listdir(self.zfs_get(child_ds,
                                                                    "mountpoint"))))

        # extend and shrink
        self.post("/shares/%s/action" % share["id"], {"extend": {"new_size": 3}})
        self.wait_for("/shares/%s" % share["id"], "share", "available")
        self.assertEqual(str(3 * GiB), self.zfs_get(dataset, "refquota"))
        self.post("/shares/%s/action" % share["id"], {"shrink": {"new_size": 2}})
        self.wait_for("/shares/%s" % share["id"], "share", "available")
        self.assertEqual(str(2 * GiB), self.zfs_get(dataset, "refquota"))

        # deny one rule
        rules = self.get("/share-access-rules?share_id=%s" % share["id"])["access_list"]
        rule = [r for r in rules if r["access_to"] == "10.0.0.0/24"][0]
        self.post("/shares/%s/action" % share["id"], {"deny_access": {"access_id": rule["id"]}})
        self.wait_rules(share["id"], {"fd00::5": "active"})
        self.assertEqual(["fd00::5 ro"], self.etab(mountpoint))

        # delete everything: no dataset, snapshot or export is left
        self.delete("/shares/%s" % child["id"])
        self.wait_gone("/shares/%s" % child["id"])
        self.delete("/snapshots/%s" % snap["id"])
        self.wait_gone("/snapshots/%s" % snap["id"])
        self.delete("/shares/%s" % share["id"])
        self.wait_gone("/shares/%s" % share["id"])
        self.assertEqual([self.pool.name + "/manila"], self.datasets())
        self.assertEqual([], self.etab(mountpoint))
        self.assertEqual([], [f for f in os.listdir("/etc/exports.d")
                              if self.pool.name in f])


