import json

import ddt
import testtools

from tests.unit.zfs_common.fakes import RecordingExecutor
from zfs_common import client as zfs_client
from zfs_manila import nfs


def rule(to, level="rw", kind="ip", access_id=None):
    return {"access_type": kind, "access_to": to, "access_level": level,
            "access_id": access_id or "id-" + to}


@ddt.ddt
class TestRules(testtools.TestCase):
    @ddt.data(("10.0.0.1", "10.0.0.1"), ("10.0.0.1/32", "10.0.0.1"),
              ("10.0.0.0/24", "10.0.0.0/24"), ("FD00::1", "fd00::1"),
              ("fd00::/64", "fd00::/64"), ("fd00::1/128", "fd00::1"))
    @ddt.unpack
    def test_addresses_are_normalised(self, given, expected):
        self.assertEqual(expected, nfs.client_from_rule(rule(given)).network)

    @ddt.data(rule("alice", kind="user"), rule("10.0.0.1/24"), rule("10.0.0.300"),
              rule("10.0.0.1", level="admin"), rule("10.0.0.1;reboot"),
              rule("10.0.0.1 *"), rule("*"))
    def test_bad_rules_are_refused(self, bad):
        self.assertRaises(nfs.RuleError, nfs.client_from_rule, bad)

    def test_clients_and_errors(self):
        clients, errors = nfs.clients_from_rules([
            rule("10.0.0.1", "ro"), rule("10.0.0.1", "rw", access_id="b"),
            rule("bob", kind="user", access_id="u"), rule("fd00::/64", "ro")])
        self.assertEqual({"10.0.0.1": nfs.Client("10.0.0.1", "rw"),
                          "fd00::/64": nfs.Client("fd00::/64", "ro")}, clients)
        self.assertEqual(["u"], list(errors))

    def test_exportfs_spec_brackets_ipv6(self):
        self.assertEqual("[fd00::]/64:/tank/s",
                         nfs.Client("fd00::/64", "ro").exportfs_spec("/tank/s"))
        self.assertEqual("[fd00::1]:/tank/s",
                         nfs.Client("fd00::1", "ro").exportfs_spec("/tank/s"))
        self.assertEqual("10.0.0.0/8:/tank/s",
                         nfs.Client("10.0.0.0/8", "rw").exportfs_spec("/tank/s"))


class TestExportfsHelper(testtools.TestCase):
    def helper(self, current):
        state = json.dumps(current) if current is not None else "-"
        self.ex = RecordingExecutor((0, "t/s\t%s\t%s\n" % (nfs.STATE_PROPERTY, state), ""))
        return nfs.ExportfsHelper(zfs_client.ZFSClient(self.ex), ["sync", "sec=sys"])

    def exportfs_calls(self):
        return [c for c in self.ex.calls if c[0] == "exportfs"]

    def test_only_changed_clients_are_touched(self):
        helper = self.helper({"10.0.0.1": "rw", "10.0.0.2": "ro", "10.0.0.3": "rw"})
        helper.apply("t/s", "/t/s", {
            "10.0.0.1": nfs.Client("10.0.0.1", "rw"),      # unchanged: never re-exported
            "10.0.0.2": nfs.Client("10.0.0.2", "rw"),      # ro -> rw in place
            "fd00::/64": nfs.Client("fd00::/64", "ro")})   # new
        self.assertEqual([
            ["exportfs", "-i", "-o", "rw,root_squash,sync,sec=sys", "10.0.0.2:/t/s"],
            ["exportfs", "-i", "-o", "ro,root_squash,sync,sec=sys", "[fd00::]/64:/t/s"],
            ["exportfs", "-u", "10.0.0.3:/t/s"]], self.exportfs_calls())
        (content,) = self.ex.files.values()
        self.assertIn("/t/s fd00::/64(ro,root_squash,sync,sec=sys)", content)
        self.assertNotIn("10.0.0.3", content)
        self.assertEqual(["zfs", "set", nfs.STATE_PROPERTY + '={"10.0.0.1":"rw","10.0.0.2":'
                          '"rw","fd00::/64":"ro"}', "t/s"], self.ex.calls[-1])

    def test_remove_unexports_everything_and_deletes_the_file(self):
        helper = self.helper({"10.0.0.1": "rw"})
        helper.ex = self.ex
        self.ex.files["/etc/exports.d/zfs-manila-t_s.exports"] = "x"
        helper.remove("t/s", "/t/s")
        self.assertEqual([["exportfs", "-u", "10.0.0.1:/t/s"]], self.exportfs_calls())
        self.assertEqual({}, self.ex.files)

    def test_missing_export_on_unexport_is_fine(self):
        helper = self.helper({"10.0.0.1": "rw"})
        self.ex.results.append((1, "", "exportfs: Could not find '10.0.0.1:/t/s'"))
        helper.apply("t/s", "/t/s", {})

    def test_exportfs_failure_raises(self):
        helper = self.helper(None)
        self.ex.results.append((1, "", "exportfs: Failed to stat /t/s"))
        self.assertRaises(nfs.zfs_exc.ZFSError, helper.apply, "t/s", "/t/s",
                          {"10.0.0.1": nfs.Client("10.0.0.1", "rw")})


class TestSharenfsHelper(testtools.TestCase):
    def test_value_groups_levels_and_squashes_root(self):
        helper = nfs.SharenfsHelper(None, ["sync"])
        self.assertEqual("rw=@10.0.0.0/24:10.1.1.1,ro=10.2.2.2,root_squash,sync",
                         helper.sharenfs_value({
                             "10.0.0.0/24": nfs.Client("10.0.0.0/24", "rw"),
                             "10.1.1.1": nfs.Client("10.1.1.1", "rw"),
                             "10.2.2.2": nfs.Client("10.2.2.2", "ro")}))
        self.assertEqual("off", helper.sharenfs_value({}))

    def test_ipv6_is_refused(self):
        helper = nfs.SharenfsHelper(None, [])
        self.assertRaises(nfs.RuleError, helper.sharenfs_value,
                          {"fd00::1": nfs.Client("fd00::1", "rw")})
