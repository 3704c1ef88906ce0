"""The volume lifecycle through the real cinder services (cinder's own functional
framework: API -> scheduler -> volume service with ZFSVolumeDriver), on kernel OpenZFS in
the test guest over SSH, each step checked on the ZFS side; the iSCSI export made by
cinder's LIO helper is logged into and read from inside the guest."""
import os
import sys
import time

from cinder import service
from cinder.tests.functional import functional_helpers
from cinder.tests.functional.api import client
from oslo_config import cfg
from oslo_service import wsgi

from tests.common import zfsguest
from zfs_cinder import driver  # noqa: F401 - its options must exist before the overrides
from zfs_cinder import opts
from zfs_common import opts as zfs_opts

CONF = cfg.CONF
BACKEND = "backend_defaults"      # cinder's section for a backend without enabled_backends
CONF.register_opts(opts.zfs_volume_opts + zfs_opts.zfs_host_opts, group=BACKEND)
GiB = 1024 ** 3


class TestVolumeLifecycle(functional_helpers._FunctionalTestBase):
    _osapi_version = "3.40"          # revert to snapshot

    def setUp(self):
        self.guest = zfsguest.shared_guest()
        zfsguest.install_cinder_rtstool(self.guest)    # as on a remote ZFS host
        pool = zfsguest.ZfsPool(self.guest, prefix="cl")
        pool.setUp()
        self.pool = pool.name
        self.root = self.pool + "/cinder"
        # cinder's TestCase deletes instance attributes in its cleanups: keep locals only
        super().setUp()
        self.addCleanup(pool.cleanUp)

    def _start_api_service(self):
        # the paste file installed with cinder (upstream looks in its source tree)
        wsgi.register_opts(CONF)
        self.override_config("api_paste_config",
                             os.path.join(sys.prefix, "etc", "cinder", "api-paste.ini"))
        self.osapi = service.WSGIService("osapi_volume")
        self.osapi.start()
        self.auth_url = "http://%s:%s/v%s" % (self.osapi.host, self.osapi.port,
                                              self.osapi_version_major)

    def _get_flags(self):
        f = super()._get_flags()
        f["resource_query_filters_file"] = {
            "v": os.path.join(sys.prefix, "etc", "cinder", "resource_filters.json")}
        f["volume_driver"] = {"v": "zfs_cinder.driver.ZFSVolumeDriver", "g": BACKEND}
        # the API's calls wait for the volume service, whose exports run cinder-rtstool
        # in the TCG guest: a minute (oslo.messaging's default) is too short on a loaded
        # machine (a MessagingTimeout on an iSCSI export was seen here under load)
        f["rpc_response_timeout"] = {"v": 300}
        for name, value in {
                "zfs_volume_root": self.root, "zfs_ssh_host": "127.0.0.1",
                "zfs_ssh_port": self.guest.ports["ssh"],
                "zfs_ssh_private_key": self.guest.ssh_key,
                "zfs_ssh_known_hosts_file": "/dev/null",
                "zfs_ssh_strict_host_key_checking": "no",
                "zfs_local_attach_hosts": ["zfsguest"],
                "target_helper": "lioadm", "target_ip_address": "127.0.0.1",
                "volume_backend_name": "zfsguest"}.items():
            f[name] = {"v": value, "g": BACKEND}
        return f

    # upstream polls once a second; these operations take a fraction of that
    def _poll_resource_while(self, res_id, continue_states, res_type="VOLUME",
                             expected_end_status=None, max_retries=5,
                             status_field="status"):
        get = self.api.get_volume if res_type == "VOLUME" else self.api.get_snapshot
        deadline = time.monotonic() + 120
        while True:
            try:
                found = get(res_id)
            except client.OpenStackApiException404:
                return None
            if found[status_field] not in continue_states or time.monotonic() > deadline:
                if expected_end_status:
                    self.assertEqual(expected_end_status, found[status_field], found)
                return found
            time.sleep(0.05)

    def zfs(self, script):
        return self.guest.run(script).out

    def zvols(self):
        return self.zfs("zfs list -H -o name -t all -r %s" % self.root).split()[1:]

    def make_volume(self, **body):
        body.setdefault("size", 1)
        vol = self.api.post_volume({"volume": body})
        return self._poll_volume_while(vol["id"], ["creating"], "available")

    def action(self, volume_id, body):
        return self.api.api_post("/volumes/%s/action" % volume_id, body)

    def delete_volume(self, volume_id):
        self.api.delete_volume(volume_id)
        self.assertIsNone(self._poll_volume_while(volume_id, ["deleting", "available"],
                                                  max_retries=0))

    def test_lifecycle(self):
        vol = self.make_volume()
        zvol = "%s/volume-%s" % (self.root, vol["id"])
        dev = "/dev/zvol/" + zvol
        self.assertEqual([zvol], self.zvols())
        self.guest.wait_for_path(dev)
        self.zfs("yes one | head -c 4M | dd of=%s bs=1M conv=fsync status=none" % dev)
        one = self.zfs("yes one | head -c 4M | md5sum")

        snap = self.api.post_snapshot({"snapshot": {"volume_id": vol["id"], "name": "s"}})
        self._poll_snapshot_while(snap["id"], ["creating"], "available")
        self.assertIn("%s@snapshot-%s" % (zvol, snap["id"]), self.zvols())
        self.zfs("yes two | head -c 4M | dd of=%s bs=1M conv=fsync status=none" % dev)

        from_snap = self.make_volume(snapshot_id=snap["id"], size=2)
        clone = self.make_volume(source_volid=vol["id"])
        for made in (from_snap, clone):
            origin = self.zfs("zfs get -H -o value origin %s/volume-%s"
                              % (self.root, made["id"])).strip()
            self.assertTrue(origin.startswith(zvol + "@"), origin)
        self.assertEqual(str(2 * GiB), self.zfs("zfs get -Hp -o value volsize %s/volume-%s"
                                                % (self.root, from_snap["id"])).strip())

        self.action(vol["id"], {"os-extend": {"new_size": 2}})
        self._poll_volume_while(vol["id"], ["extending"], "available")
        self.assertEqual(str(2 * GiB), self.zfs("zfs get -Hp -o value volsize %s" % zvol
                                                ).strip())

        # revert needs the volume at the snapshot's size: revert the clone-free from_snap
        # instead and check the original data with it
        snap2 = self.api.post_snapshot({"snapshot": {"volume_id": from_snap["id"]}})
        self._poll_snapshot_while(snap2["id"], ["creating"], "available")
        fdev = "/dev/zvol/%s/volume-%s" % (self.root, from_snap["id"])
        self.guest.wait_for_path(fdev)
        self.zfs("yes three | head -c 4M | dd of=%s bs=1M conv=fsync status=none" % fdev)
        self.action(from_snap["id"], {"revert": {"snapshot_id": snap2["id"]}})
        self._poll_volume_while(from_snap["id"], ["reverting"], "available")
        self.assertEqual(one, self.zfs("head -c 4M %s | md5sum" % fdev))

        # same host: a local connection with the zvol device
        info = self.action(vol["id"], {"os-initialize_connection": {"connector": {
            "host": "zfsguest", "initiator": "iqn.x"}}})["connection_info"]
        self.assertEqual(("local", dev), (info["driver_volume_type"],
                                          info["data"]["device_path"]))

        # another host: an iSCSI target made by cinder's LIO helper in the guest, CHAP
        # protected, logged into from inside the guest
        self.guest.run("/usr/local/sbin/start-iscsid")
        initiator = self.zfs("sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi"
                             ).strip()
        info = self.action(clone["id"], {"os-initialize_connection": {"connector": {
            "host": "compute2", "initiator": initiator, "ip": "127.0.0.1"}}}
        )["connection_info"]
        self.assertEqual("iscsi", info["driver_volume_type"])
        data = info["data"]
        self.assertEqual("CHAP", data["auth_method"])
        self.addCleanup(self.guest.run, "iscsiadm -m node -T %s --logout" % data["target_iqn"],
                        check=False)
        lun = "/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-%s-lun-%s" % (data["target_iqn"],
                                                                       data["target_lun"])
        self.guest.run("""set -e
iscsiadm -m discovery -t sendtargets -p 127.0.0.1 >/dev/null
iscsiadm -m node -T {iqn} -p 127.0.0.1 -o update -n node.session.auth.authmethod -v CHAP
iscsiadm -m node -T {iqn} -p 127.0.0.1 -o update -n node.session.auth.username -v {user}
iscsiadm -m node -T {iqn} -p 127.0.0.1 -o update -n node.session.auth.password -v {pw}
iscsiadm -m node -T {iqn} -p 127.0.0.1 --login >/dev/null
udevadm settle -t 20""".format(iqn=data["target_iqn"], user=data["auth_username"],
                               pw=data["auth_password"]))
        self.guest.wait_for_path(lun, timeout=20)
        two = self.zfs("yes two | head -c 4M | md5sum")
        self.assertEqual(two, self.zfs("head -c 4M %s | md5sum" % lun))
        self.guest.run("iscsiadm -m node -T %s --logout >/dev/null" % data["target_iqn"])
        self.action(clone["id"], {"os-terminate_connection": {"connector": {
            "host": "compute2", "initiator": initiator}}})

        # delete everything: the ZFS side is empty again, snapshots included
        self.api.delete_snapshot(snap["id"])
        self._poll_snapshot_while(snap["id"], ["deleting", "available"])
        self.api.delete_snapshot(snap2["id"])
        self._poll_snapshot_while(snap2["id"], ["deleting", "available"])
        for v in (vol, clone, from_snap):
            self.delete_volume(v["id"])
        self.assertEqual([], self.zvols())
        self.assertNotIn(data["target_iqn"], self.zfs("/usr/local/bin/cinder-rtstool get-targets"))
