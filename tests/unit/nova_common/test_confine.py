"""nova_common.confine: the ACLs an instance directory gets for its guest uid (setfacl,
the command, is the boundary)."""
import os

import fixtures
from nova import exception
from oslo_config import fixture as config_fixture
import testtools

from nova_common import confine

GUEST = 1900000007


class TestGrantInstanceDir(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.setfacl = self.useFixture(fixtures.MockPatchObject(confine, "_setfacl")).mock

    def _file(self, name):
        path = os.path.join(self.dir, name)
        with open(path, "w"):
            pass
        return path

    def granted(self):
        return [c.args[-1] for c in self.setfacl.call_args_list]

    def test_own_files_granted_the_record_and_links_not(self):
        disk = self._file("disk")
        self._file(confine.RECORD)
        os.symlink(disk, os.path.join(self.dir, "link"))
        confine.grant_instance_dir(self.dir, GUEST)
        self.assertEqual([self.dir, disk], self.granted())
        self.assertIn("u:%d:rwx" % GUEST, self.setfacl.call_args_list[0].args[1])

    def test_a_file_the_guest_made_in_an_earlier_run_is_left_to_it(self):
        # power on after power off: the guest's log of the last run belongs to its uid,
        # and nova's user may not change that file's ACL (setfacl: not permitted)
        if os.getuid() != 0:
            self.skipTest("chown to another uid needs root")
        disk = self._file("disk")
        log = self._file("hypervisor.log")
        os.chown(log, GUEST, GUEST)
        confine.grant_instance_dir(self.dir, GUEST)
        self.assertEqual([self.dir, disk], self.granted())


class TestGrantSocketDir(testtools.TestCase):
    def test_the_guest_may_create_sockets_but_not_list_the_directory(self):
        setfacl = self.useFixture(fixtures.MockPatchObject(confine, "_setfacl")).mock
        confine.grant_socket_dir("/var/lib/nova/vhostuser", GUEST)
        entries = setfacl.call_args.args[1].split(",")
        self.assertIn("u:%d:wx" % GUEST, entries)
        self.assertIn("u:%d:rwx" % os.getuid(), entries)
        self.assertEqual("/var/lib/nova/vhostuser", setfacl.call_args.args[-1])

class TestSharedDisks(testtools.TestCase):
    """The ACLs of an instance directory on a shared instances_path, for real (setfacl
    and getfacl on a temporary directory)."""

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(self.dir, "disk"), "w"):
            pass

    def test_the_other_hosts_uid_is_seen_and_revoking_ours_keeps_it(self):
        other = GUEST + 1
        confine.grant_instance_dir(self.dir, other)      # the host it came from
        self.assertEqual({other}, confine.granted_uids(self.dir))
        confine.grant_instance_dir(self.dir, GUEST)      # this host's guest
        self.assertEqual({other, GUEST}, confine.granted_uids(self.dir))
        confine.revoke_instance_dir(self.dir, other)     # the other host lets go
        for path in (self.dir, os.path.join(self.dir, "disk")):
            self.assertEqual({GUEST}, confine.granted_uids(path))
        # a new file gets this guest's entry only (the default ACL)
        new = os.path.join(self.dir, "disk.eph0")
        open(new, "w").close()
        self.assertEqual({GUEST}, confine.granted_uids(new))


class TestClaimUidRange(testtools.TestCase):
    """Hosts sharing instances_path record their uid ranges in it; an overlap stops the
    host that starts second."""

    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(config_fixture.Config(confine.CONF))
        self.conf.config(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.claims = os.path.join(confine.CONF.instances_path, confine.UID_CLAIMS)

    def claim(self, host, uid_range):
        self.conf.config(uid_range=uid_range, group="hci_guests")
        confine.claim_uid_range(host)

    def recorded(self):
        out = {}
        for name in os.listdir(self.claims):
            with open(os.path.join(self.claims, name)) as f:
                out[name] = f.read().strip()
        return out

    def test_disjoint_ranges_are_recorded_and_a_restart_rewrites_its_own(self):
        self.claim("a", "1900000000:100")
        self.claim("b", "1900000100:100")           # starts where a's ends
        self.claim("a", "1900000000:50")            # a restarts with a smaller range
        self.assertEqual({"a": "1900000000:50", "b": "1900000100:100"}, self.recorded())

    def test_an_overlap_stops_the_second_host_and_records_nothing_for_it(self):
        self.claim("a", "1900000000:100")
        e = self.assertRaises(exception.InvalidInput, self.claim, "b", "1900000099:10")
        self.assertIn("overlaps 1900000000:100 of host a", str(e))
        self.assertEqual({"a": "1900000000:100"}, self.recorded())

    def test_an_unreadable_claim_is_skipped(self):
        os.makedirs(self.claims)
        with open(os.path.join(self.claims, "old"), "w") as f:
            f.write("garbage")
        self.claim("a", "1900000000:100")
        self.assertEqual("1900000000:100", self.recorded()["a"])

    def test_a_host_name_that_cannot_name_a_file_is_refused(self):
        for host in ("", ".hidden", "a/b"):
            self.assertRaises(exception.InvalidInput, self.claim, host, "1900000000:1")
        self.assertFalse(os.path.exists(self.claims))
