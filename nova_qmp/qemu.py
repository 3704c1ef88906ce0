"""QEMU command lines and processes for instances (no shell, no libvirt).

QEMU runs under the instance's guest uid, started by the privileged launcher
(``nova_common.launcher``: a transient systemd unit or the detached supervisor, which
reaps it at once); it writes a pidfile, and every file it uses lives in the instance
directory. A zombie counts as gone.
"""
import json
import os
import re
import shlex
import signal
import time

from nova import exception
from nova.i18n import _

from nova_common import consolelog
from nova_common import instance_dir
from nova_common import pids
from nova_common import privsep
from nova_qmp import encryption
from nova_qmp import iscsi

QMP_SOCKET = "qmp.sock"
PIDFILE = "qemu.pid"
CONSOLE_LOG = instance_dir.CONSOLE_LOG
ROOT_DISK = instance_dir.ROOT_DISK
CONFIG_DRIVE = instance_dir.CONFIG_DRIVE
RESCUE_DISK = instance_dir.RESCUE_DISK
ROOT_DEVICE = "virtio-blk-pci,drive=root,id=root-disk,bootindex=1"
VNC_SOCKET = "vnc.sock"
STATE_FILE = instance_dir.STATE_FILE     # guest state while suspended (migration stream)
VNC_BASE_PORT = 5900
HOTPLUG_PORTS = 8              # PCIe root ports for hot-plugged volumes (q35 machines)
HYPERVISOR_LOG = "hypervisor.log"   # QEMU's stdout and stderr, and how it ended
MACHINE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# seccomp filter: no new processes, no privilege changes (QEMU never daemonizes itself)
SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"


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


def command_line(conf, guest, serial_ports=None, vnc_tcp=False):
    """The QEMU argument vector of a guest: its record (size, launch spec, volumes,
    interfaces, rescue) and the current ``[qmp]`` options."""
    q, spec, idir, record = conf.qmp, guest.record.spec, guest.idir, guest.record
    for sock in (QMP_SOCKET, VNC_SOCKET):
        if len(idir.file(sock).encode()) >= 108:
            raise exception.InstanceDeployFailure(
                reason=_("socket path %s is too long for a UNIX socket; use a shorter "
                         "instances_path or [hci_guests]host_state_path") % idir.file(sock),
                instance_id=guest.uuid)
    machine = spec["machine"]
    memory = []
    if shared_memory(spec, record.vifs):
        machine += ",memory-backend=" + GUEST_RAM
        memory = ["-object", memory_backend(record.memory_mb)]
    accel = "tcg,thread=multi" if q.accelerator == "tcg" else q.accelerator
    cpu = q.cpu_model or ("host" if q.accelerator == "kvm" else "max")
    argv = [
        q.qemu_binary, "-name", "guest=%s,debug-threads=on" % record.name,
        "-uuid", guest.uuid,
        "-machine", machine, "-accel", accel, "-cpu", cpu,
        "-smp", str(record.vcpus), "-m", str(record.memory_mb),
        "-nodefaults", "-no-user-config", "-display", "none",
        "-qmp", "unix:%s,server=on,wait=off" % idir.file(QMP_SOCKET),
    ] + memory + console_args(conf, idir, serial_ports, vnc_tcp) + [
        "-device", "VGA",
        "-device", "virtio-rng-pci",
        "-nic", "none",       # interfaces: vif_args()
    ]
    if spec.get("root_disk", True):   # else the boot volume is the root disk
        root = ROOT_DEVICE
        if record.rescued:            # the rescue disk boots; the own disk is second
            root = ROOT_DEVICE.rsplit(",", 1)[0]
            argv += ["-drive", "file=%s,if=none,id=rescue,format=qcow2"
                     % idir.file(RESCUE_DISK),
                     "-device", "virtio-blk-pci,drive=rescue,id=rescue-disk,bootindex=1"]
        argv += ["-drive", "file=%s,if=none,id=root,format=qcow2,discard=unmap"
                 % idir.file(ROOT_DISK), "-device", root]
    argv += local_disk_args(idir, spec.get("local_disks", ()))
    for port in hotplug_ports(machine):
        argv += ["-device", "pcie-root-port,id=%s,chassis=%d,bus=pcie.0"
                 % (port, 16 + int(port[2:]))]
    if spec.get("config_drive"):
        argv += ["-drive", "file=%s,if=none,id=config,format=raw,readonly=on"
                 % idir.file(CONFIG_DRIVE),
                 "-device", "virtio-blk-pci,drive=config,id=config-drive"]
    if q.sandbox:
        argv += ["-sandbox", SANDBOX]
    argv += vif_args(record.vifs, tcg=q.accelerator == "tcg") + \
        volume_args(record.volumes, idir, conf)
    return argv + extra_args(q.extra_args)


def extra_args(text):
    """``[qmp]extra_args`` split as a shell would (quotes; commas stay inside)."""
    try:
        return shlex.split(text or "")
    except ValueError as e:
        raise exception.InvalidInput(reason=_("[qmp]extra_args %(v)r: %(e)s")
                                     % {"v": text, "e": e})


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


def volume_device(volume_id, port=None, boot=False, shared=False, qdev=None):
    """``qdev``: the device's id when it is not the volume's own (after a swap the guest
    keeps its disk, and serial, with the new volume behind it)."""
    node, dev = volume_ids(volume_id)
    serial = (qdev[len("vol-"):] if qdev else volume_id)[:20]
    device = {"driver": "virtio-blk-pci", "drive": node, "id": qdev or dev,
              "serial": serial}
    if shared:              # a multiattach volume: other guests write to it too
        device["share-rw"] = True
    if port:
        device["bus"] = port
    if boot:
        device["bootindex"] = 1
    return device


def volume_args(volumes, idir=None, conf=None):
    """Command-line arguments for the volumes recorded in an instance's metadata (QEMU's
    own iSCSI connections: ``nova_qmp.iscsi``; encrypted volumes: ``nova_qmp.encryption``;
    secrets given encrypted with the instance's master key)."""
    argv = []
    if any(v.get("kind") == iscsi.KIND or v.get("encryption") for v in volumes.values()):
        argv += ["-object", json.dumps(iscsi.master_key_object(idir))]
    for volume_id, vol in sorted(volumes.items()):
        node = volume_ids(volume_id)[0]
        for secret in (iscsi.secret_object(node, vol), encryption.secret_object(node, vol)):
            if secret is not None:
                argv += ["-object", json.dumps(secret)]
        if vol.get("kind") == iscsi.KIND:
            blockdev = iscsi.blockdev(node, vol, iscsi.initiator_name(conf))
        else:
            blockdev = volume_blockdev(volume_id, vol["path"], vol["block"])
        nodes = encryption.blockdevs(node, blockdev) if vol.get("encryption") else \
            [blockdev]
        for bd in nodes:
            argv += ["-blockdev", json.dumps(bd)]
        argv += ["-device", _device_arg(volume_device(volume_id, vol.get("slot"),
                                                      vol.get("boot", False),
                                                      vol.get("shared", False),
                                                      vol.get("qdev")))]
    return argv


GUEST_RAM = "hci-ram"      # the guest RAM's memory backend, when shared
SHARED_MEMORY_SPEC = "hci:shared_memory"     # flavor extra spec: share guest RAM


def shared_memory(spec, vifs):
    """Whether the guest's RAM is shared (a ``memfd`` backend with ``share=on``): when
    it has vhost-user interfaces, whose backend (Open vSwitch with DPDK) maps the guest
    memory to reach its rings and buffers, as libvirt requires; or when its flavor asks
    (``hci:shared_memory=true``, recorded in the launch spec), so that vhost-user ports
    can be hot-plugged later."""
    return bool(spec.get("shared_memory")) or any("vhostuser" in v for v in vifs.values())


def memory_backend(memory_mb):
    return "memory-backend-memfd,id=%s,size=%dM,share=on" % (GUEST_RAM, int(memory_mb))


# QEMU's option parser would split a value at a comma: a socket path must have none
_SOCKET_PATH = re.compile(r"^/[A-Za-z0-9._/-]{1,106}$")


def _socket(path):
    if not isinstance(path, str) or not _SOCKET_PATH.match(path) or \
            ".." in path.split("/"):
        raise exception.InvalidInput(reason=_("vhost-user socket path %r is not a plain "
                                              "absolute path") % path)
    return path


def vif_chardev(vif_id, path):
    """The vhost-user socket, QEMU its server (Open vSwitch's dpdkvhostuserclient
    connects to it, and again after either side restarts); QMP ``chardev-add`` form."""
    return {"id": "c" + vif_ids(vif_id)[0],
            "backend": {"type": "socket", "data": {
                "addr": {"type": "unix", "data": {"path": _socket(path)}},
                "server": True, "wait": False}}}


def vif_ids(vif_id):
    """(netdev id, device id) of a network interface in QEMU."""
    return "n" + vif_id.replace("-", "")[:24], "vif-" + vif_id


def vif_netdev(vif_id, tap, queues=1, vhostuser=None):
    """The tap backend; with ``queues`` > 1 QEMU attaches that many queues of the
    (multi-queue) tap, opening it once per queue by name as its owner. With
    ``vhostuser`` (a socket path): the vhost-user backend on ``vif_chardev``."""
    netdev, _dev = vif_ids(vif_id)
    if vhostuser is not None:
        return {"type": "vhost-user", "id": netdev, "chardev": "c" + netdev}
    netdev = {"type": "tap", "id": netdev, "ifname": tap, "script": "no",
              "downscript": "no"}
    if queues > 1:
        netdev["queues"] = int(queues)
    return netdev


def vif_device(vif_id, mac, port=None, queues=1, intx=False):
    """The virtio-net device; with ``queues`` > 1 multi-queue, with the MSI-X vectors
    libvirt gives it (one per queue of each direction, config and control: 2N + 2).
    ``intx``: no MSI-X (``vectors=0``): QEMU 7.2 under TCG crashes (SIGSEGV in
    ``msix_set_vector_notifiers``) when a vhost-user device starts with MSI-X."""
    netdev, dev = vif_ids(vif_id)
    device = {"driver": "virtio-net-pci", "netdev": netdev, "id": dev, "mac": mac}
    if intx:
        device["vectors"] = 0
    elif queues > 1:
        device.update(mq=True, vectors=2 * int(queues) + 2)
    if port:
        device["bus"] = port
    return device


def _arg(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def _device_arg(device):
    return ",".join([device["driver"]] + ["%s=%s" % (k, _arg(v))
                                          for k, v in device.items() if k != "driver"])


def vif_args(vifs, tcg=False):
    """Command-line arguments for the interfaces recorded in an instance's metadata
    (``tcg``: the accelerator is TCG, see ``vif_device``)."""
    argv = []
    for vif_id, vif in sorted(vifs.items()):
        queues = vif.get("queues", 1)
        vhu = vif.get("vhostuser")
        if vhu is not None:
            chardev = vif_chardev(vif_id, vhu)
            argv += ["-chardev", "socket,id=%s,path=%s,server=on,wait=off"
                     % (chardev["id"], vhu)]
        netdev = vif_netdev(vif_id, vif.get("tap"), queues, vhostuser=vhu)
        argv += ["-netdev", ",".join([netdev["type"]] + [
            "%s=%s" % (k, v) for k, v in netdev.items() if k != "type"])]
        argv += ["-device", _device_arg(vif_device(vif_id, vif["mac"], vif.get("slot"),
                                                   queues, intx=tcg and vhu is not None))]
    return argv


def start(conf, guest, argv):
    """Start QEMU under the guest's uid; returns once its QMP socket is there."""
    check_binary(conf)
    idir = guest.idir
    for name in (PIDFILE, QMP_SOCKET):
        if os.path.exists(idir.file(name)):
            os.unlink(idir.file(name))
    log = idir.file(HYPERVISOR_LOG)
    offset = os.path.getsize(log) if os.path.exists(log) else 0
    try:
        # the supervisor reads the serial console's FIFO into the bounded console.log
        # (QEMU's own -pidfile would be 0600: unreadable for nova's user)
        privsep.start_guest(guest.uuid, argv, guest.record.uid, log,
                            console_max=conf.qmp.console_log_max_bytes,
                            pidfile=idir.file(PIDFILE))
    except Exception as e:
        raise exception.InstanceDeployFailure(
            reason=_("QEMU could not be started: %s") % e, instance_id=guest.uuid)
    deadline = time.monotonic() + conf.qmp.start_timeout
    while True:
        if alive(read_pid(idir), guest.uuid) and os.path.exists(idir.file(QMP_SOCKET)):
            return
        said = _log_since(log, offset)
        ended = "supervisor:" in said and "ended:" in said
        if ended or time.monotonic() > deadline:
            started = read_pid(idir)
            privsep.signal_guest(guest.uuid, signal.SIGKILL,
                                 started if alive(started, guest.uuid) else None)
            why = (_("it exited") if ended else
                   _("it did not start within %ss ([qmp]start_timeout)")
                   % conf.qmp.start_timeout)
            raise exception.InstanceDeployFailure(
                reason=_("QEMU failed to start: %(why)s; its output: %(out)s")
                % {"why": why, "out": said.strip()[-2000:] or "-"},
                instance_id=guest.uuid)
        time.sleep(0.05)


def _log_since(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(65536).decode(errors="replace")
    except FileNotFoundError:
        return ""


def read_pid(idir):
    return pids.read_pid(idir.file(PIDFILE))


def alive(pid, uuid):
    """Whether ``pid`` is a live (not zombie) QEMU of instance ``uuid`` (its UUID one of
    the arguments)."""
    cmdline = pids.live_cmdline(pid)
    return cmdline is not None and uuid.encode() in cmdline.split(b"\0")


def kill(pid, uuid, timeout):
    """SIGTERM, then SIGKILL after ``timeout``, to the instance's processes (through the
    privileged launcher: they run as the guest's uid); waits until the QEMU is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
        if not alive(pid, uuid):
            return
        privsep.signal_guest(uuid, sig, pid)
        deadline = time.monotonic() + wait
        while alive(pid, uuid) and time.monotonic() < deadline:
            time.sleep(0.02)
    if alive(pid, uuid):
        raise exception.InternalError(_("QEMU %d did not exit") % pid)
