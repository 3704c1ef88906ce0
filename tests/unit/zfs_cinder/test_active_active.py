"""Active-active: which modes claim it, and the cross-process locks it relies on."""
from cinder import coordination
from cinder import exception
import fixtures
from tooz import coordination as tooz_coordination

from tests.unit.zfs_cinder.base import NOT_FOUND
from tests.unit.zfs_cinder.base import DriverTestCase
from zfs_cinder import locks


class TestClaim(DriverTestCase):
    def test_remote_zfs_host_supports_active_active(self):
        self.assertTrue(self.make_driver(zfs_ssh_host="192.0.2.5").SUPPORTS_ACTIVE_ACTIVE)

    def test_local_zfs_does_not(self):
        self.assertFalse(self.make_driver().SUPPORTS_ACTIVE_ACTIVE)


class TestClusterLocks(DriverTestCase):
    """Another cinder-volume process of the cluster (a tooz coordinator of its own on the
    same backend) cannot take the locks while this one holds them."""

    def setUp(self):
        super().setUp()
        self.drv = self.make_driver(zfs_ssh_host="192.0.2.5")
        self.ex = self.drv.zfs.executor
        tmp = self.useFixture(fixtures.TempDir()).path
        self.conf_fixture.config(group="coordination", backend_url="file://" + tmp)
        coordination.COORDINATOR.start()
        self.addCleanup(coordination.COORDINATOR.stop)
        self.other = tooz_coordination.get_coordinator("file://" + tmp, b"other-process")
        self.other.start()
        self.addCleanup(self.other.stop)

    def free(self, name):
        lock = self.other.get_lock(("cinder-" + name).encode())
        if lock.acquire(blocking=False):
            lock.release()
            return True
        return False

    def test_retire_holds_the_zpool_lock_of_the_zfs_host(self):
        vol = self.volume()
        name = locks.name("retire", self.ex, "tank")
        self.assertEqual("zfs-cinder-retire-%r-tank" % self.ex, name)   # the ZFS host's
        seen = []

        def respond(argv):
            if argv[:2] == ["zfs", "list"] and "-t" in argv and "snapshot" in argv:
                seen.append(self.free(name))
            return None
        self.ex.respond = respond
        self.drv.delete_volume(vol)
        self.assertEqual([False], seen)
        self.assertIn(["zfs", "destroy", "-r", "tank/cinder/" + vol.name], self.ex.calls)
        self.assertTrue(self.free(name))


class TestConcurrentSetup(DriverTestCase):
    def test_root_made_by_another_service_at_the_same_moment(self):
        drv = self.make_driver(zfs_ssh_host="192.0.2.5")
        drv.zfs.executor.results.extend([
            NOT_FOUND,                                               # exists
            (1, "", "cannot create 'tank/cinder': dataset already exists"),
            (0, "tank/cinder\ttype\tfilesystem\n", "")])                                # type
        drv.check_for_setup_error()
        calls = drv.zfs.executor.calls
        self.assertEqual(["zfs", "create", "-p", "tank/cinder"], calls[-2])
        self.assertEqual(["zfs", "get"], calls[-1][:2])      # and its type checked


class TestLeftoverExport(DriverTestCase):
    """A service that died between making a volume's LIO target and saving its
    provider_location leaves a target holding the zvol open: the delete removes it."""

    def setUp(self):
        super().setUp()
        self.drv = self.make_driver(zfs_ssh_host="192.0.2.5", target_helper="lioadm")
        self.drv.zfs.busy_timeout = 0
        self.ex = self.drv.zfs.executor
        self.vol = self.volume()
        self.iqn = "iqn.2010-10.org.openstack:" + self.vol.name
        self.destroys = 0

    def respond(self, targets):
        def respond(argv):
            if argv[:3] == ["zfs", "destroy", "-r"]:
                self.destroys += 1
                if self.destroys == 1:
                    return (1, "", "cannot destroy '%s': dataset is busy" % argv[-1])
            if argv[:2] == ["cinder-rtstool", "get-targets"]:
                return (0, targets, "")
            return None
        return respond

    def test_busy_zvol_with_a_target_of_its_own(self):
        self.ex.respond = self.respond(self.iqn + "\n")
        self.drv.delete_volume(self.vol)
        self.assertIn(["cinder-rtstool", "delete", self.iqn], self.ex.calls)
        self.assertEqual(2, self.destroys)

    def test_busy_for_another_reason_stays_busy(self):
        self.ex.respond = self.respond("iqn.2010-10.org.openstack:volume-other\n")
        self.assertRaises(exception.VolumeIsBusy, self.drv.delete_volume, self.vol)
        self.assertFalse([c for c in self.ex.calls if c[:2] == ["cinder-rtstool", "delete"]])
