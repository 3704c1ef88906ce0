"""The stand-in's guest: QEMU under TCG running what the VmConfig names (kernel,
initramfs and command line, or firmware; raw/qcow2 disks as virtio-blk; NICs on the tap
fds the VMM was handed; the serial port to the file or socket the config says), driven
over QMP for pause/resume, reset, ACPI power button, NMI and PCI hotplug."""
import hashlib
import os
import stat
import subprocess
import time

from qemu.qmp import legacy

from tests.common import process

QEMU = os.environ.get("HCI_QEMU", "qemu-system-x86_64")
MiB = 1024 ** 2


class GuestError(Exception):
    pass


def node(prefix, dev_id):
    """A QEMU node/netdev name for a CH device id (QEMU's are at most 31 characters)."""
    return prefix + hashlib.sha1(dev_id.encode()).hexdigest()[:20]


class Guest:
    def __init__(self, workdir, config, net_fds, log):
        self.workdir, self.config, self.net_fds, self.log = workdir, config, net_fds, log
        self.proc = None
        self.qmp = None
        self.pidfd = None

    # -- command line -------------------------------------------------------------------
    def _disk_args(self, disk):
        fmt = {"Raw": "raw", "Qcow2": "qcow2"}.get(disk.get("image_type"), "raw")
        drive = "file=%s,if=none,id=%s,format=%s,readonly=%s" % (
            disk["path"], node("d", disk["id"]), fmt, "on" if disk.get("readonly") else "off")
        dev = "virtio-blk-pci,drive=%s,id=%s" % (node("d", disk["id"]), disk["id"])
        if disk.get("serial"):
            dev += ",serial=%s" % disk["serial"]
        return drive, dev

    def _net_args(self, net, fd_numbers):
        if fd_numbers:
            netdev = "tap,id=%s,fd=%s" % (node("n", net["id"]), fd_numbers[0])
        else:
            netdev = "tap,id=%s,ifname=%s,script=no,downscript=no" % (
                node("n", net["id"]), net["tap"])
        dev = "virtio-net-pci,netdev=%s,id=%s,mac=%s" % (node("n", net["id"]), net["id"],
                                                         net["mac"])
        return netdev, dev

    def _serial_args(self):
        serial = self.config.get("serial") or {"mode": "Null"}
        mode = serial["mode"]
        if mode == "File":
            return ["-serial", "file:" + serial["file"]]
        if mode == "Socket":
            return ["-chardev", "socket,id=ser0,path=%s,server=on,wait=off"
                    % serial["socket"], "-serial", "chardev:ser0"]
        if mode == "Tty":
            return ["-serial", "stdio"]
        return ["-serial", "null"] if mode == "Null" else []

    def argv(self, pass_fds, incoming=False):
        cfg = self.config
        payload = cfg.get("payload") or {}
        cpus = (cfg.get("cpus") or {}).get("boot_vcpus", 1)
        memory = (cfg.get("memory") or {}).get("size", 512 * MiB) // MiB
        argv = [QEMU, "-machine", "pc", "-accel", "tcg", "-m", str(memory), "-smp",
                str(cpus), "-nodefaults", "-no-user-config", "-display", "none",
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        if payload.get("kernel"):
            argv += ["-kernel", payload["kernel"]]
            if payload.get("initramfs"):
                argv += ["-initrd", payload["initramfs"]]
            if payload.get("cmdline"):
                argv += ["-append", payload["cmdline"]]
        elif payload.get("firmware"):
            argv += ["-bios", payload["firmware"]]
        argv += self._serial_args()
        if cfg.get("rng"):
            argv += ["-device", "virtio-rng-pci"]
        platform = cfg.get("platform") or {}
        if platform.get("system_uuid"):
            argv += ["-uuid", platform["system_uuid"]]
        for disk in cfg.get("disks") or []:
            drive, dev = self._disk_args(disk)
            argv += ["-drive", drive, "-device", dev]
        for net in cfg.get("net") or []:
            fds = self.net_fds.get(net["id"], [])
            pass_fds.extend(fds)
            netdev, dev = self._net_args(net, [str(fd) for fd in fds])
            argv += ["-netdev", netdev, "-device", dev]
        if incoming:
            argv += ["-S", "-incoming", "defer"]
        return argv

    # -- process ------------------------------------------------------------------------
    @property
    def qmp_path(self):
        return os.path.join(self.workdir, "qmp.sock")

    def start(self, incoming=False):
        pass_fds = []
        argv = self.argv(pass_fds, incoming)
        for fd in pass_fds:
            os.set_inheritable(fd, True)
        self.log("guest: %s" % " ".join(argv))
        out = open(os.path.join(self.workdir, "qemu.out"), "ab")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, pass_fds=pass_fds,
                                         preexec_fn=process.die_with_parent)  # noqa: PLW1509
        finally:
            out.close()
        self.pidfd = os.pidfd_open(self.proc.pid)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise GuestError("QEMU exited with %s: %s" % (self.proc.returncode,
                                                              self.output()))
            if os.path.exists(self.qmp_path):
                try:
                    self.qmp = legacy.QEMUMonitorProtocol(self.qmp_path)
                    self.qmp.connect()
                    break
                except OSError:
                    self.qmp = None
            if time.monotonic() > deadline:
                self.stop()
                raise GuestError("QEMU's QMP socket did not answer")
            time.sleep(0.02)
        if not incoming:
            self.cmd("cont") if self.status() != "running" else None

    def output(self):
        try:
            with open(os.path.join(self.workdir, "qemu.out"), errors="replace") as f:
                return f.read()[-2000:]
        except FileNotFoundError:
            return ""

    def cmd(self, name, **args):
        reply = self.qmp.cmd_raw(name, args)
        if "error" in reply:
            raise GuestError("%s: %s" % (name, reply["error"].get("desc")))
        return reply.get("return")

    def status(self):
        return self.cmd("query-status")["status"]

    def exited(self):
        return self.proc is None or self.proc.poll() is not None

    def stop(self):
        if self.qmp is not None:
            try:
                self.qmp.close()
            except Exception:  # noqa: S110 - QEMU may be gone already
                pass
            self.qmp = None
        if self.proc is not None:
            process.stop(self.proc, timeout=5)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        try:
            os.unlink(self.qmp_path)
        except FileNotFoundError:
            pass

    # -- devices ------------------------------------------------------------------------
    def add_disk(self, disk):
        fmt = {"Raw": "raw", "Qcow2": "qcow2"}.get(disk.get("image_type"), "raw")
        # a volume may be a block device (Cloud Hypervisor opens either kind)
        try:
            blk = stat.S_ISBLK(os.stat(disk["path"]).st_mode)
        except OSError:
            blk = False              # QEMU reports the missing file
        proto = "host_device" if blk else "file"
        self.cmd("blockdev-add", **{"driver": fmt, "node-name": node("d", disk["id"]),
                                    "read-only": bool(disk.get("readonly")),
                                    "file": {"driver": proto, "filename": disk["path"]}})
        dev = {"driver": "virtio-blk-pci", "drive": node("d", disk["id"]), "id": disk["id"]}
        if disk.get("serial"):
            dev["serial"] = disk["serial"]
        self.cmd("device_add", **dev)

    def add_net(self, net, fds):
        if fds:
            self.qmp.send_fd_scm(fds[0])
            self.cmd("getfd", fdname=node("n", net["id"]))
            self.cmd("netdev_add", type="tap", id=node("n", net["id"]),
                     fd=node("n", net["id"]))
        else:
            self.cmd("netdev_add", type="tap", id=node("n", net["id"]), ifname=net["tap"],
                     script="no", downscript="no")
        self.cmd("device_add", driver="virtio-net-pci", netdev=node("n", net["id"]),
                 id=net["id"], mac=net["mac"])

    def remove(self, dev_id):
        self.cmd("device_del", id=dev_id)

    def resize_disk(self, dev_id, size):
        self.cmd("block_resize", **{"node-name": node("d", dev_id), "size": size})

    def save(self, fd):
        """Migrate the (paused) guest's state into ``fd``."""
        self.qmp.send_fd_scm(fd)
        self.cmd("getfd", fdname="snapshot")
        self.cmd("migrate", uri="fd:snapshot")
        self._wait_migration()

    def load(self, fd):
        self.qmp.send_fd_scm(fd)
        self.cmd("getfd", fdname="restore")
        self.cmd("migrate-incoming", uri="fd:restore")
        self._wait_migration()

    def _wait_migration(self):
        deadline = time.monotonic() + 300
        while True:
            info = self.cmd("query-migrate")
            if info.get("status") == "completed":
                return
            if info.get("status") in ("failed", "cancelled") or time.monotonic() > deadline:
                raise GuestError("migration %s: %s" % (info.get("status"),
                                                       info.get("error-desc")))
            time.sleep(0.05)
