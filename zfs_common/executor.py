"""Where ZFS commands run: on this host (through privsep) or on a ZFS host over SSH.

An executor runs one argument vector and reports (exit code, stdout, stderr); it knows
nothing of ZFS. ``pipe()`` joins a command on one executor to a command on another
(``zfs send`` into ``zfs receive``) with two processes and a pipe, never a shell string.
"""
import abc
import dataclasses
import os
import re
import shlex
import tempfile

from oslo_log import log as logging

from zfs_common import exception
from zfs_common import privsep
from zfs_common import process
from zfs_common import sshcontrol

LOG = logging.getLogger(__name__)
SSH_CONNECTION_ERROR = 255
SSH_OWN_ERROR = re.compile(r"^(ssh:|kex_exchange|Connection (closed|reset|refused|timed)|"
                           r"Permission denied|Host key verification|mux_client|"
                           r"Control ?[Ss]ocket|Bad owner|Could not resolve)")


@dataclasses.dataclass(frozen=True)
class Completed:
    exit_code: int
    stdout: str
    stderr: str


class Executor(abc.ABC):
    """Runs commands for the ZFS client."""

    #: whether pipelines touching this executor need the privileged helper
    privileged = False

    @abc.abstractmethod
    def argv(self, argv):
        """The argument vector that runs ``argv`` on this executor's host from here."""

    @abc.abstractmethod
    def path_exists(self, path):
        """Whether ``path`` exists on this executor's host."""

    @abc.abstractmethod
    def write_file(self, path, content):
        """Replace a (configuration) file on this executor's host atomically."""

    @abc.abstractmethod
    def remove_file(self, path):
        """Remove a file on this executor's host; a missing file is fine."""

    @abc.abstractmethod
    def chmod(self, path, mode):
        """Set the permission bits of ``path`` (a dataset's mountpoint)."""

    @abc.abstractmethod
    def _run(self, argv, process_input, timeout):
        """(exit code or None on timeout, stdout, stderr)."""

    def run(self, argv, process_input=None, timeout=None):
        code, out, err = self._run(list(argv), process_input, timeout)
        if code is None:
            raise exception.CommandTimeout("%s: %s" % (shlex.join(argv), err), cmd=argv)
        return Completed(code, out, err)


class LocalExecutor(Executor):
    """Commands on this host, as root through the zfs_common privsep daemon."""

    privileged = True

    def argv(self, argv):
        return list(argv)

    def path_exists(self, path):
        return os.path.exists(path)

    def write_file(self, path, content):
        privsep.write_file(path, content)

    def remove_file(self, path):
        privsep.remove_file(path)

    def chmod(self, path, mode):
        privsep.chmod(path, mode)

    def _run(self, argv, process_input, timeout):
        return privsep.execute(argv, process_input, timeout)

    def __repr__(self):
        return "LocalExecutor()"


class SSHExecutor(Executor):
    """Commands on a remote ZFS host through the OpenSSH client.

    One master connection per host is kept open (ControlMaster) so each command costs a
    round trip, not a handshake. Arguments are quoted for the remote shell with
    ``shlex.quote`` after the ZFS layer has validated them.
    """

    def __init__(self, host, user="root", port=22, private_key=None, known_hosts=None,
                 strict_host_key_checking="accept-new", connect_timeout=10,
                 control_persist=300):
        self.host = host
        self.user = user
        self._ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % connect_timeout,
                     "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3",
                     "-o", "StrictHostKeyChecking=%s" % strict_host_key_checking,
                     "-o", "LogLevel=ERROR", "-p", str(int(port)), "-l", user]
        if known_hosts:
            self._ssh += ["-o", "UserKnownHostsFile=%s" % known_hosts]
        if private_key:
            self._ssh += ["-i", private_key, "-o", "IdentitiesOnly=yes"]
        self._control_persist = int(control_persist or 0)
        self._control_dir = None

    def _options(self):
        """ssh and its options up to the host; the master's socket in the process's
        ControlPath directory (``zfs_common.sshcontrol``)."""
        if not self._control_persist:
            return list(self._ssh)
        self._control_dir = sshcontrol.acquire(self)
        return self._ssh + ["-o", "ControlMaster=auto",
                            "-o", "ControlPath=%s" % os.path.join(self._control_dir, "%C"),
                            "-o", "ControlPersist=%d" % self._control_persist]

    def argv(self, argv):
        # the remote shell runs the command with untranslated messages, as here
        return self._options() + [self.host, "--", "LC_ALL=C " + shlex.join(argv)]

    def close(self):
        """Stop this executor's master connection and give up the ControlPath
        directory (removed when no other executor of the process uses it). Using the
        executor again opens a new master."""
        if self._control_dir is None:
            return
        if os.path.isdir(self._control_dir):
            process.run(self._options() + ["-O", "exit", self.host], timeout=10)
        self._control_dir = None
        sshcontrol.release(self)

    def path_exists(self, path):
        return self.run(["test", "-e", path]).exit_code == 0

    def _check(self, argv, process_input=None):
        res = self.run(argv, process_input)
        if res.exit_code != 0:
            raise exception.ZFSError("%s failed on %s: %s" % (shlex.join(argv), self.host,
                                                            res.stderr.strip()),
                                     cmd=argv, stderr=res.stderr, exit_code=res.exit_code)

    def write_file(self, path, content):
        privsep.check_file(path)
        tmp = path + ".tmp"
        self._check(["tee", tmp], process_input=content)
        self._check(["mv", "-f", tmp, path])

    def remove_file(self, path):
        privsep.check_file(path)
        self._check(["rm", "-f", path])

    def chmod(self, path, mode):
        self._check(["chmod", "%o" % (int(mode) & 0o7777), path])

    def _run(self, argv, process_input, timeout):
        code, out, err = process.run(self.argv(argv), process_input, timeout)
        # 255 is also what some zfs commands exit with: only ssh's own messages count
        if code == SSH_CONNECTION_ERROR and SSH_OWN_ERROR.match(err.strip()):
            raise exception.ConnectionFailed(
                "cannot reach ZFS host %s@%s: %s" % (self.user, self.host, err.strip()),
                cmd=argv, stderr=err, exit_code=code)
        return code, out, err

    def __repr__(self):
        return "SSHExecutor(%s@%s)" % (self.user, self.host)


def pipe(source, source_argv, target, target_argv, timeout=None):
    """Run ``source_argv`` on ``source`` piped into ``target_argv`` on ``target``.

    Between two local commands the privsep daemon runs both; between two SSH hosts both
    ``ssh`` run here, unprivileged. Between this host and a remote one the local ``zfs``
    runs in the privsep daemon and meets the unprivileged ``ssh`` (and a ``dd`` that
    opens the FIFO for it) at a FIFO in a private temporary directory.
    Raises ZFSError with both commands' stderr when either fails.
    """
    if source.privileged and target.privileged:
        code, err = privsep.pipe(list(source_argv), list(target_argv), timeout)
    elif source.privileged or target.privileged:
        code, err = _pipe_through_fifo(source, source_argv, target, target_argv, timeout)
    else:
        code, err = process.run_pipe(source.argv(source_argv), target.argv(target_argv),
                                     timeout)
    if code is None:
        raise exception.CommandTimeout(err, cmd=source_argv + ["|"] + target_argv)
    if code:
        raise exception.from_command(source_argv + ["|"] + target_argv, err, code)


def _pipe_through_fifo(source, source_argv, target, target_argv, timeout):
    with tempfile.TemporaryDirectory(prefix="zfs-pipe-") as directory:
        fifo = os.path.join(directory, "stream")
        os.mkfifo(fifo, 0o600)
        if source.privileged:
            remote = process.start_pipe(["dd", "if=" + fifo, "bs=1M", "status=none"],
                                        target.argv(target_argv))
            local_argv = source_argv
        else:
            remote = process.start_pipe(source.argv(source_argv),
                                        ["dd", "of=" + fifo, "bs=1M", "status=none"])
            local_argv = target_argv
        try:
            local_code, local_err = privsep.stream(list(local_argv), fifo, timeout)
        except BaseException:
            process.kill_pipe(remote)
            raise
        if local_code != 0:
            # the remote half may still wait at the FIFO: it has nothing more to do
            process.kill_pipe(remote)
            return local_code, local_err
        remote_code, remote_err = process.finish_pipe(remote, timeout)
        return remote_code, local_err + remote_err


def _plain_path(path):
    if (not isinstance(path, str) or not path.startswith("/") or len(path) > 4096
            or any(ord(c) < 32 for c in path)):
        raise exception.InvalidValue("not a plain absolute path: %r" % (path,))
    return path


def copy_bytes(source, source_path, target, target_path, sparse=True, timeout=None):
    """Copy a file or device to another, possibly on another host, with two ``dd``.

    ``source`` and ``target`` are executors, or None for this host without privileges
    (a service's temporary file). ``sparse`` skips writing zero blocks: right for a fresh
    zvol or file, which read as zeros anyway. Raises ZFSError with dd's stderr.
    """
    if any(e is not None and e.privileged for e in (source, target)):
        raise ValueError("copy_bytes runs unprivileged: use it with remote hosts only")
    producer = ["dd", "if=" + _plain_path(source_path), "bs=1M", "status=none"]
    consumer = ["dd", "of=" + _plain_path(target_path), "bs=1M", "status=none",
                "conv=sparse,fsync" if sparse else "conv=fsync"]
    producer = source.argv(producer) if source else producer
    consumer = target.argv(consumer) if target else consumer
    code, err = process.run_pipe(producer, consumer, timeout)
    if code is None:
        raise exception.CommandTimeout(err, cmd=producer + ["|"] + consumer)
    if code:
        raise exception.ZFSError("copying %s to %s failed: %s" % (source_path, target_path,
                                                                 err.strip()),
                                 cmd=producer + ["|"] + consumer, stderr=err, exit_code=code)


def read_from(source, argv, consume, timeout=None):
    """Run ``argv`` on the remote ``source`` and give its output to ``consume(read)``
    here, unprivileged; returns what ``consume`` returned. Raises ZFSError with the
    command's stderr when it fails."""
    if source.privileged:
        raise ValueError("read_from runs unprivileged: use it with remote hosts only")
    code, result, err = process.run_reading(source.argv(argv), consume, timeout)
    if code is None:
        raise exception.CommandTimeout("%s: %s" % (shlex.join(argv), err), cmd=argv)
    if code:
        raise exception.from_command(argv, err, code)
    return result
