"""ZFSVolumeDriver on kernel OpenZFS in the test guest, managed over SSH (a remote ZFS
host): every volume operation, checked with the data on the zvols inside the guest."""
import concurrent.futures
import os
import uuid

from cinder import context
from cinder import exception
from cinder import objects
from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume
from cinder.volume import configuration
from cinder.volume import driver as cinder_driver
import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from tests.common import zfsguest
from zfs_cinder import driver
from zfs_common import process as zfs_process

objects.register_all()
GiB = 1024 ** 3
MiB = 1024 ** 2


class TestDriverOnGuest(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(900, gentle=True))
        self.guest = zfsguest.shared_guest()
        self.pool = self.useFixture(zfsguest.ZfsPool(self.guest, prefix="cv")).name
        self.root = self.pool + "/cinder"
        self.ctx = context.get_admin_context()
        self.specs = {}
        self.useFixture(fixtures.MockPatchObject(
            driver.volume_types, "get_volume_type_extra_specs", lambda _id: self.specs))
        self.drv = self.make_driver()

    def make_driver(self, **overrides):
        group = "zfsguest"
        conf = self.useFixture(config_fixture.Config(cfg.CONF))
        conf.register_opts(cinder_driver.volume_opts, group=group)
        options = dict(
            zfs_volume_root=self.root, zfs_ssh_host="127.0.0.1",
            zfs_ssh_port=self.guest.ports["ssh"], zfs_ssh_private_key=self.guest.ssh_key,
            zfs_ssh_known_hosts_file="/dev/null", zfs_ssh_strict_host_key_checking="no",
            target_helper="fake", target_ip_address="127.0.0.1", zfs_busy_timeout=2,
            volume_backend_name="zfsguest")
        options.update(overrides)
        drv = driver.ZFSVolumeDriver(
            configuration=configuration.Configuration(cinder_driver.volume_opts,
                                                      config_group=group),
            host="cinderhost@zfsguest")
        conf.config(group=group, **options)
        drv.do_setup(self.ctx)
        drv.check_for_setup_error()
        return drv

    # -- helpers --------------------------------------------------------------------------
    def volume(self, size=1, **kw):
        kw.setdefault("host", "cinderhost@zfsguest#zfsguest")
        vol = fake_volume.fake_volume_obj(
            self.ctx, id=str(uuid.uuid4()), size=size,
            volume_type_id="7e1e2a53-5f2c-4a8e-9c44-1d2f3b4a5c6d", **kw)
        vol.volume_attachment = objects.VolumeAttachmentList()
        return vol

    def snapshot(self, volume):
        return fake_snapshot.fake_snapshot_obj(self.ctx, id=str(uuid.uuid4()), volume=volume,
                                               volume_id=volume.id,
                                               volume_size=volume.size)

    def dev(self, volume):
        return "/dev/zvol/%s/%s" % (self.root, volume.name)

    def write(self, volume, pattern, mib=8):
        self.guest.wait_for_path(self.dev(volume))
        self.guest.run("yes %s | head -c %d | dd of=%s bs=1M conv=fsync status=none"
                       % (pattern, mib * MiB, self.dev(volume)))

    def digest(self, volume, mib=8):
        self.guest.wait_for_path(self.dev(volume))
        return self.guest.run("head -c %d %s | md5sum" % (mib * MiB, self.dev(volume))).out

    def expected(self, pattern, mib=8):
        return self.guest.run("yes %s | head -c %d | md5sum" % (pattern, mib * MiB)).out

    def hold_open(self, volume):
        """A guest process holding the zvol open, as an attached instance does; its PID."""
        self.guest.wait_for_path(self.dev(volume))
        pid = self.guest.run("sleep 600 < %s > /dev/null 2>&1 & echo $!" % self.dev(volume)
                             ).out.strip()
        self.addCleanup(self.guest.run, "kill %s" % pid, check=False)
        return pid

    def left(self):
        return self.guest.run("zfs list -H -o name -t all -r %s" % self.root).out.split()

    def size(self, volume):
        return int(self.guest.run("zfs get -Hp -o value volsize %s/%s"
                                  % (self.root, volume.name)).out)

    # -- volumes, clones, snapshots -------------------------------------------------------
    def test_clone_and_from_snapshot_keep_data_after_their_origins_go(self):
        src = self.volume()
        self.drv.create_volume(src)
        self.write(src, "alpha")
        snap = self.snapshot(src)
        self.drv.create_snapshot(snap)
        self.write(src, "beta")
        from_snap = self.volume(size=2)
        self.drv.create_volume_from_snapshot(from_snap, snap)
        clone = self.volume()
        self.drv.create_cloned_volume(clone, src)
        self.assertEqual(2 * GiB, self.size(from_snap))
        self.assertEqual(self.expected("alpha"), self.digest(from_snap))
        self.assertEqual(self.expected("beta"), self.digest(clone))
        # clones are ZFS clones: nothing copied
        origin = self.guest.run("zfs get -H -o value origin %s/%s"
                                % (self.root, clone.name)).out.strip()
        self.assertEqual("%s/%s@clone-%s" % (self.root, src.name, clone.id), origin)
        # cinder deletes the snapshot and the source: the clones keep their data
        self.drv.delete_snapshot(snap)
        self.drv.delete_volume(src)
        self.assertEqual(self.expected("alpha"), self.digest(from_snap))
        self.assertEqual(self.expected("beta"), self.digest(clone))
        self.drv.delete_volume(clone)
        self.drv.delete_volume(from_snap)
        self.assertEqual([self.root], self.left())     # no hidden snapshot behind

    def test_sparse_and_thick(self):
        thin, thick = self.volume(size=1), self.volume(size=1)
        self.drv.create_volume(thin)
        self.specs = {"provisioning:type": "thick", "zfs:compression": "off"}
        self.drv.create_volume(thick)
        get = "zfs get -Hp -o value refreservation %s/%s"
        self.assertEqual("0", self.guest.run(get % (self.root, thin.name)).out.strip())
        self.assertGreaterEqual(int(self.guest.run(get % (self.root, thick.name)).out), GiB)
        self.drv.extend_volume(thin, 2)
        self.assertEqual(2 * GiB, self.size(thin))
        # the 2 GiB pool cannot reserve a second GiB for the thick one: refused, unchanged
        self.assertRaises(exception.VolumeBackendAPIException, self.drv.extend_volume,
                          thick, 2)
        self.assertEqual(GiB, self.size(thick))

    def test_extend_while_in_use(self):
        vol = self.volume()
        self.drv.create_volume(vol)
        self.hold_open(vol)
        self.drv.extend_volume(vol, 2)
        self.assertEqual(str(2 * GiB), self.guest.run(
            "blockdev --getsize64 %s" % self.dev(vol)).out.strip())

    def test_revert_to_snapshot(self):
        vol = self.volume()
        self.drv.create_volume(vol)
        self.write(vol, "first")
        snap = self.snapshot(vol)
        self.drv.create_snapshot(snap)
        self.write(vol, "second")
        vol.size = 2
        self.drv.extend_volume(vol, 2)
        self.drv.revert_to_snapshot(self.ctx, vol, snap)
        self.assertEqual(self.expected("first"), self.digest(vol))
        self.assertEqual(2 * GiB, self.size(vol))      # cinder's size stays
        # a clone taken after the snapshot blocks rollback: cinder's copy path is used
        clone = self.volume(size=2)
        self.drv.create_cloned_volume(clone, vol)
        self.assertRaises(NotImplementedError, self.drv.revert_to_snapshot, self.ctx, vol,
                          snap)
        self.drv.delete_volume(clone)
        self.drv.revert_to_snapshot(self.ctx, vol, snap)  # the helper snapshot went too

    def test_deleted_volumes_never_leak_data(self):
        old = self.volume()
        self.drv.create_volume(old)
        self.write(old, "secret", mib=64)
        self.drv.delete_volume(old)
        new = self.volume()
        self.drv.create_volume(new)
        self.guest.wait_for_path(self.dev(new))
        self.assertEqual(0, self.guest.run("cmp -n %d %s /dev/zero" % (GiB, self.dev(new)),
                                           check=False).rc)

    def test_image_copies_stream_over_ssh(self):
        """copy_volume_to_image / copy_image_to_volume with a remote ZFS host: dd over SSH."""
        vol = self.volume()
        self.drv.create_volume(vol)
        self.write(vol, "image")
        uploaded = {}

        def upload(context, image_service, image_meta, path, volume, **kw):
            with open(path, "rb") as f:
                uploaded["data"] = f.read(8 * MiB)
        self.useFixture(fixtures.MockPatchObject(driver.volume_utils, "upload_volume",
                                                 upload))
        self.drv.copy_volume_to_image(self.ctx, vol, None, {"id": "img"})
        self.assertEqual(b"image\n" * (8 * MiB // 6), uploaded["data"][:8 * MiB // 6 * 6])

        def fetch(context, image_service, image_id, dest, blocksize, **kw):
            with open(dest, "wb") as f:
                f.write(uploaded["data"])
        self.useFixture(fixtures.MockPatchObject(driver.image_utils, "fetch_to_raw", fetch))
        new = self.volume()
        self.drv.create_volume(new)
        self.drv.copy_image_to_volume(self.ctx, new, None, "img")
        self.assertEqual(self.expected("image"), self.digest(new))

    def test_upload_moves_only_the_allocated_data(self):
        """copy_volume_to_image from a remote ZFS host reads the zvol's send stream: the
        image file here is sparse, holds the data at its offsets and zeros elsewhere."""
        vol = self.volume(size=1)
        self.drv.create_volume(vol)
        self.write(vol, "head", mib=3)
        self.guest.run("yes tail | head -c %d | dd of=%s bs=1M seek=700 conv=fsync "
                       "status=none" % (MiB, self.dev(vol)))
        seen = {}

        def upload(context, image_service, image_meta, path, volume, **kw):
            st = os.stat(path)
            seen.update(size=st.st_size, allocated=st.st_blocks * 512, kw=kw)
            with open(path, "rb") as f:
                seen["head"] = f.read(3 * MiB)
                seen["gap"] = f.read(700 * MiB - 3 * MiB)
                seen["tail"] = f.read(MiB)
                seen["end"] = f.read()
        self.useFixture(fixtures.MockPatchObject(driver.volume_utils, "upload_volume",
                                                 upload))
        moved = []
        run_reading = zfs_process.run_reading

        def counting(argv, consume, timeout=None):
            def counted(read):
                def read_counted(n):
                    data = read(n)
                    moved.append(len(data))
                    return data
                return consume(read_counted)
            return run_reading(argv, counted, timeout)
        self.useFixture(fixtures.MockPatchObject(zfs_process, "run_reading", counting))
        self.drv.copy_volume_to_image(self.ctx, vol, None, {"id": "img"})
        # what crossed SSH: the 4 MiB of data and the stream's records, not 1 GiB
        self.assertGreaterEqual(sum(moved), 4 * MiB)
        self.assertLess(sum(moved), 5 * MiB)
        self.assertEqual(GiB, seen["size"])
        self.assertLess(seen["allocated"], 8 * MiB)   # 4 MiB of data, never the 1 GiB
        self.assertEqual((b"head\n" * MiB)[:3 * MiB], seen["head"])
        self.assertEqual((b"tail\n" * MiB)[:MiB], seen["tail"])
        self.assertFalse(seen["gap"].strip(b"\0") or seen["end"].strip(b"\0"))
        self.assertFalse(seen["kw"].get("run_as_root"))
        # the snapshot the stream was sent from is gone
        self.assertEqual("", self.guest.run("zfs list -H -o name -t snapshot -r %s"
                                            % self.root).out)

    # -- manage, retype, stats ------------------------------------------------------------
    def test_manage_and_unmanage(self):
        self.guest.run("zfs create -s -V 1536M %s/legacy && zfs snapshot %s/legacy@before"
                       % (self.root, self.root))
        found = self.drv.get_manageable_volumes([], None, 10, 0, ["size"], ["asc"])
        self.assertEqual([("%s/legacy" % self.root, 2, True)],
                         [(e["reference"]["source-name"], e["size"], e["safe_to_manage"])
                          for e in found])
        vol = self.volume(size=2)
        self.assertEqual(2, self.drv.manage_existing_get_size(vol, {"source-name": "legacy"}))
        self.drv.manage_existing(vol, {"source-name": "legacy"})
        self.assertEqual(2 * GiB, self.size(vol))     # grown to whole GiB
        snaps = self.drv.get_manageable_snapshots([], None, 10, 0, ["size"], ["asc"])
        self.assertEqual(["before"], [e["reference"]["source-name"] for e in snaps])
        snap = self.snapshot(vol)
        self.drv.manage_existing_snapshot(snap, {"source-name": "before"})
        self.assertIn("%s/%s@%s" % (self.root, vol.name, snap.name), self.left())
        self.drv.unmanage(vol)
        self.assertIn("%s/%s" % (self.root, vol.name), self.left())
        self.assertRaises(exception.ManageExistingInvalidReference,
                          self.drv.manage_existing, self.volume(),
                          {"source-name": "%s/nothing" % self.root})

    def test_retype_changes_properties_in_place(self):
        vol = self.volume()
        self.drv.create_volume(vol)
        new_type = {"extra_specs": {"zfs:compression": "gzip", "provisioning:type": "thick"}}
        self.assertEqual((True, None), self.drv.retype(self.ctx, vol, new_type, {},
                                                       {"host": vol.host}))
        props = self.guest.run("zfs get -Hp -o value compression,refreservation %s/%s"
                               % (self.root, vol.name)).out.split()
        self.assertEqual("gzip", props[0])
        self.assertGreaterEqual(int(props[1]), GiB)
        self.assertFalse(self.drv.retype(self.ctx, vol, {"extra_specs": {
            "zfs:volblocksize": "64K"}}, {}, {"host": vol.host}))

    def test_stats(self):
        vol = self.volume(size=5)
        self.drv.create_volume(vol)
        (pool,) = self.drv.get_volume_stats(refresh=True)["pools"]
        self.assertEqual("zfsguest", pool["pool_name"])
        self.assertGreater(pool["total_capacity_gb"], 1)
        self.assertLessEqual(pool["free_capacity_gb"], pool["total_capacity_gb"])

    def test_two_pools_on_two_zpools(self):
        """zfs_volume_roots: a pool per zpool with its own capacity; volumes from a
        snapshot or a volume of the other zpool are received there (no clone can cross
        zpools), with the data."""
        other = self.useFixture(zfsguest.ZfsPool(self.guest, prefix="cw")).name
        roots = {self.pool: self.root, other: other + "/vols"}
        self.drv = self.make_driver(zfs_volume_root=None,
                                    zfs_volume_roots=[self.root, other + "/vols"])
        self.guest.run("zfs set refquota=512M %s" % roots[other])
        stats = {p["pool_name"]: p for p in self.drv.get_volume_stats(True)["pools"]}
        self.assertEqual(sorted(roots), sorted(stats))
        self.assertEqual(0.5, stats[other]["free_capacity_gb"])
        self.assertGreater(stats[self.pool]["free_capacity_gb"], 1)

        def on(pool, **kw):
            return self.volume(host="cinderhost@zfsguest#%s" % pool, **kw)

        def dev(pool, volume):
            return "/dev/zvol/%s/%s" % (roots[pool], volume.name)

        src = on(self.pool)
        self.drv.create_volume(src)
        self.write(src, "pools")
        snap = self.snapshot(src)
        self.drv.create_snapshot(snap)
        from_snap, clone = on(other), on(other)
        self.drv.create_volume_from_snapshot(from_snap, snap)
        self.drv.create_cloned_volume(clone, src)
        for vol in (from_snap, clone):
            self.guest.wait_for_path(dev(other, vol))
            self.assertEqual(self.expected("pools"), self.guest.run(
                "head -c %d %s | md5sum" % (8 * MiB, dev(other, vol))).out)
            self.assertEqual(vol.id, self.guest.run(
                "zfs get -H -o value org.openstack:cinder_volume %s/%s"
                % (roots[other], vol.name)).out.strip())
            self.assertEqual(other, self.drv.get_pool(vol))
        # nothing of the copies stays behind on either zpool
        self.assertEqual("", self.guest.run("zfs list -H -o name -t snapshot -r %s"
                                            % roots[other]).out)
        for vol in (from_snap, clone):
            self.drv.delete_volume(vol)
        self.drv.delete_snapshot(snap)
        self.drv.delete_volume(src)
        self.assertEqual([self.root], self.left())
        self.assertEqual([roots[other]], self.guest.run(
            "zfs list -H -o name -t all -r %s" % roots[other]).out.split())

    # -- bad input ------------------------------------------------------------------------
    def test_missing_pool_and_full_pool(self):
        self.assertRaises(exception.VolumeBackendAPIException, self.make_driver,
                          zfs_volume_root="nosuchpool/cinder")
        self.specs = {"provisioning:type": "thick"}
        big = self.volume(size=50)
        self.assertRaises(exception.VolumeBackendAPIException, self.drv.create_volume, big)
        self.assertEqual([self.root], self.left())

    def test_busy_zvol_is_refused_and_kept(self):
        vol = self.volume()
        self.drv.create_volume(vol)
        pid = self.hold_open(vol)
        self.assertRaises(exception.VolumeIsBusy, self.drv.delete_volume, vol)
        self.assertIn("%s/%s" % (self.root, vol.name), self.left())
        self.guest.run("kill %s; while kill -0 %s 2>/dev/null; do sleep 0.1; done"
                       % (pid, pid))
        self.drv.delete_volume(vol)
        self.assertEqual([self.root], self.left())

    def test_hostile_names_and_specs_never_reach_zfs(self):
        self.specs = {"zfs:volblocksize": "16K; reboot"}
        self.assertRaises(exception.InvalidInput, self.drv.create_volume, self.volume())
        self.specs = {"zfs:mountpoint": "/"}
        self.assertRaises(exception.InvalidInput, self.drv.create_volume, self.volume())
        self.assertRaises(exception.ManageExistingInvalidReference,
                          self.drv.manage_existing_get_size, self.volume(),
                          {"source-name": "%s/x$(reboot)" % self.root})
        self.assertEqual([self.root], self.left())

    def test_50_concurrent_create_clone_delete_leave_nothing(self):
        def lifecycle(_):
            vol = self.volume()
            self.drv.create_volume(vol)
            clone = self.volume()
            self.drv.create_cloned_volume(clone, vol)
            self.drv.delete_volume(vol)
            self.drv.delete_volume(clone)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lifecycle, range(50)))
        self.assertEqual([self.root], self.left())
