"""QEMU command lines and processes for instances (no shell, no libvirt).

QEMU daemonizes itself (``-daemonize``: it returns once the QMP socket listens) and
writes a pidfile; every file it uses lives in the instance directory. A QEMU that exits
is reparented to PID 1, which may reap it late: a zombie counts as gone.
"""
import json
import os
import re
import signal
import subprocess
import time

from nova import exception
from nova.i18n import _
from oslo_concurrency import processutils

from nova_common import consolelog

QMP_SOCKET = "qmp.sock"
PIDFILE = "qemu.pid"
CONSOLE_LOG = "console.log"
ROOT_DISK = "disk"
CONFIG_DRIVE = "disk.config"
RESCUE_DISK = "disk.rescue"
ROOT_DEVICE = "virtio-blk-pci,drive=root,id=root-disk,bootindex=1"
VNC_SOCKET = "vnc.sock"
STATE_FILE = "suspended.state"     # guest state while suspended (QEMU migration stream)
VNC_BASE_PORT = 5900
HOTPLUG_PORTS = 8              # PCIe root ports for hot-plugged volumes (q35 machines)
PRIVATE_FILES = (QMP_SOCKET, VNC_SOCKET, CONSOLE_LOG, PIDFILE)
MACHINE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# seccomp filter; with -daemonize (QEMU 7.2) spawn=deny kills QEMU at its fork (SIGSYS) and
# elevateprivileges=deny makes it exit 1 (measured), so those two stay allowed
SANDBOX = "on,obsolete=deny,resourcecontrol=deny"


def arch_of(binary):
    """``qemu-system-x86_64`` -> ``x86_64``."""
    return os.path.basename(binary).rsplit("qemu-system-", 1)[-1]


def console_args(conf, idir, serial_ports=None, vnc_tcp=False):
    """Serial console and VNC display arguments.

    The serial port always logs to the console log (nova's console output), through the
    FIFO of its bounded logger (``nova_common.consolelog``); with
    ``serial_ports`` (a range) it is also a raw TCP server for nova's serial console proxy
    on the first free port of the range. VNC listens on ``[vnc]server_listen`` on the first
    free port from 5900 with ``vnc_tcp``, else on a UNIX socket in the instance directory.
    QEMU picks the free ports itself when it binds them (no race with other processes);
    ``listening_ports()`` reads them back.
    """
    log = "logfile=%s,logappend=on" % idir.file(consolelog.FIFO)
    if serial_ports:
        serial = ("socket,id=console,host=%s,port=%d,to=%d,server=on,wait=off,telnet=off,%s"
                  % (conf.serial_console.proxyclient_address, serial_ports.start,
                     serial_ports.stop - 1, log))
    else:
        serial = "null,id=console,%s" % log
    if vnc_tcp:
        vnc = "%s:0,to=%d" % (_vnc_host(conf.vnc.server_listen), 65535 - VNC_BASE_PORT)
    else:
        vnc = "unix:%s" % idir.file(VNC_SOCKET)
    return ["-chardev", serial, "-serial", "chardev:console", "-vnc", vnc]


def listening_ports(query_vnc, query_chardev):
    """TCP ports of the VNC display and serial console, from QMP ``query-vnc`` and
    ``query-chardev`` answers (None where they do not listen on TCP)."""
    ports = {"vnc_port": None, "serial_port": None}
    if query_vnc.get("enabled") and query_vnc.get("family") in ("ipv4", "ipv6"):
        ports["vnc_port"] = int(query_vnc["service"])
    for dev in query_chardev:
        match = re.search(r":tcp:.*:(\d+),server", dev["filename"])
        if dev["label"] == "console" and match:
            ports["serial_port"] = int(match.group(1))
    return ports


def _vnc_host(address):
    return "[%s]" % address if ":" in address else address


def machine_type(conf, instance, image_meta):
    """The image's ``hw_machine_type`` if set, else ``[qmp]machine_type``; images that ask
    for what this driver cannot give (UEFI firmware) are refused."""
    props = image_meta.properties
    firmware = props.get("hw_firmware_type")
    if firmware not in (None, "bios"):
        raise exception.ImageUnacceptable(
            image_id=instance.image_ref,
            reason=_("hw_firmware_type=%s is not supported by the QMP driver (BIOS only)")
            % firmware)
    machine = props.get("hw_machine_type") or conf.qmp.machine_type
    if not MACHINE_NAME.match(machine):
        raise exception.ImageUnacceptable(
            image_id=instance.image_ref,
            reason=_("hw_machine_type %r is not a QEMU machine name") % machine)
    return machine


def command_line(conf, instance, idir, machine, config_drive=False, serial_ports=None,
                 vnc_tcp=False, root_disk=True, local_disks=()):
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
        "-machine", machine, "-accel", accel, "-cpu", cpu,
        "-smp", str(instance.flavor.vcpus), "-m", str(instance.flavor.memory_mb),
        "-nodefaults", "-no-user-config", "-display", "none",
        "-daemonize", "-pidfile", idir.file(PIDFILE),
        "-qmp", "unix:%s,server=on,wait=off" % idir.file(QMP_SOCKET),
    ] + console_args(conf, idir, serial_ports, vnc_tcp) + [
        "-device", "VGA",
        "-device", "virtio-rng-pci",
        "-nic", "none",       # interfaces: vif_args()
    ]
    if root_disk:             # else the boot volume is the root disk (volume_args)
        argv += ["-drive", "file=%s,if=none,id=root,format=qcow2,discard=unmap"
                 % idir.file(ROOT_DISK),
                 "-device", ROOT_DEVICE]
    argv += local_disk_args(idir, local_disks)
    for port in hotplug_ports(machine):
        argv += ["-device", "pcie-root-port,id=%s,chassis=%d,bus=pcie.0"
                 % (port, 16 + int(port[2:]))]
    if config_drive:
        argv += ["-drive", "file=%s,if=none,id=config,format=raw,readonly=on"
                 % idir.file(CONFIG_DRIVE),
                 "-device", "virtio-blk-pci,drive=config,id=config-drive"]
    if q.sandbox:
        argv += ["-sandbox", SANDBOX]
    return argv + list(q.extra_args)


def local_disk_args(idir, names):
    """Ephemeral and swap disks (``nova_common.disks``), right after the root disk so
    the guest names them in nova's order (vdb, vdc, ...)."""
    argv = []
    for name in names:
        drive = name.split(".", 1)[1]             # disk.eph0 -> eph0, disk.swap -> swap
        argv += ["-drive", "file=%s,if=none,id=%s,format=raw,discard=unmap"
                 % (idir.file(name), drive),
                 "-device", "virtio-blk-pci,drive=%s,id=%s-disk" % (drive, drive)]
    return argv


def check_binary(conf):
    if not os.access(conf.qmp.qemu_binary, os.X_OK):
        raise exception.InternalError(_("QEMU binary %s is missing or not executable")
                                      % conf.qmp.qemu_binary)


def machine_of(argv):
    """The machine type of a command line made by ``command_line``."""
    return argv[argv.index("-machine") + 1]


def rescue_args(idir, argv):
    """``argv`` booting from the rescue disk, the instance's own disk attached second."""
    if ROOT_DEVICE not in argv:
        raise ValueError("no image root disk to rescue")
    argv = [a if a != ROOT_DEVICE else ROOT_DEVICE.rsplit(",", 1)[0] for a in argv]
    return argv + ["-drive", "file=%s,if=none,id=rescue,format=qcow2" % idir.file(RESCUE_DISK),
                   "-device", "virtio-blk-pci,drive=rescue,id=rescue-disk,bootindex=1"]


def hotplug_ports(machine):
    """PCIe root ports to hot-plug devices into: q35 has no hot-plug on its root bus; the
    i440fx ('pc') machines hot-plug into the root bus itself (an empty list)."""
    return ["hp%d" % i for i in range(HOTPLUG_PORTS)] if "q35" in machine else []


def volume_ids(volume_id):
    """(block node name, device id) of a volume in QEMU (node names: 31 characters)."""
    return "v" + volume_id.replace("-", "")[:24], "vol-" + volume_id


def volume_blockdev(volume_id, path, block_device):
    node, _dev = volume_ids(volume_id)
    return {"driver": "raw", "node-name": node, "discard": "unmap",
            "file": {"driver": "host_device" if block_device else "file",
                     "filename": path, "node-name": node + "f"}}


def volume_device(volume_id, port=None, boot=False):
    node, dev = volume_ids(volume_id)
    device = {"driver": "virtio-blk-pci", "drive": node, "id": dev,
              "serial": volume_id[:20]}
    if port:
        device["bus"] = port
    if boot:
        device["bootindex"] = 1
    return device


def volume_args(volumes):
    """Command-line arguments for the volumes recorded in an instance's metadata."""
    argv = []
    for volume_id, vol in sorted(volumes.items()):
        argv += ["-blockdev", json.dumps(volume_blockdev(volume_id, vol["path"],
                                                         vol["block"]))]
        argv += ["-device", _device_arg(volume_device(volume_id, vol.get("port"),
                                                      vol.get("boot", False)))]
    return argv


def vif_ids(vif_id):
    """(netdev id, device id) of a network interface in QEMU."""
    return "n" + vif_id.replace("-", "")[:24], "vif-" + vif_id


def vif_netdev(vif_id, tap):
    netdev, _dev = vif_ids(vif_id)
    return {"type": "tap", "id": netdev, "ifname": tap, "script": "no",
            "downscript": "no"}


def vif_device(vif_id, mac, port=None):
    netdev, dev = vif_ids(vif_id)
    device = {"driver": "virtio-net-pci", "netdev": netdev, "id": dev, "mac": mac}
    if port:
        device["bus"] = port
    return device


def _device_arg(device):
    return ",".join([device["driver"]] + ["%s=%s" % (k, v) for k, v in device.items()
                                          if k != "driver"])


def vif_args(vifs):
    """Command-line arguments for the interfaces recorded in an instance's metadata."""
    argv = []
    for vif_id, vif in sorted(vifs.items()):
        netdev = vif_netdev(vif_id, vif["tap"])
        argv += ["-netdev", ",".join(["tap"] + ["%s=%s" % (k, v) for k, v in netdev.items()
                                                if k != "type"])]
        argv += ["-device", _device_arg(vif_device(vif_id, vif["mac"], vif.get("port")))]
    return argv


def start(conf, instance, argv):
    """Run QEMU; returns once it has daemonized (its QMP socket is listening)."""
    check_binary(conf)
    directory = os.path.dirname(argv[argv.index("-pidfile") + 1])
    old = os.umask(0o077)     # sockets, pidfile and console log private to this user
    try:
        if any(a.endswith("logfile=%s,logappend=on" % os.path.join(directory,
                                                                    consolelog.FIFO))
               for a in argv):
            # the console log's reader first: QEMU opens the FIFO as it starts
            consolelog.start(directory, conf.qmp.console_log_max_bytes)
        processutils.execute(*argv, timeout=conf.qmp.start_timeout)
    except (processutils.ProcessExecutionError, OSError,
            subprocess.SubprocessError) as e:
        raise exception.InstanceDeployFailure(
            reason=_("QEMU failed to start: %s") % getattr(e, "stderr", e),
            instance_id=instance.uuid)
    finally:
        os.umask(old)
    # QEMU sets its own umask (027) when it daemonizes: what it created since is private
    for name in PRIVATE_FILES:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            os.chmod(path, 0o600)


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
