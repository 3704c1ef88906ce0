import ast
import os
import shlex
import subprocess
import sys
from unittest import mock

import fixtures
import testtools

from zfs_common import exception
from zfs_common import executor
from zfs_common import privsep
from zfs_common import process


class TestProcess(testtools.TestCase):
    def test_run_reports_exit_code_and_output(self):
        code, out, err = process.run([sys.executable, "-c",
                                      "import sys; print('o'); sys.exit(3)"])
        self.assertEqual((3, "o\n"), (code, out))

    def test_run_kills_on_timeout(self):
        code, out, err = process.run(["sleep", "30"], timeout=0.2)
        self.assertIsNone(code)
        self.assertIn("timed out", err)

    def test_pipe_carries_data_between_two_processes(self):
        # the consumer exits with the number of bytes it read
        code, err = process.run_pipe(
            ["printf", "abcde"],
            [sys.executable, "-c", "import sys; sys.exit(len(sys.stdin.read()))"])
        self.assertEqual(5, code)

    def test_pipe_reports_the_failing_side(self):
        code, err = process.run_pipe(
            [sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(4)"],
            ["cat"])
        self.assertEqual(4, code)
        self.assertIn("boom", err)

    def test_pipe_timeout_kills_both(self):
        code, err = process.run_pipe(["sleep", "30"], ["cat"], timeout=0.2)
        self.assertIsNone(code)


class TestSSHExecutor(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.ssh = executor.SSHExecutor("zfs1.example", user="zfsadmin", port=2222,
                                        private_key="/etc/keys/id", control_persist=0)

    def test_argv_quotes_for_the_remote_shell(self):
        argv = self.ssh.argv(["zfs", "set", "sharenfs=rw=@10.0.0.1/32,root_squash", "t/a"])
        self.assertEqual("ssh", argv[0])
        self.assertEqual(["-p", "2222", "-l", "zfsadmin"],
                         argv[argv.index("-p"):argv.index("-p") + 4])
        self.assertIn("BatchMode=yes", argv)
        self.assertEqual(["zfs1.example", "--"], argv[-3:-1])
        self.assertEqual(["LC_ALL=C", "zfs", "set", "sharenfs=rw=@10.0.0.1/32,root_squash",
                          "t/a"], shlex.split(argv[-1]))

    def test_control_master_socket_directory(self):
        ssh = executor.SSHExecutor("h")
        self.addCleanup(ssh.close)
        path = [a for a in ssh.argv(["true"]) if a.startswith("ControlPath=")]
        self.assertEqual(1, len(path))


    def test_unreachable_host_is_connection_failed(self):
        err = "ssh: connect to host h port 22: No route to host"
        with mock.patch.object(process, "run", return_value=(255, "", err)):
            self.assertRaises(exception.ConnectionFailed, self.ssh.run, ["zfs", "list"])

    def test_a_remote_command_exiting_255_is_not_a_connection_failure(self):
        # OpenZFS's `zfs set` exits 255 when the pool lacks space
        err = "cannot set property for 'p/v': size is greater than available space"
        with mock.patch.object(process, "run", return_value=(255, "", err)):
            self.assertEqual(255, self.ssh.run(["zfs", "set", "volsize=9G", "p/v"]).exit_code)

    def test_timeout(self):
        with mock.patch.object(process, "run", return_value=(None, "", "timed out")):
            self.assertRaises(exception.CommandTimeout, self.ssh.run, ["zfs", "list"])

    def test_pipe_between_remote_hosts_runs_unprivileged(self):
        other = executor.SSHExecutor("zfs2.example", control_persist=0)
        with mock.patch.object(process, "run_pipe", return_value=(0, "")) as run_pipe:
            executor.pipe(self.ssh, ["zfs", "send", "t/a@s"], other,
                          ["zfs", "receive", "u/a"])
        producer, consumer = run_pipe.call_args[0][:2]
        self.assertEqual("LC_ALL=C zfs send t/a@s", producer[-1])
        self.assertEqual("LC_ALL=C zfs receive u/a", consumer[-1])
        self.assertIn("zfs2.example", consumer)

    def test_pipe_between_local_commands_runs_both_in_privsep(self):
        local = executor.LocalExecutor()
        with mock.patch.object(privsep, "pipe", return_value=(1, "cannot receive: "
                                                              "dataset already exists")) as p:
            self.assertRaises(exception.DatasetExists, executor.pipe, local,
                              ["zfs", "send", "t/a@s"], local, ["zfs", "receive", "u/a"])
        p.assert_called_once_with(["zfs", "send", "t/a@s"], ["zfs", "receive", "u/a"], None)

    def test_pipe_to_a_remote_host_runs_ssh_unprivileged(self):
        local = executor.LocalExecutor()
        with mock.patch.object(privsep, "stream", return_value=(0, "")) as stream, \
                mock.patch.object(process, "start_pipe") as start, \
                mock.patch.object(process, "finish_pipe", return_value=(0, "")):
            executor.pipe(local, ["zfs", "send", "t/a@s"], self.ssh, ["zfs", "receive", "u/a"])
        argv, fifo, _ = stream.call_args[0]
        self.assertEqual(["zfs", "send", "t/a@s"], argv)
        dd, ssh = start.call_args[0]
        self.assertEqual(["dd", "if=" + fifo], dd[:2])
        self.assertEqual("ssh", ssh[0])

    def test_a_failed_local_half_stops_the_remote_half(self):
        local = executor.LocalExecutor()
        with mock.patch.object(privsep, "stream", return_value=(1, "cannot open 't/a@s'")), \
                mock.patch.object(process, "start_pipe") as start, \
                mock.patch.object(process, "kill_pipe") as kill:
            self.assertRaises(exception.ZFSError, executor.pipe, self.ssh,
                              ["zfs", "send", "t/a@s"], local, ["zfs", "receive", "u/a"])
        kill.assert_called_once_with(start.return_value)


class TestLocalExecutor(testtools.TestCase):
    def test_runs_through_privsep(self):
        with mock.patch.object(privsep, "execute", return_value=(0, "out", "")) as execute:
            res = executor.LocalExecutor().run(["zfs", "list"], timeout=5)
        execute.assert_called_once_with(["zfs", "list"], None, 5)
        self.assertEqual(executor.Completed(0, "out", ""), res)

    def test_path_exists_locally(self):
        self.assertTrue(executor.LocalExecutor().path_exists(sys.executable))
        self.assertFalse(executor.LocalExecutor().path_exists("/nonexistent/zvol"))


class TestControlPathDirectory(testtools.TestCase):
    """One ControlPath directory per process, removed on close and at exit."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MonkeyPatch("tempfile.tempdir", self.tmp))
        # "-O exit" finds no master here: fine, but run nothing real
        self.useFixture(fixtures.MockPatchObject(process, "run",
                                                 return_value=(255, "", "no master")))

    def dirs(self):
        return sorted(n for n in os.listdir(self.tmp) if n.startswith("zfs-ssh-"))

    def test_executors_share_one_directory_removed_with_the_last(self):
        executors = [executor.SSHExecutor("zfs%d.example" % i) for i in range(5)]
        for ex in executors:
            ex.argv(["zfs", "list"])
        self.assertEqual(["zfs-ssh-%d-" % os.getpid()], [d[:-8] for d in self.dirs()])
        for ex in executors[:-1]:
            ex.close()
        self.assertEqual(1, len(self.dirs()))
        executors[-1].close()
        self.assertEqual([], self.dirs())
        # the master is told to exit, with the options it was started with
        argv = process.run.call_args[0][0]
        self.assertEqual(["-O", "exit", "zfs4.example"], argv[-3:])
        self.assertTrue(any(a.startswith("ControlPath=") for a in argv))
        # and an executor used again after its close makes a new one
        executors[0].argv(["zfs", "list"])
        self.assertEqual(1, len(self.dirs()))
        executors[0].close()
        self.assertEqual([], self.dirs())

    def test_no_directory_without_control_master(self):
        executor.SSHExecutor("h", control_persist=0).argv(["true"])
        self.assertEqual([], self.dirs())

    def test_removed_at_exit_and_left_ones_of_dead_processes_swept(self):
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        os.mkdir(os.path.join(self.tmp, "zfs-ssh-%s-abcdefgh" % dead))
        alive = "zfs-ssh-%d-abcdefgh" % os.getpid()
        os.mkdir(os.path.join(self.tmp, alive))
        script = ("import os, sys\n"
                  "from zfs_common import executor\n"
                  "for i in range(3):\n"
                  "    executor.SSHExecutor('h%d' % i, port=1).argv(['zfs', 'list'])\n"
                  "print(sorted(n for n in os.listdir(sys.argv[1]) if 'zfs-ssh' in n))\n")
        out = subprocess.run([sys.executable, "-c", script, self.tmp], check=True,
                             capture_output=True, text=True,
                             env=dict(os.environ, TMPDIR=self.tmp)).stdout
        during = ast.literal_eval(out.strip().splitlines()[-1])
        self.assertEqual(2, len(during))      # the dead one swept, its own made
        self.assertIn(alive, during)
        self.assertEqual([alive], self.dirs())  # its own removed at exit
