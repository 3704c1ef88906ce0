"""Real kernel OpenZFS in the test guest: what the storage drivers' tests stand on."""
import subprocess

import fixtures
import testtools

from tests.common import zfsguest

MiB = 1024 * 1024


class ZfsGuestTestCase(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        self.guest = zfsguest.shared_guest()
        self.pool = self.useFixture(zfsguest.ZfsPool(self.guest)).name

    def run_in_guest(self, script, **kw):
        return self.guest.run(script, **kw).out.strip()

    def write_pattern(self, device, mib=4):
        """Write random data to a device; return its md5."""
        return self.run_in_guest(
            "head -c %dM /dev/urandom > /tmp/pattern && "
            "dd if=/tmp/pattern of=%s bs=1M oflag=direct status=none && sync && "
            "md5sum < /tmp/pattern | cut -c1-32" % (mib, device))

    def md5(self, device, mib=4):
        return self.run_in_guest("head -c %dM %s | md5sum | cut -c1-32" % (mib, device))


class TestZvols(ZfsGuestTestCase):
    def test_zvol_snapshot_clone_keep_data(self):
        vol = "%s/vol1" % self.pool
        self.run_in_guest("zfs create -V 64M %s" % vol)
        self.guest.wait_for_path("/dev/zvol/" + vol)
        digest = self.write_pattern("/dev/zvol/" + vol)
        self.run_in_guest("zfs snapshot %s@s1 && zfs clone %s@s1 %s/clone1"
                          % (vol, vol, self.pool))
        self.guest.wait_for_path("/dev/zvol/%s/clone1" % self.pool)
        self.assertEqual(digest, self.md5("/dev/zvol/%s/clone1" % self.pool))
        # the origin changes, the clone keeps the snapshot's data
        self.write_pattern("/dev/zvol/" + vol)
        self.assertEqual(digest, self.md5("/dev/zvol/%s/clone1" % self.pool))
        self.assertEqual("%s@s1" % vol, self.run_in_guest(
            "zfs get -H -p -o value origin %s/clone1" % self.pool))

    def test_sparse_and_thick_zvols_and_resize(self):
        vol = "%s/sparse" % self.pool
        self.run_in_guest("zfs create -s -V 1G %s && zfs create -V 64M %s/thick"
                          % (vol, self.pool))
        self.guest.wait_for_path("/dev/zvol/" + vol)
        self.assertEqual("0", self.run_in_guest(
            "zfs get -H -p -o value refreservation %s" % vol))
        self.assertGreaterEqual(int(self.run_in_guest(
            "zfs get -H -p -o value refreservation %s/thick" % self.pool)), 64 * MiB)
        self.run_in_guest("zfs set volsize=2G %s && udevadm settle" % vol)
        self.assertEqual(str(2 * 1024 * MiB), self.run_in_guest(
            "blockdev --getsize64 /dev/zvol/%s" % vol))

    def test_zvol_link_needs_a_bounded_wait(self):
        # udev creates /dev/zvol/... after "zfs create -V" has returned: code must wait for
        # it, and the wait must end with an error when the device never comes.
        vol = "%s/later" % self.pool
        self.run_in_guest("zfs create -V 16M %s" % vol)
        self.guest.wait_for_path("/dev/zvol/" + vol, timeout=10)
        self.assertEqual("b", self.run_in_guest(
            "stat -L -c %%A /dev/zvol/%s | cut -c1" % vol))
        self.assertRaises(TimeoutError, self.guest.wait_for_path,
                          "/dev/zvol/%s/never" % self.pool, timeout=1)

    def test_pools_keep_snapdev_hidden(self):
        # snapdev=visible while receiving zvols can deadlock the guest kernel against udev
        self.assertEqual("hidden\tlocal", self.run_in_guest(
            "zfs get -H -o value,source snapdev %s" % self.pool))
        vol = "%s/v" % self.pool
        self.run_in_guest("zfs create -V 16M %s && zfs snapshot %s@s" % (vol, vol))
        self.guest.wait_for_path("/dev/zvol/" + vol)
        self.assertEqual("absent", self.run_in_guest(
            "udevadm settle; test -e /dev/zvol/%s@s && echo present || echo absent" % vol))


class TestReplication(ZfsGuestTestCase):
    def test_send_receive_full_and_incremental_between_pools(self):
        other = self.useFixture(zfsguest.ZfsPool(self.guest)).name
        vol = "%s/src" % self.pool
        self.run_in_guest("zfs create -V 32M %s" % vol)
        self.guest.wait_for_path("/dev/zvol/" + vol)
        first = self.write_pattern("/dev/zvol/" + vol)
        self.run_in_guest("zfs snapshot %s@r1 && zfs send %s@r1 | zfs receive %s/copy"
                          % (vol, vol, other))
        self.guest.wait_for_path("/dev/zvol/%s/copy" % other)
        self.assertEqual(first, self.md5("/dev/zvol/%s/copy" % other))
        second = self.write_pattern("/dev/zvol/" + vol)
        self.run_in_guest("zfs snapshot %s@r2 && zfs send -i @r1 %s@r2 | zfs receive -F %s/copy"
                          % (vol, vol, other))
        self.run_in_guest("udevadm settle")
        self.assertEqual(second, self.md5("/dev/zvol/%s/copy" % other))
        self.assertEqual(["%s/copy@r1" % other, "%s/copy@r2" % other], self.run_in_guest(
            "zfs list -H -o name -t snapshot -s createtxg -r %s/copy" % other).split())
        self.assertEqual("hidden", self.run_in_guest(
            "zfs get -H -o value snapdev %s/copy" % other))


class TestExports(ZfsGuestTestCase):
    def test_nfs_export_of_a_dataset_mounts(self):
        fs = "%s/share1" % self.pool
        self.run_in_guest("zfs create -o refquota=64M %s && echo hello > /%s/greeting"
                          % (fs, fs))
        self.run_in_guest("/usr/local/sbin/start-nfsd")
        self.addCleanup(self.guest.run, "zfs set sharenfs=off %s; umount -f /mnt/nfs; "
                        "true" % fs, check=False)
        self.run_in_guest("zfs set sharenfs='rw=127.0.0.1,root_squash' %s" % fs)
        exports = self.run_in_guest("exportfs -v")
        self.assertIn("/" + fs, exports)
        self.assertIn("root_squash", exports)
        self.assertEqual("hello", self.run_in_guest(
            "mkdir -p /mnt/nfs && mount -t nfs -o vers=4.2 127.0.0.1:/%s /mnt/nfs && "
            "cat /mnt/nfs/greeting && umount /mnt/nfs" % fs))
        self.run_in_guest("zfs set sharenfs=off %s" % fs)
        self.assertNotIn("/" + fs, self.run_in_guest("exportfs -v"))

    def test_iscsi_lun_from_zvol_serves_its_data(self):
        vol = "%s/lun" % self.pool
        iqn = "iqn.2026-11.org.openstack.hci:%s" % self.pool
        self.run_in_guest("zfs create -V 32M %s" % vol)
        self.guest.wait_for_path("/dev/zvol/" + vol)
        digest = self.write_pattern("/dev/zvol/" + vol)
        self.addCleanup(self.guest.run, """
iscsiadm -m node -T %(iqn)s -p 127.0.0.1 --logout
python3 - <<'P'
import rtslib_fb as r
root = r.RTSRoot()
for t in root.targets:
    if t.wwn == "%(iqn)s": t.delete()
for so in root.storage_objects:
    if so.name == "%(name)s": so.delete()
P
true""" % {"iqn": iqn, "name": self.pool}, check=False)
        # LIO through rtslib (what cinder's lioadm helper drives through cinder-rtstool)
        self.run_in_guest("""
python3 - <<'P'
import rtslib_fb as r
so = r.BlockStorageObject("%(name)s", dev="/dev/zvol/%(vol)s")
tpg = r.TPG(r.Target(r.FabricModule("iscsi"), "%(iqn)s"), 1)
r.LUN(tpg, 0, so)
r.NetworkPortal(tpg, "0.0.0.0", 3260)
tpg.set_attribute("authentication", "0")
tpg.set_attribute("generate_node_acls", "1")
tpg.set_attribute("demo_mode_write_protect", "0")
tpg.enable = True
P""" % {"name": self.pool, "vol": vol, "iqn": iqn})
        # an initiator in the same guest logs in and reads the zvol's data through the LUN
        self.run_in_guest("/usr/local/sbin/start-iscsid && "
                          "iscsiadm -m discovery -t sendtargets -p 127.0.0.1 >/dev/null && "
                          "iscsiadm -m node -T %s -p 127.0.0.1 --login >/dev/null" % iqn)
        lun = "/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-%s-lun-0" % iqn
        self.guest.wait_for_path(lun, timeout=20)
        self.assertEqual(digest, self.md5(lun))


class TestAccess(ZfsGuestTestCase):
    def test_ssh_from_the_host_on_loopback(self):
        res = subprocess.run(self.guest.ssh_argv() + ["zfs", "list", "-H", "-o", "name",
                                                      self.pool],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(0, res.returncode, res.stderr)
        self.assertEqual(self.pool, res.stdout.strip())

    def test_pool_fixture_cleans_up(self):
        pool = zfsguest.ZfsPool(self.guest)
        with pool:
            self.assertIn(pool.name, self.run_in_guest("zpool list -H -o name"))
            disk = pool.disk
            self.assertNotIn(disk, self.guest._free_disks)
        self.assertNotIn(pool.name, self.run_in_guest("zpool list -H -o name"))
        self.assertIn(disk, self.guest._free_disks)
        self.assertEqual("", self.run_in_guest("zdb -l %s >/dev/null 2>&1 && echo label; "
                                               "true" % disk))
