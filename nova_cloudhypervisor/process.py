"""The cloud-hypervisor process of an instance: command line, start, liveness, stop.

One process per instance, started empty (``--api-socket`` and ``--event-monitor`` only;
the VM comes with ``vm.create`` or ``vm.restore``) under the instance's guest uid by the
privileged launcher (``nova_common.launcher``: a transient systemd unit or the detached
supervisor, which reaps it at once, writes its pidfile and appends its stdout, stderr
and how it ended to ``ch.log``), so it outlives a restart of nova-compute and reaches
only its own instance's files (ACLs, ``nova_common.confine``). It is signalled through
the launcher too. Its pidfile, API socket, event log and log are in the instance
directory.
"""
import os
import signal
import time

from nova import exception
from nova.i18n import _
from oslo_log import log as logging

from nova_cloudhypervisor import client
from nova_cloudhypervisor import vmconfig
from nova_common import pids
from nova_common import privsep
from nova_common import serialbridge

LOG = logging.getLogger(__name__)
API_SOCKET = "ch.sock"
EVENTS = "events.json"
VMM_LOG = "ch.log"
PIDFILE = "ch.pid"
SUN_PATH_MAX = 107          # sockaddr_un.sun_path holds 108 bytes with the final NUL
ENDED = "supervisor:"       # the line the supervisor appends when the VMM ended


def check_binary(conf):
    binary = conf.cloudhypervisor.binary
    if not binary or not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        raise exception.InternalError(
            _("cloud-hypervisor binary %s is missing or not executable") % binary)


def check_socket_path(instance, path):
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise exception.InstanceDeployFailure(
            reason=_("API socket path %s is longer than a UNIX socket path can be (%d "
                     "bytes); use a shorter instances_path or [hci_guests]host_state_path")
                   % (path, SUN_PATH_MAX),
            instance_id=instance.uuid)


def command_line(conf, instance, idir):
    """The argument vector; every value is a path in the instance directory or an option,
    none comes from the user."""
    ch = conf.cloudhypervisor
    sock = idir.file(API_SOCKET)
    check_socket_path(instance, sock)
    check_socket_path(instance, idir.file(vmconfig.SERIAL_SOCKET))
    argv = [ch.binary,
            "--api-socket", "path=" + sock,
            "--event-monitor", "path=" + idir.file(EVENTS),
            "--seccomp", "true" if ch.seccomp else "false"]
    return argv + list(ch.extra_args)


def start(conf, guest, idir):
    """Start the VMM as the guest's uid and wait until its API answers; returns a
    connected ``Client``. A VMM that does not come up is stopped and nothing of it is
    left but its log."""
    check_binary(conf)
    argv = command_line(conf, guest, idir)
    sock = idir.file(API_SOCKET)
    for name in (API_SOCKET, API_SOCKET + ".lock", EVENTS, PIDFILE,
                 vmconfig.SERIAL_SOCKET, serialbridge.PORT_FILE):
        # up to v52 bind() fails on a stale socket; events of an old process are stale
        _unlink(idir.file(name))
    log = idir.file(VMM_LOG)
    offset = os.path.getsize(log) if os.path.exists(log) else 0
    try:
        # the supervisor logs the serial socket into console.log and serves it over TCP
        privsep.start_guest(guest.uuid, argv, guest.record.uid, log,
                            console_max=conf.cloudhypervisor.console_log_max_bytes,
                            pidfile=idir.file(PIDFILE),
                            serial_socket=idir.file(vmconfig.SERIAL_SOCKET))
    except Exception as e:
        raise exception.InstanceDeployFailure(
            reason=_("cloud-hypervisor could not be started: %s") % e,
            instance_id=guest.uuid)
    api = client.Client(sock, timeout=conf.cloudhypervisor.api_timeout)
    deadline = time.monotonic() + conf.cloudhypervisor.start_timeout
    while True:
        said = log_since(idir, offset)
        if ENDED in said:
            api.close()
            _unlink(idir.file(PIDFILE))
            raise exception.InstanceDeployFailure(
                reason=_("cloud-hypervisor exited at start: %s") % said.strip()[-2000:],
                instance_id=guest.uuid)
        pid = read_pid(idir)
        if pid and alive(pid, guest.uuid) and os.path.exists(sock):
            try:
                api.ping()
                return api
            except client.ApiError:
                pass
        if time.monotonic() > deadline:
            api.close()
            kill(pid, guest.uuid, conf.cloudhypervisor.stop_timeout)
            _unlink(idir.file(PIDFILE))
            raise exception.InstanceDeployFailure(
                reason=_("cloud-hypervisor did not answer on %(sock)s within %(t)d s: "
                         "%(log)s") % {"sock": sock, "t": conf.cloudhypervisor.start_timeout,
                                       "log": said.strip()[-2000:] or "-"},
                instance_id=guest.uuid)
        time.sleep(0.01)


def log_since(idir, offset):
    try:
        with open(idir.file(VMM_LOG), "rb") as f:
            f.seek(offset)
            return f.read(65536).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


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
    """SIGTERM, then SIGKILL after ``timeout``, to the instance's guest processes
    (through the privileged launcher: they run as the guest's uid); waits until the VMM
    ``pid`` is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        if not alive(pid, uuid):
            return
        privsep.signal_guest(uuid, sig, pid)
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
    for name in (API_SOCKET, API_SOCKET + ".lock", PIDFILE, vmconfig.SERIAL_SOCKET,
                 serialbridge.PORT_FILE):
        _unlink(idir.file(name))
