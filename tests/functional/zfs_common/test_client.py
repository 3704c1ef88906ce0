"""zfs_common.client against real ZFS: zfs-fuse on this host (local executor through
privsep) and kernel OpenZFS in the test guest (SSH executor)."""
from concurrent import futures
import os
import random
import shlex
import subprocess

import fixtures
import testtools

from tests.common import privsep_fixture
from tests.common import zfsfuse
from tests.common import zfsguest
from zfs_common import client as zfs_client
from zfs_common import exception
from zfs_common import executor

MiB = 1024 * 1024


class ClientTests:
    """Behaviour every ZFS host must show; subclasses provide client, pool, new_pool()."""

    def names(self, root=None, types=("filesystem", "volume", "snapshot")):
        return self.client.list(root or self.pool, types=types)

    def test_filesystem_with_properties(self):
        fs = self.pool + "/share-1"
        self.client.create_filesystem(fs, {"refquota": 64 * MiB, "compression": "gzip",
                                           "org.openstack:share_id": "abc-1"})
        self.assertEqual({"refquota": str(64 * MiB), "compression": "gzip",
                          "org.openstack:share_id": "abc-1"},
                         self.client.get(fs, ["refquota", "compression",
                                              "org.openstack:share_id"])[fs])
        self.client.set(fs, {"refquota": 128 * MiB})
        self.assertEqual(128 * MiB, self.client.get_int(fs, "refquota"))
        self.client.inherit(fs, "compression")
        self.assertEqual(self.client.get_one(self.pool, "compression"),
                         self.client.get_one(fs, "compression"))
        self.assertIn(self.client.zfs("get", "-H", "-o", "source", "compression", fs).strip(),
                      ("default", "inherited from %s" % self.pool))
        self.assertTrue(self.client.exists(fs))
        self.client.destroy(fs)
        self.assertFalse(self.client.exists(fs))
        self.client.destroy(fs, missing_ok=True)

    def test_snapshot_clone_promote_and_dependents(self):
        fs = self.pool + "/origin"
        self.client.create_filesystem(fs)
        self.client.snapshot(fs + "@s1")
        self.client.snapshot(fs + "@s2")
        self.assertEqual([fs + "@s1", fs + "@s2"], self.client.snapshots(fs))
        self.client.clone(fs + "@s1", self.pool + "/clone")
        self.assertEqual(fs + "@s1", self.client.get_one(self.pool + "/clone", "origin"))
        self.assertRaises(exception.HasDependents, self.client.destroy, fs)
        self.assertRaises(exception.HasDependents, self.client.destroy, fs + "@s1")
        self.client.promote(self.pool + "/clone")
        # after promote the clone owns s1 and the old origin depends on it
        self.assertEqual(self.pool + "/clone@s1", self.client.get_one(fs, "origin"))
        self.client.destroy(fs, recursive=True)
        self.assertEqual([self.pool + "/clone@s1"], self.client.snapshots(self.pool + "/clone"))

    def test_deferred_destroy_of_a_cloned_snapshot(self):
        fs = self.pool + "/d"
        self.client.create_filesystem(fs)
        self.client.snapshot(fs + "@s")
        self.client.clone(fs + "@s", self.pool + "/dc")
        self.client.destroy(fs + "@s", defer=True)
        self.assertTrue(self.client.exists(fs + "@s"))      # held by its clone
        self.client.destroy(self.pool + "/dc")
        self.assertFalse(self.client.exists(fs + "@s"))     # gone with the last clone

    def test_clones_of_a_snapshot(self):
        fs = self.pool + "/o"
        self.client.create_filesystem(fs)
        self.client.snapshot(fs + "@s")
        self.assertEqual([], self.client.clones(fs + "@s"))
        self.client.clone(fs + "@s", self.pool + "/c2")
        self.client.clone(fs + "@s", self.pool + "/c1")
        self.assertEqual([self.pool + "/c1", self.pool + "/c2"], self.client.clones(fs + "@s"))

    def test_retire_keeps_clones_and_leaks_no_snapshot(self):
        fs = self.pool + "/parent"
        self.client.create_filesystem(fs)
        for snap in ("@a", "@b", "@c"):
            self.client.snapshot(fs + snap)
        self.client.clone(fs + "@a", self.pool + "/from-a")
        self.client.clone(fs + "@b", self.pool + "/from-b")
        self.client.retire(fs)
        # @c went at once; @a and @b moved to the promoted clone, marked for deferred
        # destroy: @b (origin of nothing left) went with the parent, @a stays for from-a
        self.assertEqual(sorted([self.pool, self.pool + "/from-a", self.pool + "/from-b",
                                 self.pool + "/from-b@a"]), self.names())
        self.client.destroy(self.pool + "/from-a")
        self.assertNotIn(self.pool + "/from-b@a", self.names())
        self.client.retire(self.pool + "/from-b")
        self.assertEqual([self.pool], self.names())

    def test_parents_and_clones_retired_at_once(self):
        """50 parents each retired while one of its clones is: every retire succeeds,
        the clones kept alive (every fifth parent has one) keep their data, and nothing
        is left behind: no dataset, and no snapshot of a parent hidden in a survivor."""
        self.useFixture(fixtures.Timeout(900, gentle=True))     # 500 commands or so
        pairs, kept = 50, range(0, 50, 5)

        def family(i):
            parent = "%s/p%d" % (self.pool, i)
            self.client.create_filesystem(parent)
            self.write(parent, "parent-%d" % i)
            self.client.snapshot(parent + "@s")
            self.client.clone(parent + "@s", "%s/c%d" % (self.pool, i))
            if i in kept:
                self.client.clone(parent + "@s", "%s/k%d" % (self.pool, i))

        with futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(family, range(pairs)))
        for i in kept:
            self.write("%s/k%d" % (self.pool, i), "kept-%d" % i, name="own")
        doomed = ["%s/%s%d" % (self.pool, kind, i) for i in range(pairs) for kind in "pc"]
        random.shuffle(doomed)
        with futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(self.client.retire, doomed))
        survivors = ["%s/k%d" % (self.pool, i) for i in kept]
        self.assertEqual(sorted([self.pool] + survivors), self.names())
        for i in kept:
            survivor = "%s/k%d" % (self.pool, i)
            self.assertEqual("parent-%d" % i, self.read(survivor))
            self.assertEqual("kept-%d" % i, self.read(survivor, name="own"))

    def test_rollback_and_rename(self):
        fs = self.pool + "/r"
        self.client.create_filesystem(fs, {"org.openstack:v": "1"})
        self.client.snapshot(fs + "@one")
        self.client.snapshot(fs + "@two")
        self.assertRaises(exception.ZFSError, self.client.rollback, fs + "@one")
        self.client.rollback(fs + "@one", destroy_newer=True)
        self.assertEqual([fs + "@one"], self.client.snapshots(fs))
        self.client.unmount(fs)
        self.client.rename(fs, self.pool + "/renamed")
        self.client.mount(self.pool + "/renamed")
        self.assertEqual([self.pool, self.pool + "/renamed"], self.client.list(self.pool))

    def test_errors_are_typed(self):
        self.assertRaises(exception.DatasetNotFound, self.client.get,
                          self.pool + "/missing", ["used"])
        self.assertRaises(exception.DatasetNotFound, self.client.snapshot,
                          self.pool + "/missing@s")
        self.client.create_filesystem(self.pool + "/x")
        self.assertRaises(exception.DatasetExists, self.client.create_filesystem,
                          self.pool + "/x")
        self.client.create_filesystem(self.pool + "/x/child")
        self.assertRaises(exception.HasDependents, self.client.destroy, self.pool + "/x")

    def test_hostile_names_and_values_never_reach_zfs(self):
        before = self.names()
        for name in ("%s/a;reboot" % self.pool, "%s/$(id)" % self.pool, "-R",
                     "%s/-f" % self.pool, "%s/a b" % self.pool, "%s/../x" % self.pool,
                     "%s/a\nb" % self.pool, self.pool + "/" + "x" * 300):
            self.assertRaises(exception.InvalidName, self.client.create_filesystem, name)
        self.assertRaises(exception.InvalidValue, self.client.create_filesystem,
                          self.pool + "/ok", {"compression": "gzip\nmountpoint=/etc"})
        self.assertRaises(exception.InvalidValue, self.client.create_filesystem,
                          self.pool + "/ok", {"quota;rm": "1"})
        self.assertRaises(exception.InvalidValue, self.client.set, self.pool,
                          {"mountpoint": "-o"})
        self.assertEqual(before, self.names())

    def test_space_and_quota_errors(self):
        used, avail = self.client.space(self.pool)
        self.assertGreater(avail, 100 * MiB)
        fs = self.pool + "/q"
        self.client.create_filesystem(fs, {"refquota": 64 * MiB})
        self.assertRaises(exception.NoSpace, self.client.create_filesystem,
                          self.pool + "/big", {"reservation": avail * 4})

    def test_send_receive_between_pools(self):
        other = self.new_pool()
        fs = self.pool + "/src"
        self.client.create_filesystem(fs, {"org.openstack:share_id": "s-1"})
        self.client.snapshot(fs + "@r1")
        self.client.send(fs + "@r1", self.client, other + "/copy")
        self.client.snapshot(fs + "@r2")
        self.client.send(fs + "@r2", self.client, other + "/copy", base=fs + "@r1",
                         force=True)
        self.assertEqual([other + "/copy@r1", other + "/copy@r2"],
                         self.client.snapshots(other + "/copy"))
        self.assertRaises(exception.ZFSError, self.client.send, fs + "@r1", self.client,
                          other + "/copy")


class TestClientOnZfsFuse(ClientTests, testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(120, gentle=True))
        self.useFixture(privsep_fixture.PrivsepInProcess())
        self.client = zfs_client.ZFSClient(executor.LocalExecutor())
        self.pool = self.new_pool()

    def new_pool(self):
        return self.useFixture(zfsfuse.FusePool(size=512 * MiB)).name

    def write(self, dataset, text, name="data"):
        path = os.path.join(self.client.get_one(dataset, "mountpoint"), name)
        with open(path, "w") as f:
            f.write(text)

    def read(self, dataset, name="data"):
        with open(os.path.join(self.client.get_one(dataset, "mountpoint"), name)) as f:
            return f.read()

    def test_space_and_quota_errors(self):
        # zfs-fuse accepts a reservation larger than the pool; check the refquota limit
        fs = self.pool + "/q"
        self.client.create_filesystem(fs, {"refquota": 64 * MiB})
        self.assertRaises(exception.NoSpace, self.client.create_filesystem,
                          self.pool + "/big", {"refreservation": 8 * 1024 * MiB})


class TestClientOnOpenZfsGuest(ClientTests, testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(300, gentle=True))
        self.guest = zfsguest.shared_guest()
        self.useFixture(privsep_fixture.PrivsepInProcess())
        self.client = zfs_client.ZFSClient(executor.SSHExecutor(
            "127.0.0.1", port=self.guest.ports["ssh"], private_key=self.guest.ssh_key,
            strict_host_key_checking="no", known_hosts="/dev/null"))
        self.pool = self.new_pool()

    def new_pool(self):
        return self.useFixture(zfsguest.ZfsPool(self.guest)).name

    def write(self, dataset, text, name="data"):
        path = os.path.join(self.client.get_one(dataset, "mountpoint"), name)
        self.guest.run("printf %%s %s > %s && sync" % (shlex.quote(text), shlex.quote(path)))

    def read(self, dataset, name="data"):
        path = os.path.join(self.client.get_one(dataset, "mountpoint"), name)
        return self.guest.run("cat %s" % shlex.quote(path)).out

    def test_zvols_sparse_thick_clone_and_device_links(self):
        vol = self.pool + "/volume-1"
        self.client.create_volume(vol, 64 * MiB, {"org.openstack:volume_id": "v1"})
        self.client.create_volume(self.pool + "/sparse", 1024 * MiB, sparse=True)
        path = self.client.wait_for_zvol(vol)
        self.assertEqual("/dev/zvol/" + vol, path)
        self.assertGreaterEqual(self.client.get_int(vol, "refreservation"), 64 * MiB)
        self.assertEqual(0, self.client.get_int(self.pool + "/sparse", "refreservation"))
        self.client.snapshot(vol + "@s")
        self.client.clone(vol + "@s", self.pool + "/volume-2")
        self.client.wait_for_zvol(self.pool + "/volume-2")
        self.client.set(vol, {"volsize": 128 * MiB})
        self.assertEqual(128 * MiB, self.client.get_int(vol, "volsize"))
        self.assertRaises(exception.ZFSError, self.client.wait_for_zvol,
                          self.pool + "/never", timeout=0.5)

    def test_zvol_send_to_another_pool(self):
        other = self.new_pool()
        vol = self.pool + "/v"
        self.client.create_volume(vol, 32 * MiB)
        self.client.snapshot(vol + "@a")
        self.client.send(vol + "@a", self.client, other + "/v")
        self.client.wait_for_zvol(other + "/v")
        self.assertEqual("hidden", self.client.get_one(other + "/v", "snapdev"))


class TestSSHMasterOnTheGuest(testtools.TestCase):
    """The real OpenSSH master: its socket in the process's one ControlPath directory,
    stopped and the directory removed when the last executor closes."""

    def test_close_stops_the_master_and_removes_the_directory(self):
        self.useFixture(fixtures.Timeout(300, gentle=True))
        guest = zfsguest.shared_guest()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MonkeyPatch("tempfile.tempdir", tmp))
        executors = [executor.SSHExecutor(
            "127.0.0.1", port=guest.ports["ssh"], private_key=guest.ssh_key,
            strict_host_key_checking="no", known_hosts="/dev/null") for _ in range(3)]
        for ex in executors:
            self.addCleanup(ex.close)
            self.assertEqual(0, ex.run(["zfs", "list", "-H", "-o", "name"]).exit_code)
        (directory,) = os.listdir(tmp)
        (socket_name,) = os.listdir(os.path.join(tmp, directory))  # one master, shared
        check = executors[0]._options() + ["-O", "check", "127.0.0.1"]
        self.assertEqual(0, subprocess.run(check, capture_output=True).returncode)
        for ex in executors:
            ex.close()
        self.assertEqual([], os.listdir(tmp))
        # the master is gone, not only its socket
        out = subprocess.run(["pgrep", "-f", "ControlPath=%s" % os.path.join(tmp, directory)],
                             capture_output=True, text=True).stdout
        self.assertEqual("", out)
        executors[0].close()


class TestSendBetweenThisHostAndTheGuest(testtools.TestCase):
    """Replication between local zfs-fuse (privsep) and the OpenZFS guest (SSH): the
    local zfs runs in the privileged side, ssh unprivileged, joined at a FIFO."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(300, gentle=True))
        self.guest = zfsguest.shared_guest()
        self.useFixture(privsep_fixture.PrivsepInProcess())
        self.local = zfs_client.ZFSClient(executor.LocalExecutor())
        self.remote = zfs_client.ZFSClient(executor.SSHExecutor(
            "127.0.0.1", port=self.guest.ports["ssh"], private_key=self.guest.ssh_key,
            strict_host_key_checking="no", known_hosts="/dev/null"))
        self.local_pool = self.useFixture(zfsfuse.FusePool(size=512 * MiB)).name
        self.remote_pool = self.useFixture(zfsguest.ZfsPool(self.guest)).name

    def test_send_to_the_guest_and_back(self):
        fs = self.local_pool + "/src"
        self.local.create_filesystem(fs, {"org.openstack:share_id": "s-1"})
        self.local.snapshot(fs + "@r1")
        self.local.send(fs + "@r1", self.remote, self.remote_pool + "/copy")
        self.local.snapshot(fs + "@r2")
        self.local.send(fs + "@r2", self.remote, self.remote_pool + "/copy",
                        base=fs + "@r1", force=True)
        self.assertEqual([self.remote_pool + "/copy@r1", self.remote_pool + "/copy@r2"],
                         self.remote.snapshots(self.remote_pool + "/copy"))
        # and back, into this host's pool
        self.remote.send(self.remote_pool + "/copy@r2", self.local, self.local_pool + "/back")
        self.assertEqual([self.local_pool + "/back@r2"],
                         self.local.snapshots(self.local_pool + "/back"))
        # a failing receive here is reported, and stops the remote side
        self.assertRaises(exception.ZFSError, self.remote.send,
                          self.remote_pool + "/copy@r2", self.local, self.local_pool + "/back")
