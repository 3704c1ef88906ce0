"""Cloud Hypervisor bound to the compute base (``nova_common.hypervisor.Hypervisor``).

One ``cloud-hypervisor`` process per guest. ``start`` runs it with only its API socket
and event monitor, then ``vm.create`` (no NICs), ``vm.add-net`` per interface with the
tap's descriptor (SCM_RIGHTS), ``vm.boot``, as libvirt's ch driver and kata do; or, with
a saved state, ``vm.restore`` with the NICs' descriptors and ``vm.resume``. A guest's
poweroff ends its VMM, so "shut off" is "no process".

The launch spec (kept in the instance record) is the ``VmConfig`` without volumes; every
start adds the volumes of the record. Root and rescue disks are handed to the VMM as raw
files: the base makes qcow2 overlays, which the first start flattens (Cloud Hypervisor
refuses backing files unless ``backing_files`` is set, and that path was not verified).
"""
import json
import os
import shutil
import time

from nova import exception
from nova.compute import power_state
import nova.conf
from nova.i18n import _
from nova.network import model as network_model
from nova.virt import event as virtevent
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import versionutils

from nova_cloudhypervisor import client
from nova_cloudhypervisor import events
from nova_cloudhypervisor import models
from nova_cloudhypervisor import process
from nova_cloudhypervisor import tap
from nova_cloudhypervisor import vmconfig
from nova_common import confine
from nova_common import hypervisor as hv_api
from nova_common import instance_dir
from nova_common import serialbridge

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
SNAPSHOT_DIR = "ch-snapshot"      # vm.snapshot of a suspended guest
DETACH_TIMEOUT = 30

STATES = {"Running": power_state.RUNNING, "Paused": power_state.PAUSED,
          "Created": power_state.SHUTDOWN, "Shutdown": power_state.SHUTDOWN,
          "BreakPoint": power_state.PAUSED}
EVENTS = {("vm", "booted"): virtevent.EVENT_LIFECYCLE_STARTED,
          ("vm", "paused"): virtevent.EVENT_LIFECYCLE_PAUSED,
          ("vm", "resumed"): virtevent.EVENT_LIFECYCLE_RESUMED,
          ("vm", "shutdown"): virtevent.EVENT_LIFECYCLE_STOPPED}


def flatten(path):
    """A qcow2 file at ``path`` replaced by a raw copy (sparse; a new file, nova's user's
    only); raw files stay. Whether it was replaced."""
    if not os.path.exists(path):
        return False
    out, _err = processutils.execute("qemu-img", "info", "--output=json", "-U", path)
    if json.loads(out).get("format") != "qcow2":
        return False
    tmp = path + ".raw"
    processutils.execute("qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", path, tmp)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)
    return True


class CloudHypervisor(hv_api.Hypervisor):
    description = hv_api.Description(
        hypervisor_type="kvm",            # nova has no Cloud Hypervisor type; a KVM VMM
        image_formats=("qcow2", "raw"),
        vif_types=(network_model.VIF_TYPE_TAP,),
        optional=frozenset({hv_api.PAUSE, hv_api.NMI, hv_api.SAVE_RESTORE,
                            hv_api.DISK_HOTPLUG, hv_api.DISK_RESIZE, hv_api.NIC_HOTPLUG,
                            hv_api.EXPORT_ROOT, hv_api.RESCUE}),
        confined=True, guest_opens_taps=False)

    def __init__(self):
        self._apis = {}
        self._watcher = None
        self._version = None

    # -- host -------------------------------------------------------------------------------
    def check_host(self):
        process.check_binary(CONF)

    def version(self):
        """``cloud-hypervisor --version`` (``cloud-hypervisor v53.0``) as nova's int."""
        if self._version is None:
            try:
                out, _err = processutils.execute(CONF.cloudhypervisor.binary, "--version")
                text = out.split()[-1].lstrip("v").split("-")[0]
                self._version = versionutils.convert_version_to_int(text)
            except (processutils.ProcessExecutionError, OSError, ValueError, IndexError):
                self._version = 0
        return self._version

    def arch(self):
        return "x86_64"

    def open_events(self, on_event):
        def vmm_event(uuid, source, name):
            transition = EVENTS.get((source, name))
            if transition is not None:
                on_event(uuid, transition)

        self._watcher = events.Watcher(
            vmm_event, lambda uuid: on_event(uuid, virtevent.EVENT_LIFECYCLE_STOPPED))
        self._watcher.start()

    def close_events(self):
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        for api in self._apis.values():
            api.close()
        self._apis = {}

    def reattach(self, guest):
        pid = process.read_pid(guest.idir)
        if not process.alive(pid, guest.uuid):
            return False
        if self._watcher is not None:
            self._watcher.watch(guest.uuid, guest.idir, pid, from_end=True)
        return True

    # -- the API of a guest's VMM -----------------------------------------------------------
    def _api(self, guest):
        if not self.running(guest):
            self._drop(guest.uuid)
            raise exception.InstanceNotRunning(instance_id=guest.uuid)
        api = self._apis.get(guest.uuid)
        if api is None:
            api = client.Client(guest.idir.file(process.API_SOCKET),
                                timeout=CONF.cloudhypervisor.api_timeout)
            self._apis[guest.uuid] = api
        return api

    def _drop(self, uuid):
        api = self._apis.pop(uuid, None)
        if api is not None:
            api.close()

    def _call(self, guest, method, *args):
        try:
            return getattr(self._api(guest), method)(*args)
        except client.ApiError as e:
            raise exception.InternalError(str(e)) from e

    # -- life cycle -------------------------------------------------------------------------
    def launch_spec(self, instance, image_meta, root_disk, config_drive, previous=None):
        mode = vmconfig.boot_mode(CONF, instance, image_meta)
        idir = instance_dir.InstanceDir(instance.uuid)
        for sock in (process.API_SOCKET, vmconfig.SERIAL_SOCKET):
            process.check_socket_path(instance, idir.file(sock))
        config = vmconfig.build(CONF, instance, image_meta, idir, mode,
                                config_drive=config_drive, root_disk=root_disk)
        return {"mode": mode, "config": config.to_json()}

    def full_config(self, guest):
        """The ``VmConfig`` of a start: the spec's, a boot volume first, other volumes
        after the image disks (in attach order), the rescue disk first when rescued."""
        config = models.VmConfig.from_json(guest.record.spec["config"])
        vols = sorted(guest.record.volumes.items(),
                      key=lambda kv: (kv[1].get("slot") or 0, kv[0]))
        boot = [vmconfig.volume_disk(v, d["path"]) for v, d in vols if d.get("boot")]
        rest = [vmconfig.volume_disk(v, d["path"]) for v, d in vols if not d.get("boot")]
        config.disks = boot + list(config.disks or []) + rest
        config.serial = vmconfig.serial(guest.idir)   # records of File-mode releases too
        if guest.record.rescued:
            if not CONF.cloudhypervisor.firmware:
                raise exception.InstanceDeployFailure(
                    reason=_("rescue boots the rescue image through the firmware: set "
                             "[cloudhypervisor]firmware"), instance_id=guest.uuid)
            vmconfig.rescue(CONF, config, guest.idir)
        return config

    def start(self, guest, restore_from=None):
        idir = guest.idir
        snapshot = idir.file(SNAPSHOT_DIR)
        if not restore_from:
            shutil.rmtree(snapshot, ignore_errors=True)      # a discarded saved state
            for name in (vmconfig.ROOT_DISK, vmconfig.RESCUE_DISK):
                if flatten(idir.file(name)):
                    confine.grant_file(idir.file(name), guest.record.uid)   # a new file
            config = self.full_config(guest)
        self._drop(guest.uuid)
        api = process.start(CONF, guest, idir)
        try:
            if restore_from:
                self._restore(guest, api, restore_from)
            else:
                api.create(config)
                for vif_id, vif in sorted(guest.record.vifs.items()):
                    self._add_net(api, vif_id, vif)
                api.boot()
        except (client.ApiError, OSError, ValueError) as e:
            with excutils.save_and_reraise_exception(reraise=False):
                process.stop(CONF, guest.uuid, idir, api)
                api.close()
            # after the stop: a VMM that dropped the connection has ended and its log
            # holds its last words (and how it ended)
            LOG.error("the VMM refused the guest: %s; its log: %s", e,
                      process.log_tail(idir) or "-", instance_uuid=guest.uuid)
            raise exception.InstanceDeployFailure(
                reason=_("Cloud Hypervisor refused the VM: %s") % e, instance_id=guest.uuid)
        self._apis[guest.uuid] = api
        if self._watcher is not None:
            self._watcher.watch(guest.uuid, idir, process.read_pid(idir))

    def _restore(self, guest, api, marker):
        with open(marker) as f:
            snapshot = json.load(f)["snapshot"]
        entries, fds = [], []
        try:
            for vif_id, vif in sorted(guest.record.vifs.items()):
                fds.append(tap.open_tap(vif["tap"]))
                entries.append(models.RestoredNetConfig(id=vmconfig.net_id(vif_id),
                                                        num_fds=1))
            api.restore(models.RestoreConfig(source_url="file://" + snapshot,
                                             net_fds=entries or None), fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        api.resume()
        shutil.rmtree(snapshot, ignore_errors=True)

    @staticmethod
    def _add_net(api, vif_id, vif):
        fd = tap.open_tap(vif["tap"])
        try:
            return api.add_net(models.NetConfig(id=vmconfig.net_id(vif_id), mac=vif["mac"]),
                               fds=[fd])
        finally:
            os.close(fd)

    def stop(self, guest):
        if self._watcher is not None:
            self._watcher.unwatch(guest.uuid)
        api = self._apis.pop(guest.uuid, None)
        try:
            process.stop(CONF, guest.uuid, guest.idir, api)
        finally:
            if api is not None:
                api.close()

    def running(self, guest):
        return process.alive(process.read_pid(guest.idir), guest.uuid)

    def state(self, guest):
        try:
            return STATES.get(self._api(guest).info().state, power_state.NOSTATE)
        except client.NotFound:
            return power_state.SHUTDOWN
        except (client.ApiError, exception.InstanceNotRunning):
            return power_state.NOSTATE

    def request_shutdown(self, guest):
        self._call(guest, "power_button")

    def reset(self, guest):
        self._call(guest, "reboot")

    def console_endpoints(self, guest):
        # no graphics in Cloud Hypervisor; the serial socket's TCP bridge, run by the
        # guest's supervisor with [serial_console] enabled, wrote the port it listens on
        return {"vnc": None, "serial": serialbridge.read_port(guest.idir.host_path)}

    # -- optional operations ----------------------------------------------------------------
    def pause(self, guest):
        self._call(guest, "pause")

    def unpause(self, guest):
        self._call(guest, "resume")

    def inject_nmi(self, guest):
        self._call(guest, "nmi")

    def save(self, guest, path):
        """``vm.snapshot`` (paused) into ``<instance dir>/ch-snapshot``; ``path`` gets a
        small record naming it, which ``start(restore_from=path)`` reads."""
        snapshot = guest.idir.file(SNAPSHOT_DIR)
        api = self._api(guest)
        shutil.rmtree(snapshot, ignore_errors=True)
        os.mkdir(snapshot, 0o700)
        confine.grant_instance_dir(snapshot, guest.record.uid)   # the VMM writes it
        paused = False
        try:
            if api.info().state == "Running":
                api.pause()
                paused = True
            api.snapshot(snapshot)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"snapshot": snapshot}, f)
        except (client.ApiError, OSError) as e:
            shutil.rmtree(snapshot, ignore_errors=True)
            if paused:
                try:
                    api.resume()
                except client.ApiError:
                    LOG.warning("resuming after the failed snapshot failed",
                                instance_uuid=guest.uuid)
            raise exception.InternalError(str(e)) from e

    def _wait_released(self, guest, dev_id):
        """Until the guest has ejected ``dev_id`` (gone from ``vm.info``'s device tree)."""
        deadline = time.monotonic() + DETACH_TIMEOUT
        while True:
            info = self._api(guest).info()
            if dev_id not in (info.device_tree or {}):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def _remove(self, guest, dev_id):
        try:
            self._api(guest).remove_device(dev_id)
            released = self._wait_released(guest, dev_id)
        except client.ApiError as e:
            LOG.error("removing %s failed: %s", dev_id, e, instance_uuid=guest.uuid)
            raise exception.DeviceDetachFailed(device=dev_id, reason=str(e))
        if not released:
            raise exception.DeviceDetachFailed(
                device=dev_id, reason=_("the guest did not release it in %d s")
                % DETACH_TIMEOUT)

    def attach_disk(self, guest, volume_id, volume):
        try:
            self._api(guest).add_disk(vmconfig.volume_disk(volume_id, volume["path"]))
        except client.ApiError as e:
            raise exception.VolumeAttachFailed(volume_id=volume_id, reason=str(e))

    def detach_disk(self, guest, volume_id, volume):
        self._remove(guest, vmconfig.volume_disk_id(volume_id))

    def resize_disk(self, guest, volume_id, volume, size):
        self._call(guest, "resize_disk", vmconfig.volume_disk_id(volume_id), size)

    def attach_nic(self, guest, vif_id, vif):
        try:
            self._add_net(self._api(guest), vif_id, vif)
        except client.ApiError as e:
            raise exception.InternalError(str(e)) from e

    def detach_nic(self, guest, vif_id, vif):
        self._remove(guest, vmconfig.net_id(vif_id))

    def export_root_disk(self, guest, path):
        """Copy the root disk while the guest is paused (CH has no live disk copy)."""
        api = self._api(guest)
        paused = False
        try:
            if api.info().state == "Running":
                api.pause()
                paused = True
            processutils.execute("qemu-img", "convert", "-q", "-U", "-f", "raw", "-O",
                                 "qcow2", guest.idir.file(vmconfig.ROOT_DISK), path)
        except client.ApiError as e:
            raise exception.InternalError(str(e)) from e
        finally:
            if paused:
                api.resume()

    def free_slot(self, guest):
        """An increasing number: the order volumes are attached in (and started with)."""
        used = [v.get("slot") or 0 for v in guest.record.volumes.values()]
        used += [v.get("slot") or 0 for v in guest.record.vifs.values()]
        return 1 + max(used or [0])
