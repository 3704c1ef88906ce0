import testtools

from tests.unit.zfs_common.fakes import RecordingExecutor
from zfs_common import client as zfs_client
from zfs_common import exception


class TestClient(testtools.TestCase):
    def client(self, *results, **kw):
        self.ex = RecordingExecutor(*results, **kw)
        return zfs_client.ZFSClient(self.ex, busy_timeout=0.3)

    def test_get_parses_tab_separated_exact_values(self):
        c = self.client((0, "t/a\tused\t123\nt/a\tcomment\ta b\tc\n", ""))
        self.assertEqual({"t/a": {"used": "123", "comment": "a b\tc"}},
                         c.get("t/a", ["used", "comment"]))
        self.assertEqual(["zfs", "get", "-H", "-p", "-o", "name,property,value",
                          "used,comment", "t/a"], self.ex.calls[0])

    def test_get_int_treats_none_as_zero(self):
        c = self.client((0, "t/a\trefquota\t-\n", ""), (0, "t/a\trefquota\t77\n", ""))
        self.assertEqual(0, c.get_int("t/a", "refquota"))
        self.assertEqual(77, c.get_int("t/a", "refquota"))

    def test_create_volume_sparse_with_properties(self):
        c = self.client()
        c.create_volume("t/v", 1024, {"org.openstack:volume_id": "x"}, sparse=True)
        self.assertEqual(["zfs", "create", "-V", "1024", "-s", "-o",
                          "org.openstack:volume_id=x", "t/v"], self.ex.calls[0])

    def test_set_runs_one_command_per_property(self):
        c = self.client()
        c.set("t/a", {"refquota": 5, "compression": "lz4"})
        self.assertEqual([["zfs", "set", "compression=lz4", "t/a"],
                          ["zfs", "set", "refquota=5", "t/a"]], self.ex.calls)

    def test_destroy_retries_while_busy_then_succeeds(self):
        busy = (1, "", "cannot destroy 't/a': dataset is busy")
        c = self.client(busy, busy, (0, "", ""))
        c.destroy("t/a", recursive=True)
        self.assertEqual(3, len(self.ex.calls))
        self.assertEqual(["zfs", "destroy", "-r", "t/a"], self.ex.calls[-1])

    def test_destroy_gives_up_when_busy_too_long(self):
        busy = (1, "", "cannot destroy 't/a': dataset is busy")
        c = self.client(*[busy] * 50)
        self.assertRaises(exception.DatasetBusy, c.destroy, "t/a")
        self.assertLess(len(self.ex.calls), 10)

    def test_destroy_missing_ok(self):
        gone = (1, "", "cannot open 't/a': dataset does not exist")
        c = self.client(gone, gone)
        c.destroy("t/a", missing_ok=True)
        self.assertRaises(exception.DatasetNotFound, c.destroy, "t/a")

    def test_exists(self):
        c = self.client((0, "t/a\n", ""), (1, "", "cannot open 't/b': dataset does not exist"))
        self.assertTrue(c.exists("t/a"))
        self.assertFalse(c.exists("t/b"))

    def test_list_depth_or_recursive(self):
        c = self.client((0, "t/b\nt/a\n", ""), (0, "", ""))
        self.assertEqual(["t/a", "t/b"], c.list("t", types=("filesystem", "volume"), depth=1))
        c.list("t")
        self.assertEqual(["zfs", "list", "-H", "-o", "name", "-t", "filesystem,volume",
                          "-d", "1", "t"], self.ex.calls[0])
        self.assertEqual(["zfs", "list", "-H", "-o", "name", "-t", "filesystem", "-r", "t"],
                         self.ex.calls[1])

    def test_wait_for_zvol_is_bounded(self):
        c = self.client(paths={"/dev/zvol/t/v"})
        self.assertEqual("/dev/zvol/t/v", c.wait_for_zvol("t/v"))
        self.assertEqual([], self.ex.calls)     # present: no waiting at all
        self.assertRaises(exception.ZFSError, c.wait_for_zvol, "t/w", timeout=0.3)
        self.assertEqual(["udevadm", "settle", "--timeout=1",
                          "--exit-if-exists=/dev/zvol/t/w"], self.ex.calls[0])

    def test_wait_for_zvol_lets_udev_wait_on_the_zfs_host(self):
        c = self.client()
        self.ex.respond = lambda argv: self.ex.paths.add("/dev/zvol/t/v") or (0, "", "")
        self.assertEqual("/dev/zvol/t/v", c.wait_for_zvol("t/v", timeout=5))
        self.assertEqual(1, len(self.ex.calls))

    def test_send_incremental_argv(self):
        c = self.client()
        target = zfs_client.ZFSClient(RecordingExecutor())
        calls = []
        self.patch(zfs_client.executor_mod, "pipe",
                   lambda *a, **kw: calls.append(a))
        c.send("t/a@2", target, "u/a", base="t/a@1", force=True)
        (src, send, dst, recv), = calls
        self.assertIs(self.ex, src)
        self.assertEqual(["zfs", "send", "-i", "t/a@1", "t/a@2"], send)
        self.assertEqual(["zfs", "receive", "-F", "u/a"], recv)

    def test_invalid_names_run_nothing(self):
        c = self.client()
        self.assertRaises(exception.InvalidName, c.clone, "t/a@s", "t/b;x")
        self.assertRaises(exception.InvalidName, c.rollback, "t/a")
        self.assertRaises(exception.InvalidValue, c.get, "t/a", ["used,all"])
        self.assertEqual([], self.ex.calls)
