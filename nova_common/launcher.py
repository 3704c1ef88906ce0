"""The privileged side of guest confinement: start a hypervisor process under its guest
uid (a transient systemd unit, or the detached supervisor), signal it, and give it (or
take back) access to a volume's block device.

Called through ``nova_common.privsep.guest_admin`` only; every argument is validated
here against nova.conf (which only root can change), never trusted from the caller.
"""
import ipaddress
import os
import re
import signal
import stat
import subprocess
import sys

from nova import exception
import nova.conf
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import uuidutils

from nova_common import confine
from nova_common import instance_dir
from nova_common import ports as nova_ports

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGKILL)
UNIT = "hci-guest-%s"
SUPERVISOR = b"nova_common.supervisor"
SLICE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\.slice$")


class Refused(ValueError):
    """A request the privileged side does not carry out."""


def _uuid(uuid):
    if not isinstance(uuid, str) or not uuidutils.is_uuid_like(uuid):
        raise Refused("not an instance UUID: %r" % (uuid,))
    return uuid


def _uid(uid):
    if not isinstance(uid, int) or isinstance(uid, bool) or uid not in confine.uid_range():
        raise Refused("uid %r is not in [hci_guests]uid_range" % (uid,))
    return uid


def _instance_file(uuid, path):
    """``path`` inside the instance's host directory (``nova_common.instance_dir``:
    ``<host_state_path or instances_path>/<uuid>/``), after resolving links."""
    top = os.path.realpath(os.path.join(instance_dir.host_root(), uuid))
    real = os.path.realpath(path)
    if os.path.dirname(real) != top:
        raise Refused("%r is not a file of instance %s" % (path, uuid))
    return real


def names_instance(uuid, args):
    """Whether one of ``args`` (str or bytes) is the UUID itself or holds a path in the
    instance's directory (Cloud Hypervisor takes no free-standing argument: its
    ``--api-socket path=<instances_path>/<uuid>/ch.sock`` names the instance)."""
    tops = {os.path.join(root, uuid) + "/"
            for root in (CONF.instances_path, instance_dir.host_root())}
    for a in args:
        text = a.decode(errors="replace") if isinstance(a, bytes) else a
        if text == uuid or any(top in text for top in tops):
            return True
    return False


def _argv(uuid, argv):
    if not isinstance(argv, (list, tuple)) or not argv or \
            not all(isinstance(a, str) and "\0" not in a for a in argv):
        raise Refused("not an argument vector")
    if argv[0] not in CONF.hci_guests.allowed_binaries:
        raise Refused("%r is not in [hci_guests]allowed_binaries" % argv[0])
    if not names_instance(uuid, argv[1:]):
        raise Refused("the command line does not name instance %s" % uuid)
    return list(argv)


def launcher_mode():
    mode = CONF.hci_guests.launcher
    if mode == "auto":
        mode = "systemd" if os.path.isdir("/run/systemd/system") else "detached"
    return mode


def _serial_args(uuid, serial_socket):
    """The supervisor's arguments for a serial port on the UNIX socket ``serial_socket``
    (a file of the instance): its TCP endpoint from nova.conf's ``[serial_console]``
    when that is enabled, never from the caller."""
    args = ["--serial-socket", _instance_file(uuid, serial_socket)]
    sc = CONF.serial_console
    if sc.enabled:
        try:
            host = str(ipaddress.ip_address(sc.proxyclient_address))
        except ValueError:
            raise Refused("[serial_console]proxyclient_address %r is not an IP address"
                          % sc.proxyclient_address)
        try:
            ports = nova_ports.parse_range(sc.port_range)
        except exception.InvalidInput as e:
            raise Refused(str(e))
        args += ["--serial-listen", host,
                 "--serial-ports", "%d:%d" % (ports.start, ports.stop - 1)]
    return args


def start_guest(uuid, argv, uid, log_path, console_max=None, pidfile=None,
                serial_socket=None):
    """Start ``argv`` as ``uid``:``[hci_guests]gid``; with ``console_max``, its
    supervisor keeps the serial console's FIFO read into a console.log bounded at that
    many bytes (``nova_common.consolelog``), or with ``serial_socket`` (a file of the
    instance: a serial port the hypervisor serves there) that socket, which it also
    serves over TCP for nova's serial console proxy (``nova_common.serialbridge``); with
    ``pidfile`` (a file of the instance) it writes the hypervisor's pid there. Returns
    the launcher used."""
    _uuid(uuid)
    _uid(uid)
    if console_max is not None and (not isinstance(console_max, int) or
                                    isinstance(console_max, bool) or
                                    not 65536 <= console_max <= 2 ** 31):
        raise Refused("console log size %r is not 64 KiB..2 GiB" % (console_max,))
    argv = _argv(uuid, argv)
    log_path = _instance_file(uuid, log_path)
    gid = CONF.hci_guests.gid
    directory = os.path.dirname(log_path)
    mode = launcher_mode()
    supervisor = [sys.executable, "-m", "nova_common.supervisor", "--uid", str(uid),
                  "--gid", str(gid), "--dir", directory, "--log", log_path]
    if console_max is not None:
        supervisor += ["--console-max", str(console_max)]
    if pidfile is not None:
        supervisor += ["--pidfile", _instance_file(uuid, pidfile)]
    if serial_socket is not None:
        if console_max is None:
            raise Refused("a serial socket needs a console log size")
        supervisor += _serial_args(uuid, serial_socket)
    if mode == "systemd":
        if not SLICE.match(CONF.hci_guests.slice):
            raise Refused("[hci_guests]slice %r is not a slice name" % CONF.hci_guests.slice)
        # the supervisor is the unit's main process (it drops to the guest uid itself:
        # guest uids have no passwd entry, which systemd's User= would need)
        processutils.execute(
            "systemd-run", "--quiet", "--collect", "--unit", UNIT % uuid,
            "--slice", CONF.hci_guests.slice, "--description",
            "OpenStack guest %s" % uuid,
            "--property", "KillMode=mixed", "--property", "TimeoutStopSec=30",
            "--", *supervisor, "--foreground", "--", *argv)
    else:
        # the supervisor's first process exits at once; the rest detaches
        subprocess.run(supervisor + ["--", *argv], check=True, close_fds=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    LOG.info("started %s as uid %d (%s)", os.path.basename(argv[0]), uid, mode)
    return mode


def _proc_owner_and_cmdline(pid):
    with open("/proc/%d/status" % pid) as f:
        uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        cmdline = f.read().split(b"\0")
    return uid, cmdline


def guest_processes(uuid):
    """PIDs of the hypervisor processes of instance ``uuid``: running as a guest uid,
    with an argument naming the instance (``names_instance``); its supervisor, which
    ends with them, and logs how, is left alone."""
    _uuid(uuid)
    uids, found = confine.uid_range(), []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            uid, cmdline = _proc_owner_and_cmdline(int(name))
        except (OSError, StopIteration, ValueError):
            continue
        if uid in uids and names_instance(uuid, cmdline) and SUPERVISOR not in cmdline:
            found.append(int(name))
    return found


def signal_guest(uuid, signum, pid=None):
    """Send SIGTERM or SIGKILL to the processes of instance ``uuid``, or with ``pid`` to
    that one only if it is one of them (another host's QEMU of the same instance, as
    during a migration between two compute services of one machine, is left alone); how
    many got it."""
    _uuid(uuid)
    if signum not in SIGNALS:
        raise Refused("signal %r is not allowed" % (signum,))
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool) or pid < 2):
        raise Refused("not a process id: %r" % (pid,))
    sent = 0
    for found in guest_processes(uuid):
        if pid is not None and found != pid:
            continue
        try:
            os.kill(found, signum)
            sent += 1
        except ProcessLookupError:
            pass
    return sent


def _mounted_devices():
    devices = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            devices.add(line.split()[2])
    return devices


def _block_device(path):
    real = os.path.realpath(path)
    if not real.startswith("/dev/"):
        raise Refused("%r is not a device node under /dev" % path)
    st = os.stat(real)
    if not stat.S_ISBLK(st.st_mode):
        raise Refused("%r is not a block device" % path)
    if "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)) in _mounted_devices():
        raise Refused("%r is mounted on this host" % path)
    return real


def grant_device(path, uid):
    """The guest uid may read and write the block device ``path`` (a device ACL)."""
    _uid(uid)
    processutils.execute("setfacl", "-m", "u:%d:rw" % uid, _block_device(path))


def revoke_device(path, uid):
    _uid(uid)
    try:
        real = _block_device(path)
    except FileNotFoundError:
        return                    # the connection is gone already
    processutils.execute("setfacl", "-x", "u:%d" % uid, real)


TUN = "/dev/net/tun"


def grant_tun(gid):
    """Guests (group ``[hci_guests]gid``) may open /dev/net/tun to attach to the tap
    devices made for their uids (udev makes it 0666 on most hosts; some keep it 0600).
    Opening it gives nothing else: making a tap still needs CAP_NET_ADMIN."""
    if gid != CONF.hci_guests.gid:
        raise Refused("gid %r is not [hci_guests]gid" % (gid,))
    st = os.stat(TUN)
    if not stat.S_ISCHR(st.st_mode):
        raise Refused("%s is not a character device" % TUN)
    if st.st_mode & 0o006 != 0o006:
        processutils.execute("setfacl", "-m", "g:%d:rw" % gid, TUN)
