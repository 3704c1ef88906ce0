"""QEMU command lines and processes for instances (no shell, no libvirt).

QEMU daemonizes itself (``-daemonize``: it returns once the QMP socket listens) and
writes a pidfile; every file it uses lives in the instance directory. A QEMU that exits
is reparented to PID 1, which may reap it late: a zombie counts as gone.
"""
import os
import signal
import time

from nova import exception
from nova.i18n import _
from oslo_concurrency import processutils

QMP_SOCKET = "qmp.sock"
PIDFILE = "qemu.pid"
CONSOLE_LOG = "console.log"
ROOT_DISK = "disk"
CONFIG_DRIVE = "disk.config"
VNC_SOCKET = "vnc.sock"
SERIAL_SOCKET = "serial.sock"
# seccomp filter; with -daemonize (QEMU 7.2) spawn=deny kills QEMU at its fork (SIGSYS) and
# elevateprivileges=deny makes it exit 1 (measured), so those two stay allowed
SANDBOX = "on,obsolete=deny,resourcecontrol=deny"


def arch_of(binary):
    """``qemu-system-x86_64`` -> ``x86_64``."""
    return os.path.basename(binary).rsplit("qemu-system-", 1)[-1]


def command_line(conf, instance, idir, config_drive=False):
    """The QEMU argument vector of an instance (its flavor, disks and sockets)."""
    q = conf.qmp
    for sock in (QMP_SOCKET, VNC_SOCKET):
        if len(idir.file(sock).encode()) >= 108:
            raise exception.InstanceDeployFailure(
                reason=_("socket path %s is too long for a UNIX socket; use a shorter "
                         "instances_path") % idir.file(sock), instance_id=instance.uuid)
    accel = "tcg,thread=multi" if q.accelerator == "tcg" else q.accelerator
    cpu = q.cpu_model or ("host" if q.accelerator == "kvm" else "max")
    argv = [
        q.qemu_binary, "-name", "guest=%s,debug-threads=on" % instance.name,
        "-uuid", instance.uuid,
        "-machine", q.machine_type, "-accel", accel, "-cpu", cpu,
        "-smp", str(instance.flavor.vcpus), "-m", str(instance.flavor.memory_mb),
        "-nodefaults", "-no-user-config", "-display", "none",
        "-daemonize", "-pidfile", idir.file(PIDFILE),
        "-qmp", "unix:%s,server=on,wait=off" % idir.file(QMP_SOCKET),
        "-chardev", "file,id=console,path=%s,append=on" % idir.file(CONSOLE_LOG),
        "-serial", "chardev:console",
        "-vnc", "unix:%s" % idir.file(VNC_SOCKET),
        "-device", "VGA",
        "-drive", "file=%s,if=none,id=root,format=qcow2,discard=unmap" % idir.file(ROOT_DISK),
        "-device", "virtio-blk-pci,drive=root,id=root-disk,bootindex=1",
        "-device", "virtio-rng-pci",
        "-nic", "none",
    ]
    if config_drive:
        argv += ["-drive", "file=%s,if=none,id=config,format=raw,readonly=on"
                 % idir.file(CONFIG_DRIVE),
                 "-device", "virtio-blk-pci,drive=config,id=config-drive"]
    if q.sandbox:
        argv += ["-sandbox", SANDBOX]
    return argv + list(q.extra_args)


def start(conf, instance, argv):
    """Run QEMU; returns once it has daemonized (its QMP socket is listening)."""
    if not os.access(conf.qmp.qemu_binary, os.X_OK):
        raise exception.InternalError(_("QEMU binary %s is missing or not executable")
                                      % conf.qmp.qemu_binary)
    old = os.umask(0o077)     # sockets, pidfile and console log private to this user
    try:
        processutils.execute(*argv, timeout=conf.qmp.start_timeout)
    except (processutils.ProcessExecutionError, OSError) as e:
        raise exception.InstanceDeployFailure(
            reason=_("QEMU failed to start: %s") % getattr(e, "stderr", e),
            instance_id=instance.uuid)
    finally:
        os.umask(old)


def read_pid(idir):
    try:
        with open(idir.file(PIDFILE)) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid, uuid):
    """Whether ``pid`` is a live (not zombie) QEMU of instance ``uuid``."""
    if not pid:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X") and uuid.encode() in cmdline


def kill(pid, uuid, timeout):
    """SIGTERM, then SIGKILL after ``timeout``; waits until the QEMU is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        if not alive(pid, uuid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while alive(pid, uuid) and time.monotonic() < deadline:
            time.sleep(0.02)
    if alive(pid, uuid):
        raise exception.InternalError(_("QEMU %d did not exit") % pid)
