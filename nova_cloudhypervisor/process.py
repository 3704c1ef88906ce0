"""The cloud-hypervisor process of an instance: command line, start, liveness, stop.

One process per instance, started empty (``--api-socket`` and ``--event-monitor`` only;
the VM comes with ``vm.create`` or ``vm.restore``), in a session of its own so that it
outlives a restart of nova-compute. Its pidfile, API socket, event log and VMM log are in
the instance directory. The process is nova-compute's child until nova-compute restarts:
the handle is kept so that an exited VMM is reaped at once instead of staying a zombie.
"""
import os
import signal
import subprocess
import time

from nova import exception
from nova.i18n import _
from oslo_log import log as logging

from nova_cloudhypervisor import client
from nova_common import pids

LOG = logging.getLogger(__name__)
API_SOCKET = "ch.sock"
EVENTS = "events.json"
VMM_LOG = "ch.log"
PIDFILE = "ch.pid"
SUN_PATH_MAX = 107          # sockaddr_un.sun_path holds 108 bytes with the final NUL
_children = {}              # pid -> Popen of the VMMs this nova-compute started


def check_binary(conf):
    binary = conf.cloudhypervisor.binary
    if not binary or not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        raise exception.InternalError(
            _("cloud-hypervisor binary %s is missing or not executable") % binary)


def check_socket_path(instance, path):
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise exception.InstanceDeployFailure(
            reason=_("API socket path %s is longer than a UNIX socket path can be (%d "
                     "bytes); use a shorter instances_path") % (path, SUN_PATH_MAX),
            instance_id=instance.uuid)


def command_line(conf, instance, idir):
    """The argument vector; every value is a path in the instance directory or an option,
    none comes from the user."""
    ch = conf.cloudhypervisor
    sock = idir.file(API_SOCKET)
    check_socket_path(instance, sock)
    argv = [ch.binary,
            "--api-socket", "path=" + sock,
            "--event-monitor", "path=" + idir.file(EVENTS),
            "--log-file", idir.file(VMM_LOG),
            "--seccomp", "true" if ch.seccomp else "false"]
    return argv + list(ch.extra_args)


def start(conf, instance, idir):
    """Start the VMM and wait until its API answers; returns a connected ``Client``.
    A VMM that does not come up is stopped and nothing of it is left but its log."""
    check_binary(conf)
    argv = command_line(conf, instance, idir)
    sock = idir.file(API_SOCKET)
    for name in (API_SOCKET, API_SOCKET + ".lock", EVENTS, PIDFILE):
        # up to v52 bind() fails on a stale socket; events of an old process are stale
        _unlink(idir.file(name))
    old = os.umask(0o077)
    try:
        with open(idir.file(VMM_LOG), "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    close_fds=True)
    except OSError as e:
        raise exception.InstanceDeployFailure(
            reason=_("cloud-hypervisor failed to start: %s") % e, instance_id=instance.uuid)
    finally:
        os.umask(old)
    _children[proc.pid] = proc
    _write_pid(idir, proc.pid)
    api = client.Client(sock, timeout=conf.cloudhypervisor.api_timeout)
    deadline = time.monotonic() + conf.cloudhypervisor.start_timeout
    while True:
        if proc.poll() is not None:
            api.close()
            _unlink(idir.file(PIDFILE))
            raise exception.InstanceDeployFailure(
                reason=_("cloud-hypervisor exited with status %(rc)s at start: %(log)s")
                % {"rc": proc.returncode, "log": log_tail(idir)},
                instance_id=instance.uuid)
        if os.path.exists(sock):
            try:
                api.ping()
                return api
            except client.ApiError:
                pass
        if time.monotonic() > deadline:
            api.close()
            kill(proc.pid, instance.uuid, conf.cloudhypervisor.stop_timeout)
            _unlink(idir.file(PIDFILE))
            raise exception.InstanceDeployFailure(
                reason=_("cloud-hypervisor did not answer on %(sock)s within %(t)d s")
                % {"sock": sock, "t": conf.cloudhypervisor.start_timeout},
                instance_id=instance.uuid)
        time.sleep(0.01)


def _write_pid(idir, pid):
    fd = os.open(idir.file(PIDFILE), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("%d\n" % pid)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def log_tail(idir, size=2000):
    try:
        with open(idir.file(VMM_LOG), "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - size))
            return f.read().decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return ""


def read_pid(idir):
    return pids.read_pid(idir.file(PIDFILE))


def alive(pid, uuid):
    """Whether ``pid`` is a live (not zombie) VMM of instance ``uuid``."""
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]      # reaped
        return False
    # the command line names the instance directory (pids are reused)
    cmdline = pids.live_cmdline(pid)
    return cmdline is not None and uuid.encode() in cmdline


def wait_gone(pid, uuid, timeout):
    deadline = time.monotonic() + timeout
    while alive(pid, uuid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def kill(pid, uuid, timeout):
    """SIGTERM, then SIGKILL after ``timeout``; waits until the process is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        if not alive(pid, uuid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_gone(pid, uuid, wait):
            return
    raise exception.InternalError(_("cloud-hypervisor %d did not exit") % pid)


def stop(conf, uuid, idir, api=None):
    """``vmm.shutdown``, then a kill if the process is still there; the socket files go."""
    pid = read_pid(idir)
    if alive(pid, uuid):
        own = api is None
        api = api or client.Client(idir.file(API_SOCKET),
                                   timeout=conf.cloudhypervisor.api_timeout)
        try:
            api.shutdown_vmm()
        except client.ApiError as e:
            LOG.warning("vmm.shutdown of instance %s failed: %s", uuid, e)
        finally:
            if own:
                api.close()
        if not wait_gone(pid, uuid, conf.cloudhypervisor.stop_timeout):
            kill(pid, uuid, conf.cloudhypervisor.stop_timeout)
    for name in (API_SOCKET, API_SOCKET + ".lock", PIDFILE):
        _unlink(idir.file(name))
