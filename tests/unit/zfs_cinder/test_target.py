from cinder import coordination
from cinder import exception
import fixtures
from tooz import coordination as tooz_coordination

from tests.unit.zfs_cinder.base import DriverTestCase
from zfs_cinder import target
from zfs_common import exception as zfs_exc


class TestRemoteLio(DriverTestCase):
    def setUp(self):
        super().setUp()
        self.drv = self.make_driver(zfs_ssh_host="192.0.2.5", target_helper="lioadm")
        self.ex = self.drv.zfs.executor

    def test_rtstool_runs_on_the_zfs_host(self):
        self.assertIsInstance(self.drv.target, target.RemoteLioAdm)
        self.assertEqual(["cinder-rtstool", "verify"], self.ex.calls[0])
        self.ex.respond = lambda argv: (
            (0, "iqn.2010-10.org.openstack:volume-v1\n", "") if argv[1] == "get-targets"
            else None)
        self.drv.target.create_iscsi_target(
            "iqn.2010-10.org.openstack:volume-v1", 0, 0, "/dev/zvol/tank/v1",
            ("user", "secret"), portals_ips=["192.0.2.5"], portals_port=3260)
        self.assertEqual(["cinder-rtstool", "create", "/dev/zvol/tank/v1",
                          "iqn.2010-10.org.openstack:volume-v1", "user", "secret", "False",
                          "-p3260", "-a192.0.2.5"], self.ex.calls[1])
        self.assertEqual(["cinder-rtstool", "save"], self.ex.calls[-1])

    def test_failures_become_cinder_target_errors(self):
        self.ex.results.append((1, "", "rtslib: no such device"))
        self.assertRaises(exception.ISCSITargetCreateFailed,
                          self.drv.target.create_iscsi_target,
                          "iqn.2010-10.org.openstack:volume-v1", 0, 0, "/dev/zvol/tank/v1")

    def test_an_unreachable_zfs_host_is_a_cinder_target_error(self):
        def unreachable(argv):
            raise zfs_exc.ConnectionFailed("cannot reach ZFS host root@192.0.2.5: "
                                           "Connection refused")
        self.ex.respond = unreachable
        e = self.assertRaises(exception.ISCSITargetCreateFailed,
                              self.drv.target.create_iscsi_target,
                              "iqn.2010-10.org.openstack:volume-v1", 0, 0, "/dev/zvol/tank/v1")
        self.assertIn("volume-v1", str(e))

    def test_local_zfs_uses_cinders_helper_unchanged(self):
        drv = self.make_driver(target_helper="fake", zfs_ssh_host=None)
        self.assertEqual("FakeTarget", type(drv.target).__name__)


class TestRemoteLioLock(DriverTestCase):
    """rtslib calls on one ZFS host exclude each other across cinder-volume processes:
    through cinder's coordination (tooz) once the service started it."""

    def setUp(self):
        super().setUp()
        self.drv = self.make_driver(zfs_ssh_host="192.0.2.5", target_helper="lioadm")
        self.ex = self.drv.zfs.executor
        tmp = self.useFixture(fixtures.TempDir()).path
        self.conf_fixture.config(group="coordination", backend_url="file://" + tmp)
        coordination.COORDINATOR.start()
        self.addCleanup(coordination.COORDINATOR.stop)
        # another cinder-volume process: a coordinator of its own on the same backend
        self.other = tooz_coordination.get_coordinator("file://" + tmp, b"other-process")
        self.other.start()
        self.addCleanup(self.other.stop)

    def test_another_process_cannot_take_the_lock_while_rtstool_runs(self):
        name = ("cinder-zfs-cinder-lioadm-%s" % self.ex).encode()
        seen = []

        def respond(argv):
            lock = self.other.get_lock(name)
            seen.append(lock.acquire(blocking=False))
            if seen[-1]:
                lock.release()
            return None
        self.ex.respond = respond
        self.drv.target._execute("cinder-rtstool", "save")
        self.assertEqual([False], seen)
        # and free again after it
        lock = self.other.get_lock(name)
        self.assertTrue(lock.acquire(blocking=False))
        lock.release()
