"""Crafted calls straight to the zfs_common privsep entry points.

The entry points run in this process (the unit test's privsep boundary); nothing they
refuse may reach a process, and the command lines the ZFS client really makes pass.
"""
import os
import stat
import sys
import tempfile
from unittest import mock

import testtools

from tests.common import privsep_fixture
from tests.unit.zfs_common import fakes
from zfs_common import allowlist
from zfs_common import client as client_mod
from zfs_common import executor
from zfs_common import privsep
from zfs_common import process

REFUSED_COMMANDS = [
    ["ssh", "-oProxyCommand=touch /tmp/pwned", "x"],
    ["ssh", "host", "--", "zfs list"],
    ["sh", "-c", "id"],
    ["/sbin/zfs", "list"],
    ["zpool", "destroy", "tank"],
    ["zfs"],
    ["zfs", 1],
    ["zfs", "destroy", "-R", "tank"],
    ["zfs", "destroy", "-R", "tank/a"],
    ["zfs", "destroy", "-r", "tank"],
    ["zfs", "destroy", "-f", "tank/a"],
    ["zfs", "destroy", "tank"],
    ["zfs", "destroy", "-r", "-r", "tank/a"],
    ["zfs", "destroy", "tank/a", "tank/b"],
    ["zfs", "destroy", "tank/a", "-r"],
    ["zfs", "destroy", "-rR", "tank/a"],
    ["zfs", "list", "-H", "-o", "name", "-r", "-tank"],
    ["zfs", "list", "-H", "-o", "name,mountpoint;id", "tank"],
    ["zfs", "list", "-H", "-o", "name", "tank/a b"],
    ["zfs", "get", "-H", "-o", "name,property,value", "used", "--", "-tank"],
    ["zfs", "get", "-H", "-p", "used,mount point", "tank"],
    ["zfs", "create", "tank/a@s"],
    ["zfs", "create", "tank/a%b"],
    ["zfs", "create", "tank/-o"],
    ["zfs", "create", "-o", "mountpoint=/etc", "-o", "x", "tank/a"],
    ["zfs", "create", "-o", "compression=on -o mountpoint=/", "tank/a"],
    ["zfs", "create", "-o", "sharenfs=rw\n/ *(rw)", "tank/a"],
    ["zfs", "create", "-O", "canmount=on", "tank/a"],
    ["zfs", "create", "-V", "1G; reboot", "tank/v"],
    ["zfs", "create", "-V", "-1", "tank/v"],
    ["zfs", "set", "mountpoint=-x", "tank/a"],
    ["zfs", "set", "mountpoint", "tank/a"],
    ["zfs", "set", "Mountpoint=/x", "tank/a"],
    ["zfs", "set", "compression=on", "tank/a", "tank/b"],
    ["zfs", "snapshot", "tank/a"],
    ["zfs", "snapshot", "tank/a@s@t"],
    ["zfs", "snapshot", "-r", "tank@s"],
    ["zfs", "clone", "tank/a", "tank/b"],
    ["zfs", "clone", "tank/a@s", "other"],
    ["zfs", "rename", "tank/a@s", "tank/b"],
    ["zfs", "rename", "tank/a", "tank"],
    ["zfs", "rename", "-f", "tank/a", "tank/b"],
    ["zfs", "rollback", "-R", "tank/a@s"],
    ["zfs", "send", "-R", "tank/a@s"],
    ["zfs", "send", "-i", "tank/a", "tank/a@s"],
    ["zfs", "receive", "-o", "mountpoint=/etc", "tank/b"],
    ["zfs", "receive", "tank"],
    ["zfs", "allow", "everyone", "destroy", "tank"],
    ["zfs", "upgrade", "-a"],
    ["exportfs", "-ra"],
    ["exportfs", "-i", "-o", "rw,no_root_squash", "10.0.0.1:/tank/a"],
    ["exportfs", "-i", "-o", "rw", "*:/tank/a"],
    ["exportfs", "-i", "-o", "rw", "10.0.0.1:/"],
    ["exportfs", "-i", "-o", "rw", "10.0.0.1:/tank/../etc"],
    ["exportfs", "-i", "-o", "rw", "10.0.0.0/8:/tank/a b"],
    ["exportfs", "-u", "host.example:/tank/a"],
    ["udevadm", "settle", "--timeout=5", "--exit-if-exists=/etc/shadow"],
    ["udevadm", "trigger"],
    ["udevadm", "settle", "--timeout=5", "--exit-if-exists=/dev/zvol/t/v", "-x"],
]

# what the client and the NFS helper send, beyond what the driver unit tests record
ACCEPTED_COMMANDS = [
    ["zfs", "get", "-H", "-p", "-o", "name,property,value", "used,available", "tank"],
    ["zfs", "get", "-H", "-p", "-r", "-o", "name,property,value", "org.openstack:id",
     "tank/manila"],
    ["zfs", "list", "-H", "-o", "name,origin", "-t", "filesystem,volume", "-r", "tank"],
    ["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-s", "createtxg", "-d", "1",
     "tank/a"],
    ["zfs", "create", "-p", "-o", "compression=on", "-o", "refquota=1073741824",
     "tank/manila/share-1"],
    ["zfs", "create", "-V", "1073741824", "-s", "-o", "volblocksize=16384", "tank/v"],
    ["zfs", "destroy", "-d", "tank/a@s"],
    ["zfs", "destroy", "-r", "tank/a"],
    ["zfs", "rename", "tank/a@s", "tank/a@t"],
    ["zfs", "set", "sharenfs=rw=@10.0.0.1/32,root_squash", "tank/a"],
    ["zfs", "set", 'org.openstack:nfs_clients={"10.0.0.1":"rw"}', "tank/a"],
    ["zfs", "send", "-I", "tank/a@s1", "tank/a@s2"],
    ["zfs", "receive", "-F", "tank/b"],
    ["exportfs", "-f"],
    ["exportfs", "-i", "-o", "rw,root_squash,sync", "10.0.0.0/24:/tank/manila/share-1"],
    ["exportfs", "-u", "[fd00::1]:/tank/manila/share-1"],
    ["exportfs", "-i", "-o", "ro,root_squash", "[fd00::]/64:/tank/a"],
    ["udevadm", "settle", "--timeout=10", "--exit-if-exists=/dev/zvol/tank/v"],
]


class TestEntryPoints(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(privsep_fixture.PrivsepInProcess())
        self.run = self.useFixture_mock(process, "run", return_value=(0, "", ""))
        self.run_pipe = self.useFixture_mock(process, "run_pipe", return_value=(0, ""))

    def useFixture_mock(self, obj, name, **kw):
        patcher = mock.patch.object(obj, name, **kw)
        self.addCleanup(patcher.stop)
        return patcher.start()

    def test_crafted_commands_are_refused(self):
        for argv in REFUSED_COMMANDS:
            self.assertRaises(allowlist.Refused, privsep.execute, argv)
        self.run.assert_not_called()

    def test_commands_the_drivers_make_run(self):
        for argv in ACCEPTED_COMMANDS:
            privsep.execute(argv, None, 5)
        self.assertEqual(len(ACCEPTED_COMMANDS), self.run.call_count)

    def test_input_is_refused(self):
        self.assertRaises(allowlist.Refused, privsep.execute,
                          ["zfs", "receive", "tank/b"], "stream")
        self.run.assert_not_called()

    def test_pipe_is_only_send_into_receive(self):
        for producer, consumer in [
                (["ssh", "-oProxyCommand=id", "x"], ["zfs", "receive", "tank/b"]),
                (["zfs", "send", "tank/a@s"], ["ssh", "h", "--", "zfs receive tank/b"]),
                (["zfs", "send", "tank/a@s"], ["zfs", "destroy", "-r", "tank/b"]),
                (["zfs", "receive", "tank/b"], ["zfs", "send", "tank/a@s"]),
                (["zfs", "send", "-R", "tank@s"], ["zfs", "receive", "tank/b"])]:
            self.assertRaises(allowlist.Refused, privsep.pipe, producer, consumer)
        self.run_pipe.assert_not_called()
        privsep.pipe(["zfs", "send", "tank/a@s"], ["zfs", "receive", "-F", "tank/b"])
        self.run_pipe.assert_called_once()

    def test_stream_refuses_other_commands_and_paths(self):
        directory = tempfile.mkdtemp(prefix="zfs-pipe-")
        self.addCleanup(os.rmdir, directory)
        fifo = os.path.join(directory, "stream")
        with open(fifo, "w"):          # the right name, but a plain file
            pass
        self.addCleanup(os.unlink, fifo)
        with mock.patch.object(process, "run_with_fds") as run:
            for argv, path in [(["zfs", "destroy", "tank/a"], fifo),
                               (["zfs", "list", "tank"], fifo),
                               (["zfs", "send", "tank/a@s"], "/etc/shadow"),
                               (["zfs", "send", "tank/a@s"], "/run/initctl"),
                               (["zfs", "send", "tank/a@s"], directory + "/../x/stream"),
                               (["zfs", "send", "tank/a@s"], fifo)]:
                self.assertRaises(allowlist.Refused, privsep.stream, argv, path, 1)
            run.assert_not_called()

    def test_files_outside_the_exports_directory_are_refused(self):
        for path in ("/etc/sudoers.d/x", "/etc/exports.d/../sudoers",
                     "/etc/exports.d/zfs-manila-a/../../passwd.exports", "relative"):
            self.assertRaises(ValueError, privsep.write_file, path, "x")
            self.assertRaises(ValueError, privsep.remove_file, path)

    def test_chmod_only_on_a_mount_point_and_only_permission_bits(self):
        self.assertRaises(allowlist.Refused, privsep.chmod, "/", 0o4777)
        self.assertRaises(allowlist.Refused, privsep.chmod, "/", "777")
        directory = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, directory)
        self.assertRaises(allowlist.Refused, privsep.chmod, directory, 0o777)
        link = directory + "-link"
        os.symlink("/proc", link)
        self.addCleanup(os.unlink, link)
        self.assertRaises(allowlist.Refused, privsep.chmod, link, 0o777)
        self.assertEqual(0o700, stat.S_IMODE(os.stat(directory).st_mode))


class TestClientCommandsPassTheAllowList(testtools.TestCase):
    """Every ZFSClient method's command line is one the privileged side accepts."""

    def test_client_methods(self):
        ex = fakes.RecordingExecutor(paths={"/dev/zvol/tank/v"})
        ex.respond = lambda argv: (0, "tank/a@s\tclones\t-\n", "") if "clones" in argv else None
        zfs = client_mod.ZFSClient(ex)
        zfs.get(["tank/a", "tank/a@s"], ["used", "org.openstack:id"])
        zfs.get_tree("tank/manila", ["used"])
        zfs.exists("tank/a@s")
        zfs.list("tank", types=(client_mod.FILESYSTEM, client_mod.VOLUME), depth=1)
        zfs.list("tank")
        zfs.snapshots("tank/a")
        zfs.clones("tank/a@s")
        zfs.create_filesystem("tank/m/a", {"refquota": 2 ** 30, "org.openstack:id": "x-1"},
                              parents=True)
        zfs.create_volume("tank/v", 2 ** 30, {"volblocksize": 16384}, sparse=True)
        zfs.snapshot("tank/a@s", {"org.openstack:id": "s-1"})
        zfs.clone("tank/a@s", "tank/b", {"readonly": True})
        zfs.set("tank/a", {"refquota": 5, "sharenfs": "rw=@10.0.0.1/32,root_squash"})
        zfs.inherit("tank/a", "sharenfs")
        zfs.promote("tank/b")
        zfs.rename("tank/a", "tank/c")
        zfs.rollback("tank/a@s", destroy_newer=True)
        zfs.mount("tank/a")
        zfs.unmount("tank/a", force=True)
        zfs.destroy("tank/a", recursive=True)
        zfs.destroy("tank/a@s", defer=True)
        zfs.retire("tank/a")
        self.assertGreater(len(ex.calls), 20)     # each passed fakes' allow-list check
        self.assertRaises(allowlist.Refused, zfs.destroy, "tank/a", dependents=True)

    def test_send_and_receive(self):
        local = executor.LocalExecutor()
        zfs = client_mod.ZFSClient(local)
        self.useFixture(privsep_fixture.PrivsepInProcess())
        with mock.patch.object(process, "run_pipe", return_value=(0, "")) as run_pipe:
            zfs.send("tank/a@s2", zfs, "tank/b", base="tank/a@s1", force=True,
                     intermediates=True)
        run_pipe.assert_called_once()


class TestStreamThroughAFifo(testtools.TestCase):
    """The FIFO between the privileged zfs and the unprivileged ssh, with real processes.

    ``zfs`` itself is replaced at the process boundary by a command that writes or reads
    the same file descriptors; the other side is a "remote" executor whose commands run
    here.
    """

    class Remote(executor.Executor):
        def __init__(self, script):
            self.script = script

        def argv(self, argv):
            return [sys.executable, "-c", self.script]

        def path_exists(self, path):
            raise NotImplementedError

        write_file = remove_file = chmod = _run = path_exists

    def setUp(self):
        super().setUp()
        self.useFixture(privsep_fixture.PrivsepInProcess())
        self.out = tempfile.NamedTemporaryFile(delete=False)
        self.addCleanup(os.unlink, self.out.name)
        real = process.run_with_fds
        self.local_argv = []

        def run_with_fds(argv, stdin=None, stdout=None, timeout=None):
            self.local_argv.append(argv)
            if argv[1] == "send":
                fake = ["printf", "zfs-stream-bytes"]
            else:
                fake = ["dd", "of=" + self.out.name, "status=none"]
            return real(fake, stdin=stdin, stdout=stdout, timeout=timeout)
        patcher = mock.patch.object(process, "run_with_fds", side_effect=run_with_fds)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_send_to_a_remote_host(self):
        remote = self.Remote("import shutil, sys; shutil.copyfileobj(sys.stdin.buffer, "
                             "open(%r, 'wb'))" % self.out.name)
        executor.pipe(executor.LocalExecutor(), ["zfs", "send", "tank/a@s"], remote,
                      ["zfs", "receive", "pool/b"], timeout=30)
        self.assertEqual([["zfs", "send", "tank/a@s"]], self.local_argv)
        with open(self.out.name, "rb") as f:
            self.assertEqual(b"zfs-stream-bytes", f.read())

    def test_receive_from_a_remote_host(self):
        remote = self.Remote("import sys; sys.stdout.write('remote-stream')")
        executor.pipe(remote, ["zfs", "send", "pool/a@s"], executor.LocalExecutor(),
                      ["zfs", "receive", "-F", "tank/b"], timeout=30)
        self.assertEqual([["zfs", "receive", "-F", "tank/b"]], self.local_argv)
        with open(self.out.name, "rb") as f:
            self.assertEqual(b"remote-stream", f.read())

    def test_a_refused_local_half_leaves_no_process_waiting(self):
        remote = self.Remote("import sys; sys.stdout.write('x')")
        self.assertRaises(allowlist.Refused, executor.pipe, remote, ["zfs", "send", "p/a@s"],
                          executor.LocalExecutor(), ["zfs", "receive", "tank"], timeout=30)
        self.assertEqual([], self.local_argv)
