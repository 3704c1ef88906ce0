"""One instance's Cloud Hypervisor VMM, as the driver uses it: launch (process, then
``vm.create`` without NICs, ``vm.add-net`` with each tap's fd, ``vm.boot``; or
``vm.restore`` from a snapshot directory with the NICs' fds), and the API client of a
running VMM.

What is launched is recorded in the instance's metadata (``instance.json``): the base
``VmConfig`` (payload, CPUs, memory, image disks, consoles), the volumes and the
interfaces. A launch builds the full config from that record, so a power-on, a resume or
a restart of nova-compute needs nothing else.
"""
import os
import shutil

from nova import exception
from nova.i18n import _
from oslo_log import log as logging

from nova_cloudhypervisor import client
from nova_cloudhypervisor import models
from nova_cloudhypervisor import process
from nova_cloudhypervisor import tap
from nova_cloudhypervisor import vmconfig

LOG = logging.getLogger(__name__)
SNAPSHOT_DIR = "suspended"        # vm.snapshot of a suspended instance
CONSOLE_OLD = "console.old"       # serial output of earlier boots (CH truncates the file)
CONSOLE_KEEP = 100 * 1024


def full_config(meta):
    """The ``VmConfig`` of the record: image disks, then volumes in attach order."""
    config = models.VmConfig.from_json(meta["config"])
    disks = list(config.disks or [])
    vols = sorted(meta.get("volumes", {}).items(), key=lambda kv: kv[1].get("order", 0))
    boot = [(vid, v["path"]) for vid, v in vols if v.get("boot")]
    rest = [(vid, v["path"]) for vid, v in vols if not v.get("boot")]
    disks = ([vmconfig.volume_disk(vid, p) for vid, p in boot] + disks
             + [vmconfig.volume_disk(vid, p) for vid, p in rest])
    config.disks = disks
    return config


def keep_console(idir):
    """Append the serial log of the boot that ended to the log of earlier ones (tail
    kept), before a new boot truncates it."""
    current = idir.file(vmconfig.CONSOLE_LOG)
    if not os.path.exists(current) or not os.path.getsize(current):
        return
    old = idir.file(CONSOLE_OLD)
    with open(current, "rb") as f:
        data = f.read()
    try:
        with open(old, "rb") as f:
            data = f.read() + data
    except FileNotFoundError:
        pass
    fd = os.open(old + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data[-CONSOLE_KEEP:])
    os.rename(old + ".tmp", old)
    os.truncate(current, 0)


def console_output(idir, size=CONSOLE_KEEP):
    data = b""
    for name in (CONSOLE_OLD, vmconfig.CONSOLE_LOG):
        try:
            with open(idir.file(name), "rb") as f:
                data += f.read()
        except FileNotFoundError:
            pass
    return data[-size:]


def add_net(api, vif_id, vif):
    """``vm.add-net`` with the tap's descriptor; returns the PCI info when hot-plugged."""
    fd = tap.open_tap(vif["tap"])
    try:
        return api.add_net(models.NetConfig(id=vmconfig.net_id(vif_id), mac=vif["mac"],
                                            mtu=vif.get("mtu")), fds=[fd])
    finally:
        os.close(fd)


def _net_fds(meta):
    """(``net_fds`` entries, descriptors) of a restore: one tap fd per interface."""
    entries, fds = [], []
    try:
        for vif_id, vif in sorted(meta.get("vifs", {}).items()):
            fds.append(tap.open_tap(vif["tap"]))
            entries.append(models.RestoredNetConfig(id=vmconfig.net_id(vif_id), num_fds=1))
    except OSError:
        for fd in fds:
            os.close(fd)
        raise
    return entries, fds


def launch(conf, instance, idir, meta):
    """Start the VMM and boot (or restore) the recorded VM; returns its client. A launch
    that fails leaves no process behind."""
    keep_console(idir)
    api = process.start(conf, instance, idir)
    snapshot = idir.file(SNAPSHOT_DIR)
    try:
        if os.path.isdir(snapshot):
            entries, fds = _net_fds(meta)
            try:
                api.restore(models.RestoreConfig(source_url="file://" + snapshot,
                                                 net_fds=entries or None), fds=fds)
            finally:
                for fd in fds:
                    os.close(fd)
            api.resume()
            shutil.rmtree(snapshot)
        else:
            api.create(full_config(meta))
            for vif_id, vif in sorted(meta.get("vifs", {}).items()):
                add_net(api, vif_id, vif)
            api.boot()
    except (client.ApiError, OSError) as e:
        LOG.error("launching the VM failed: %s", e, instance=instance)
        process.stop(conf, instance.uuid, idir, api)
        api.close()
        raise exception.InstanceDeployFailure(
            reason=_("Cloud Hypervisor refused the VM: %s") % e, instance_id=instance.uuid)
    LOG.info("VM launched (VMM pid %s)", process.read_pid(idir), instance=instance)
    return api


def suspend(conf, instance, idir, api):
    """``vm.pause``, ``vm.snapshot`` into the instance directory, then the VMM stops."""
    snapshot = idir.file(SNAPSHOT_DIR)
    shutil.rmtree(snapshot, ignore_errors=True)
    os.mkdir(snapshot, 0o700)
    try:
        if api.info().state == "Running":
            api.pause()
        api.snapshot(snapshot)
    except client.ApiError:
        shutil.rmtree(snapshot, ignore_errors=True)
        try:
            api.resume()
        except client.ApiError:
            pass
        raise
    process.stop(conf, instance.uuid, idir, api)
