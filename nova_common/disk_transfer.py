"""An instance's disks carried to another compute host by a cold migration or a resize.

nova's calls: the source's ``migrate_disk_and_power_off`` (the instance stopped, its
directory kept aside as ``<uuid>_resize``) returns ``disk_info``, which nova hands to the
destination's ``finish_migration``; there is no other channel between the two drivers.

- Source (``export``): each disk file of the kept directory is served read-only over NBD
  by its own ``qemu-nbd`` on the host's migration address, over TLS with the live
  migration's X.509 credentials (server side) unless plain TCP is configured. A
  ``qemu-nbd`` ends by itself once the destination has read its disk and disconnected;
  confirm, revert and delete stop what is left, by the PID in its pid file.
- Destination (``pull``): ``qemu-img convert`` reads each export (client credentials)
  into the new instance directory: the root disk as a qcow2 without backing file (the
  guest's view, sparse), the others raw.
- Shared ``instances_path``: the source writes a probe file of a random name into the
  kept directory; a destination that sees it there shares the storage and copies locally
  (nova's libvirt driver detects shared storage with a test file too).

Why NBD and not libvirt's ssh/rsync (``remote_filesystem_transport``): those need a shell
login between the nova users of the compute hosts; QEMU's own NBD client and server with
the migration certificates need nothing beyond what live migration already configures, keep
the disks sparse, and send nothing in plain text unless plain TCP is configured.
"""
import json
import os
import secrets
import signal
import socket
import time

from nova import exception
from nova.i18n import _
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import netutils

from nova_common import disks
from nova_common import instance_dir
from nova_common import shared_storage

LOG = logging.getLogger(__name__)
PROBE_PREFIX = shared_storage.PROBE_PREFIX
PID_PREFIX = "hci-nbd-"        # <kept dir>/hci-nbd-<disk file>.pid
TLS_ID = "hci-xfer-tls"
PORT_TRIES = 5
STOP_WAIT = 10                 # seconds a stopped qemu-nbd gets before SIGKILL
VERSION = 1


def formats(directory):
    """{disk file: QEMU format} of what a kept instance directory carries."""
    found = {}
    if os.path.exists(os.path.join(directory, instance_dir.ROOT_DISK)):
        found[instance_dir.ROOT_DISK] = "qcow2"
    if os.path.exists(os.path.join(directory, instance_dir.CONFIG_DRIVE)):
        found[instance_dir.CONFIG_DRIVE] = "raw"
    for name in disks.local_disk_names(directory):
        found[name] = "raw"
    return found


def _allowed(name):
    return name in (instance_dir.ROOT_DISK, instance_dir.CONFIG_DRIVE) or (
        name.startswith("disk.") and "/" not in name and name != ".." and
        name.replace(".", "").replace("_", "").isalnum())


def _opt(value):
    """A value inside a QEMU ``key=value,...`` option (commas doubled)."""
    return str(value).replace(",", ",,")


def _free_port(address):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _pid_file(directory, name):
    return os.path.join(directory, PID_PREFIX + name + ".pid")


def write_probe(directory):
    """A file of a random name in ``directory``; returns the name."""
    name = PROBE_PREFIX + secrets.token_hex(8)
    with open(os.path.join(directory, name), "w"):
        pass
    return name


def remove_probes(directory):
    for name in os.listdir(directory) if os.path.isdir(directory) else ():
        if name.startswith(PROBE_PREFIX):
            os.unlink(os.path.join(directory, name))


def export(directory, spec, address, tls_dir, uuid):
    """Serve the disks of the kept ``directory``; returns the description the
    destination's ``pull`` takes. On failure nothing started is left running."""
    if not netutils.is_valid_ip(address):
        raise exception.MigrationPreCheckError(
            reason=_("the migration address %s is not an IP address") % address)
    found = formats(directory)
    served = []
    try:
        for name, fmt in found.items():
            port = _serve(directory, name, fmt, address, tls_dir)
            served.append({"name": name, "format": fmt, "port": port})
            LOG.info("disk %s served on %s:%d for the destination", name, address, port,
                     instance_uuid=uuid)
    except Exception:
        stop_exports(directory)
        raise
    return {"version": VERSION, "address": address, "tls": bool(tls_dir),
            "probe": write_probe(directory), "disks": served, "spec": spec}


def _serve(directory, name, fmt, address, tls_dir):
    argv = ["qemu-nbd", "--fork", "--read-only", "--shared=1", "--format=" + fmt,
            "--export-name=" + name, "--bind=" + address,
            "--pid-file=" + _pid_file(directory, name)]
    if tls_dir:
        argv += ["--object", "tls-creds-x509,id=%s,dir=%s,endpoint=server,"
                 "verify-peer=on" % (TLS_ID, _opt(tls_dir)), "--tls-creds=" + TLS_ID]
    error = None
    for _attempt in range(PORT_TRIES):            # a lost port race is tried again
        port = _free_port(address)
        try:
            processutils.execute(*(argv + ["--port=%d" % port,
                                           os.path.join(directory, name)]))
            return port
        except processutils.ProcessExecutionError as e:
            error = e
    raise exception.MigrationError(reason=_("qemu-nbd could not serve %(name)s: "
                                            "%(err)s") % {
        "name": name, "err": (error.stderr or "").strip()})


def _alive_qemu_nbd(pid, directory):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return bool(argv) and os.path.basename(argv[0]) == b"qemu-nbd" and any(
        a.startswith(os.fsencode(directory)) for a in argv)


def stop_exports(directory):
    """Every ``qemu-nbd`` still serving a disk of ``directory`` stopped, by its PID
    (a PID reused by another process is left alone)."""
    if not os.path.isdir(directory):
        return
    for entry in os.listdir(directory):
        if not (entry.startswith(PID_PREFIX) and entry.endswith(".pid")):
            continue
        path = os.path.join(directory, entry)
        try:
            with open(path) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid > 0 and _alive_qemu_nbd(pid, directory):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT
            while _alive_qemu_nbd(pid, directory) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive_qemu_nbd(pid, directory):
                os.kill(pid, signal.SIGKILL)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def parse(disk_info):
    """The validated description of ``disk_info``; None for a resize on one host.
    ``InvalidInput`` for anything else."""
    if not disk_info:
        return None
    try:
        info = json.loads(disk_info)
    except ValueError:
        raise exception.InvalidInput(reason=_("disk_info is not JSON"))
    if not isinstance(info, dict) or info.get("version") != VERSION:
        raise exception.InvalidInput(reason=_("disk_info of another driver version"))
    if not netutils.is_valid_ip(info.get("address") or ""):
        raise exception.InvalidInput(reason=_("disk_info: a bad address"))
    probe = info.get("probe")
    if not (isinstance(probe, str) and probe.startswith(PROBE_PREFIX) and
            probe[len(PROBE_PREFIX):].isalnum()):
        raise exception.InvalidInput(reason=_("disk_info: a bad probe name"))
    if not isinstance(info.get("spec"), dict) or not isinstance(info.get("disks"), list):
        raise exception.InvalidInput(reason=_("disk_info: no spec or disks"))
    for disk in info["disks"]:
        if not (isinstance(disk, dict) and _allowed(disk.get("name", "")) and
                disk.get("format") in ("qcow2", "raw") and
                isinstance(disk.get("port"), int) and 0 < disk["port"] < 65536):
            raise exception.InvalidInput(reason=_("disk_info: a bad disk %r") % (disk,))
    return info


def shared(info, kept_directory):
    """Whether this host sees the source's probe (the same ``instances_path``)."""
    return os.path.exists(os.path.join(kept_directory, info["probe"]))


def _source(info, disk, tls_dir):
    source = ("driver=nbd,server.type=inet,server.host=%s,server.port=%d,export=%s"
              % (info["address"], disk["port"], disk["name"]))
    objects = []
    if tls_dir:
        objects = ["--object", "tls-creds-x509,id=%s,dir=%s,endpoint=client" % (
            TLS_ID, _opt(tls_dir))]
        source += ",tls-creds=" + TLS_ID
    return objects, source


def release(info, tls_dir, done=()):
    """After a failed fetch: one short visit to each disk not fetched (``done``: the
    names fetched), so that its qemu-nbd on the source ends (errors ignored)."""
    for disk in info["disks"]:
        if disk["name"] in done:
            continue
        objects, source = _source(info, disk, tls_dir)
        try:
            processutils.execute(*(["qemu-img", "info"] + objects +
                                   ["--image-opts", source]))
        except processutils.ProcessExecutionError:
            pass


def pull(info, directory, tls_dir, uuid, fetched=None):
    """Copy each disk of the description into ``directory`` (their names appended to
    ``fetched`` as they are copied); returns the names of the local disks (ephemeral,
    swap) copied. ``MigrationError`` if a copy fails, or if the source serves them
    another way than this host is configured for (TLS or plain TCP)."""
    fetched = [] if fetched is None else fetched
    if info["tls"] != bool(tls_dir):
        raise exception.MigrationError(reason=_(
            "the source serves the disks %(src)s, this host expects %(dst)s") % {
            "src": "over TLS" if info["tls"] else "over plain TCP",
            "dst": "TLS" if tls_dir else "plain TCP"})
    local = []
    for disk in info["disks"]:
        objects, source = _source(info, disk, tls_dir)
        argv = ["qemu-img", "convert", "-q", "-O", disk["format"]] + objects
        target = os.path.join(directory, disk["name"])
        try:
            processutils.execute(*(argv + ["--image-opts", source, target]))
        except processutils.ProcessExecutionError as e:
            raise exception.MigrationError(reason=_(
                "copying disk %(name)s from %(addr)s failed: %(err)s") % {
                "name": disk["name"], "addr": info["address"],
                "err": (e.stderr or "").strip()})
        fetched.append(disk["name"])
        os.chmod(target, 0o600)
        LOG.info("disk %s copied from %s", disk["name"], info["address"],
                 instance_uuid=uuid)
        if disk["name"] not in (instance_dir.ROOT_DISK, instance_dir.CONFIG_DRIVE):
            local.append(disk["name"])
    return local
