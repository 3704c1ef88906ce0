"""Nova compute driver for Cloud Hypervisor over its REST API.

Loaded with ``compute_driver = cloudhypervisor.CloudHypervisorDriver`` (the
``nova.virt.cloudhypervisor`` shim). One ``cloud-hypervisor`` process per instance, no
libvirt: ``process`` starts and stops it, ``client`` speaks its API, ``vmconfig`` builds
the VM, ``hypervisor`` launches, suspends and resumes it, ``events`` turns its
event-monitor log and its exit into lifecycle events. Instance files, disks, host
resources, taps and volumes come from ``nova_common``. What Cloud Hypervisor cannot do
(VNC and other graphical consoles, live migration) raises ``NotImplementedError`` as
nova's base class does.
"""
import os
import shutil
import time

from nova import exception
from nova.compute import power_state
from nova.compute import task_states
import nova.conf
from nova.i18n import _
from nova.image import glance
from nova.virt import configdrive
from nova.virt import driver
from nova.virt import event as virtevent
from nova.virt import hardware
from nova.virt import images
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import versionutils

from nova_cloudhypervisor import client
from nova_cloudhypervisor import events
from nova_cloudhypervisor import hypervisor
from nova_cloudhypervisor import models
from nova_cloudhypervisor import opts
from nova_cloudhypervisor import process
from nova_cloudhypervisor import vmconfig
from nova_common import disks
from nova_common import host
from nova_common import instance_dir
from nova_common import lifecycle
from nova_common import vifs
from nova_common import volumes

CONF = nova.conf.CONF
opts.register(CONF)
LOG = logging.getLogger(__name__)
GiB = 1024 ** 3

STATES = {"Running": power_state.RUNNING, "Paused": power_state.PAUSED,
          "Created": power_state.SHUTDOWN, "Shutdown": power_state.SHUTDOWN,
          "BreakPoint": power_state.PAUSED}
EVENTS = {("vm", "booted"): virtevent.EVENT_LIFECYCLE_STARTED,
          ("vm", "paused"): virtevent.EVENT_LIFECYCLE_PAUSED,
          ("vm", "resumed"): virtevent.EVENT_LIFECYCLE_RESUMED,
          ("vm", "rebooted"): virtevent.EVENT_LIFECYCLE_STARTED,
          ("vm", "shutdown"): virtevent.EVENT_LIFECYCLE_STOPPED}


class CloudHypervisorDriver(driver.ComputeDriver):
    capabilities = dict(
        driver.ComputeDriver.capabilities,
        supports_image_type_qcow2=True,       # converted to raw in the image cache
        supports_image_type_raw=True,
        supports_image_type_aki=True,         # kernels and ramdisks for direct boot
        supports_image_type_ari=True,
        supports_image_type_ami=False,
        supports_image_type_iso=False,
        supports_image_type_vdi=False,
        supports_image_type_vhd=False,
        supports_image_type_vhdx=False,
        supports_image_type_vmdk=False,
        supports_image_type_ploop=False,
        supports_extend_volume=True,
        supports_attach_interface=True,
        supports_multiattach=False,
        supports_evacuate=False,
    )

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        self._events = lifecycle.Dispatcher(self.emit_event)
        self._watcher = events.Watcher(self._on_vmm_event, self._on_vmm_exit)
        self._apis = {}
        self._quiet = set()       # instances whose VMM events the driver itself causes
        self._version = None
        self._image_api = glance.API()

    # -- service start ----------------------------------------------------------------------
    def init_host(self, host):
        process.check_binary(CONF)
        os.makedirs(CONF.instances_path, exist_ok=True)
        self._events.start()
        self._watcher.start()
        for uuid in instance_dir.list_uuids():
            idir = instance_dir.InstanceDir(uuid)
            pid = process.read_pid(idir)
            if process.alive(pid, uuid):
                # left running by the previous nova-compute: managed again as it is
                self._watcher.watch(uuid, idir, pid, from_end=True)
                LOG.info("VMM %s of instance %s is running: managed again", pid, uuid)

    def cleanup_host(self, host):
        # the VMMs keep running; the next nova-compute manages them again
        self._watcher.stop()
        for api in self._apis.values():
            api.close()
        self._apis = {}

    def _on_vmm_event(self, uuid, source, event):
        transition = EVENTS.get((source, event))
        if transition is not None and uuid not in self._quiet:
            self._events.post(uuid, transition)

    def _on_vmm_exit(self, uuid):
        if uuid not in self._quiet:
            self._events.post(uuid, virtevent.EVENT_LIFECYCLE_STOPPED)

    # -- inventory --------------------------------------------------------------------------
    def list_instance_uuids(self):
        return instance_dir.list_uuids()

    def list_instances(self):
        return [(instance_dir.InstanceDir(u).read_meta() or {}).get("name", u)
                for u in instance_dir.list_uuids()]

    def instance_exists(self, instance):
        return instance_dir.InstanceDir(instance.uuid).read_meta() is not None

    def _idir(self, instance):
        idir = instance_dir.InstanceDir(instance.uuid)
        if idir.read_meta() is None:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        return idir

    def _running(self, instance, idir):
        return process.alive(process.read_pid(idir), instance.uuid)

    def _api(self, instance, idir=None):
        """The client of the instance's running VMM (InstanceNotRunning if none)."""
        idir = idir or self._idir(instance)
        if not self._running(instance, idir):
            self._drop_api(instance.uuid)
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        api = self._apis.get(instance.uuid)
        if api is None:
            api = client.Client(idir.file(process.API_SOCKET),
                                timeout=CONF.cloudhypervisor.api_timeout)
            self._apis[instance.uuid] = api
        return api

    def _drop_api(self, uuid):
        api = self._apis.pop(uuid, None)
        if api is not None:
            api.close()

    def _call(self, instance, method, *args):
        try:
            return getattr(self._api(instance), method)(*args)
        except client.ApiError as e:
            raise exception.InternalError(str(e)) from e

    def get_info(self, instance, use_cache=True):
        idir = self._idir(instance)
        if not self._running(instance, idir):
            saved = os.path.isdir(idir.file(hypervisor.SNAPSHOT_DIR))
            return hardware.InstanceInfo(
                state=power_state.SUSPENDED if saved else power_state.SHUTDOWN)
        try:
            state = self._api(instance, idir).info().state
        except client.NotFound:
            return hardware.InstanceInfo(state=power_state.SHUTDOWN)
        except (client.ApiError, exception.InstanceNotRunning):
            return hardware.InstanceInfo(state=power_state.NOSTATE)
        return hardware.InstanceInfo(state=STATES.get(state, power_state.NOSTATE))

    def get_available_nodes(self, refresh=False):
        return [CONF.host]

    def _hypervisor_version(self):
        """``cloud-hypervisor --version`` as an int (v53.0 -> 53000000), read once."""
        if self._version is None:
            try:
                out, _err = processutils.execute(CONF.cloudhypervisor.binary, "--version")
                text = out.split()[-1].lstrip("v").split("-")[0]
                self._version = versionutils.convert_version_to_int(text)
            except (processutils.ProcessExecutionError, OSError, ValueError, IndexError):
                self._version = 0
        return self._version

    def get_available_resource(self, nodename):
        vcpus = 0
        for uuid in instance_dir.list_uuids():
            vcpus += (instance_dir.InstanceDir(uuid).read_meta() or {}).get("vcpus", 0)
        # nova's hypervisor types have no Cloud Hypervisor; it is a KVM VMM
        return host.available_resource(nodename, "kvm",
                                       self._hypervisor_version(), "x86_64",
                                       vcpus_used=vcpus)

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        host.update_provider_tree(self, provider_tree, nodename,
                                  self.get_available_resource(nodename))

    def get_host_ip_addr(self):
        return CONF.my_ip

    def get_host_uptime(self):
        return host.uptime()

    # -- spawn / destroy --------------------------------------------------------------------
    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        mappings = driver.block_device_info_get_mapping(block_device_info)
        root_volume = self._root_volume(block_device_info, mappings)
        # refused before anything is made
        mode = vmconfig.boot_mode(CONF, instance, image_meta)
        if root_volume is None and mode == "firmware":
            disks.check_image(instance, image_meta)
        process.check_binary(CONF)
        idir = instance_dir.InstanceDir(instance.uuid)
        process.check_socket_path(instance, idir.file(process.API_SOCKET))
        for vif in network_info or []:
            vifs.check(vif)
        idir.create()
        try:
            if mode == "kernel":
                self._fetch_kernel(context, instance, idir)
            if root_volume is None:
                self._create_root_disk(context, instance, idir.file(vmconfig.ROOT_DISK))
            with_config = configdrive.required_by(instance)
            if with_config:
                disks.create_config_drive(context, instance, injected_files, admin_password,
                                          network_info, idir.file(vmconfig.CONFIG_DRIVE))
            config = vmconfig.build(CONF, instance, image_meta, idir, mode,
                                    config_drive=with_config,
                                    root_disk=root_volume is None)
            meta = {"name": instance.name, "vcpus": instance.flavor.vcpus,
                    "memory_mb": instance.flavor.memory_mb, "mode": mode,
                    "config": config.to_json(), "vifs": {}, "volumes": {}}
            idir.write_meta(meta)
            for vif in network_info or []:
                self._plug(instance, meta, vif)
                idir.write_meta(meta)
            for bdm in mappings:
                self._connect_volume(meta, bdm["connection_info"], boot=bdm is root_volume)
                idir.write_meta(meta)
            if power_on:
                self._launch(instance, idir)
        except Exception:
            self._undo_spawn(instance, idir, network_info, block_device_info)
            raise
        LOG.info("instance spawned", instance=instance)

    def _undo_spawn(self, instance, idir, network_info, block_device_info):
        self._stop(instance, idir)
        self.unplug_vifs(instance, network_info)
        self._disconnect_volumes(idir, block_device_info)
        idir.remove()

    def _fetch_kernel(self, context, instance, idir):
        images.fetch(context, instance.kernel_id, idir.file(vmconfig.KERNEL),
                     trusted_certs=instance.trusted_certs)
        if instance.ramdisk_id:
            images.fetch(context, instance.ramdisk_id, idir.file(vmconfig.RAMDISK),
                         trusted_certs=instance.trusted_certs)

    @staticmethod
    def _create_root_disk(context, instance, path, image_id=None):
        """A raw copy (sparse) of the cached raw base, grown to the flavor's root size:
        Cloud Hypervisor refuses qcow2 backing files unless told to allow them."""
        base = disks.fetch_base(context, instance, image_id)
        processutils.execute("qemu-img", "convert", "-q", "-f", "raw", "-O", "raw",
                             base, path)
        os.chmod(path, 0o600)
        size = instance.flavor.root_gb * GiB
        if size > os.path.getsize(path):
            os.truncate(path, size)

    @staticmethod
    def _root_volume(block_device_info, mappings):
        root = driver.block_device_info_get_root_device(block_device_info)
        for bdm in mappings:
            if bdm.get("boot_index") == 0 or (root and bdm.get("mount_device") == root):
                return bdm
        return None

    def _launch(self, instance, idir):
        self._drop_api(instance.uuid)
        self._quiet.add(instance.uuid)
        try:
            api = hypervisor.launch(CONF, instance, idir, idir.read_meta())
        finally:
            self._quiet.discard(instance.uuid)
        self._apis[instance.uuid] = api
        self._watcher.watch(instance.uuid, idir, process.read_pid(idir))

    def _stop(self, instance, idir):
        """Stop the VMM (vmm.shutdown, then signals), without lifecycle events."""
        self._watcher.unwatch(instance.uuid)
        api = self._apis.pop(instance.uuid, None)
        try:
            if idir.exists():
                process.stop(CONF, instance.uuid, idir, api)
        finally:
            if api is not None:
                api.close()

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        idir = instance_dir.InstanceDir(instance.uuid)
        self._stop(instance, idir)
        self.unplug_vifs(instance, network_info)
        self._disconnect_volumes(idir, block_device_info)
        if destroy_disks:
            idir.remove()
        LOG.info("instance destroyed", instance=instance)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        if destroy_disks:
            instance_dir.InstanceDir(instance.uuid).remove()

    # -- power ------------------------------------------------------------------------------
    def power_off(self, instance, timeout=0, retry_interval=0):
        """ACPI power button (pressed again every ``retry_interval`` s) for up to
        ``timeout`` s; the guest's poweroff ends its VMM. Then the VMM is stopped."""
        idir = self._idir(instance)
        if timeout and self._running(instance, idir):
            self._quiet.add(instance.uuid)
            try:
                deadline = time.monotonic() + timeout
                pressed = 0.0
                while self._running(instance, idir) and time.monotonic() < deadline:
                    if time.monotonic() - pressed >= (retry_interval or timeout):
                        try:
                            self._api(instance, idir).power_button()
                        except (client.ApiError, exception.InstanceNotRunning):
                            pass
                        pressed = time.monotonic()
                    time.sleep(0.1)
            finally:
                self._quiet.discard(instance.uuid)
        self._stop(instance, idir)
        LOG.info("instance powered off", instance=instance)

    def power_on(self, context, instance, network_info, block_device_info=None,
                 accel_info=None, share_info=None):
        idir = self._idir(instance)
        if not self._running(instance, idir):
            self._launch(instance, idir)
        LOG.info("instance powered on", instance=instance)

    def reboot(self, context, instance, network_info, reboot_type, block_device_info=None,
               bad_volumes_callback=None, accel_info=None, share_info=None):
        """Soft: power button, the guest powers off, a new VMM boots it (hard if it does
        not go down in ``[cloudhypervisor]soft_reboot_timeout``). Hard: ``vm.reboot``."""
        idir = self._idir(instance)
        if not self._running(instance, idir):
            self._launch(instance, idir)
            return
        if reboot_type == "SOFT":
            self._quiet.add(instance.uuid)
            try:
                self._call(instance, "power_button")
                pid = process.read_pid(idir)
                if process.wait_gone(pid, instance.uuid,
                                     CONF.cloudhypervisor.soft_reboot_timeout):
                    self._stop(instance, idir)
                    self._launch(instance, idir)
                    LOG.info("instance rebooted (soft)", instance=instance)
                    return
                LOG.warning("the guest did not power off: hard reboot", instance=instance)
            finally:
                self._quiet.discard(instance.uuid)
        hypervisor.keep_console(idir)
        self._call(instance, "reboot")
        LOG.info("instance rebooted (hard)", instance=instance)

    def pause(self, instance):
        self._call(instance, "pause")
        LOG.info("instance paused", instance=instance)

    def unpause(self, instance):
        self._call(instance, "resume")
        LOG.info("instance unpaused", instance=instance)

    def suspend(self, context, instance):
        """Guest state to ``<instance dir>/suspended`` (``vm.snapshot``); no VMM runs
        while suspended."""
        idir = self._idir(instance)
        self._quiet.add(instance.uuid)
        try:
            self._watcher.unwatch(instance.uuid)
            try:
                hypervisor.suspend(CONF, instance, idir, self._api(instance, idir))
            except client.ApiError as e:
                self._watcher.watch(instance.uuid, idir, process.read_pid(idir))
                raise exception.InternalError(str(e)) from e
            self._drop_api(instance.uuid)
        finally:
            self._quiet.discard(instance.uuid)
        LOG.info("instance suspended", instance=instance)

    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        idir = self._idir(instance)
        if not self._running(instance, idir):
            self._launch(instance, idir)     # restores the snapshot if there is one
        LOG.info("instance resumed", instance=instance)

    def resume_state_on_host_boot(self, context, instance, network_info,
                                  block_device_info=None):
        idir = self._idir(instance)
        if not self._running(instance, idir):
            self._launch(instance, idir)

    def trigger_crash_dump(self, instance):
        self._call(instance, "nmi")

    # -- consoles ---------------------------------------------------------------------------
    def get_console_output(self, context, instance):
        return hypervisor.console_output(self._idir(instance))

    # -- volumes ----------------------------------------------------------------------------
    def get_volume_connector(self, instance):
        return volumes.connector_properties()

    @staticmethod
    def _volume_id(connection_info):
        return connection_info["data"].get("volume_id") or connection_info["serial"]

    def _connect_volume(self, meta, connection_info, boot=False):
        volume_id = self._volume_id(connection_info)
        path, device_info = volumes.connect(connection_info)
        order = 1 + max([v.get("order", 0) for v in meta.get("volumes", {}).values()]
                        or [0])
        vol = {"path": path, "boot": boot, "device_info": device_info, "order": order}
        meta.setdefault("volumes", {})[volume_id] = vol
        return volume_id, vol

    def _disconnect_volumes(self, idir, block_device_info):
        known = (idir.read_meta() or {}).get("volumes", {}) if idir.exists() else {}
        for bdm in driver.block_device_info_get_mapping(block_device_info):
            info = bdm["connection_info"]
            vol = known.get(self._volume_id(info), {})
            try:
                volumes.disconnect(info, vol.get("device_info"))
            except Exception:
                LOG.exception("disconnecting volume %s failed", self._volume_id(info))

    def attach_volume(self, context, connection_info, instance, mountpoint, disk_bus=None,
                      device_type=None, encryption=None):
        if encryption:
            raise NotImplementedError(_("encrypted volumes are not supported"))
        idir = self._idir(instance)
        meta = idir.read_meta()
        volume_id, vol = self._connect_volume(meta, connection_info)
        try:
            if self._running(instance, idir):
                self._api(instance, idir).add_disk(
                    vmconfig.volume_disk(volume_id, vol["path"]))
        except Exception as e:
            meta["volumes"].pop(volume_id, None)
            volumes.disconnect(connection_info, vol["device_info"])
            if isinstance(e, client.ApiError):
                raise exception.VolumeAttachFailed(volume_id=volume_id, reason=str(e))
            raise
        idir.write_meta(meta)
        LOG.info("volume %s attached", volume_id, instance=instance)

    def detach_volume(self, context, connection_info, instance, mountpoint,
                      encryption=None):
        idir = self._idir(instance)
        meta = idir.read_meta()
        volume_id = self._volume_id(connection_info)
        vol = meta.get("volumes", {}).get(volume_id)
        if vol is None:
            raise exception.DiskNotFound(location=mountpoint)
        if self._running(instance, idir):
            try:
                self._api(instance, idir).remove_device(vmconfig.volume_disk_id(volume_id))
            except client.ApiError as e:
                raise exception.InternalError(str(e)) from e
        del meta["volumes"][volume_id]
        idir.write_meta(meta)
        volumes.disconnect(connection_info, vol.get("device_info"))
        LOG.info("volume %s detached", volume_id, instance=instance)

    def extend_volume(self, context, connection_info, instance, requested_size):
        idir = self._idir(instance)
        volume_id = self._volume_id(connection_info)
        vol = idir.read_meta().get("volumes", {}).get(volume_id)
        if vol is None:
            raise exception.VolumeNotFound(volume_id=volume_id)
        size = volumes.extend(connection_info, vol["path"]) or requested_size
        if self._running(instance, idir):
            try:
                self._api(instance, idir).resize_disk(vmconfig.volume_disk_id(volume_id),
                                                      size)
            except client.ApiError as e:
                raise exception.ExtendVolumeNotSupported() from e
        elif not volumes.is_block_device(vol["path"]):
            os.truncate(vol["path"], size)
        LOG.info("volume %s extended to %d bytes", volume_id, size, instance=instance)

    # -- interfaces -------------------------------------------------------------------------
    def _plug(self, instance, meta, vif):
        network = vif.get("network") or {}
        mtu = network.get_meta("mtu") if network else None
        meta.setdefault("vifs", {})[vif["id"]] = {
            "tap": vifs.plug(instance, vif), "mac": vif["address"], "mtu": mtu}

    def plug_vifs(self, instance, network_info):
        for vif in network_info or []:
            vifs.plug(instance, vif)

    def unplug_vifs(self, instance, network_info):
        for vif in network_info or []:
            vifs.unplug(instance, vif)

    def attach_interface(self, context, instance, image_meta, vif):
        vifs.check(vif)
        idir = self._idir(instance)
        meta = idir.read_meta()
        self._plug(instance, meta, vif)
        try:
            if self._running(instance, idir):
                hypervisor.add_net(self._api(instance, idir), vif["id"],
                                   meta["vifs"][vif["id"]])
        except (client.ApiError, OSError) as e:
            meta["vifs"].pop(vif["id"], None)
            vifs.unplug(instance, vif)
            raise exception.InterfaceAttachFailed(instance_uuid=instance.uuid) from e
        idir.write_meta(meta)
        LOG.info("interface %s attached", vif["id"], instance=instance)

    def detach_interface(self, context, instance, vif):
        idir = self._idir(instance)
        meta = idir.read_meta()
        if vif["id"] not in meta.get("vifs", {}):
            raise exception.NotFound(_("interface %s is not attached") % vif["id"])
        if self._running(instance, idir):
            try:
                self._api(instance, idir).remove_device(vmconfig.net_id(vif["id"]))
            except client.ApiError as e:
                raise exception.InterfaceDetachFailed(instance_uuid=instance.uuid) from e
        del meta["vifs"][vif["id"]]
        idir.write_meta(meta)
        vifs.unplug(instance, vif)
        LOG.info("interface %s detached", vif["id"], instance=instance)

    # -- snapshots --------------------------------------------------------------------------
    def snapshot(self, context, instance, image_id, update_task_state):
        """The root disk as a qcow2 image in Glance, copied while the guest is paused
        (Cloud Hypervisor has no disk snapshot of a running VM)."""
        idir = self._idir(instance)
        image = self._image_api.get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        path = idir.file("snapshot-%s.qcow2" % image_id)
        paused_here = False
        try:
            if self._running(instance, idir):
                api = self._api(instance, idir)
                if api.info().state == "Running":
                    self._quiet.add(instance.uuid)
                    api.pause()
                    paused_here = True
            try:
                processutils.execute("qemu-img", "convert", "-q", "-U", "-f", "raw",
                                     "-O", "qcow2", idir.file(vmconfig.ROOT_DISK), path)
            finally:
                if paused_here:
                    self._api(instance, idir).resume()
                    self._quiet.discard(instance.uuid)
            update_task_state(task_state=task_states.IMAGE_UPLOADING,
                              expected_state=task_states.IMAGE_PENDING_UPLOAD)
            metadata = {"name": image["name"], "status": "active",
                        "disk_format": "qcow2", "container_format": "bare",
                        "properties": {"image_location": "snapshot",
                                       "image_state": "available",
                                       "owner_id": instance.project_id}}
            with open(path, "rb") as f:
                self._image_api.update(context, image_id, metadata, f, purge_props=False)
        except client.ApiError as e:
            raise exception.InternalError(str(e)) from e
        finally:
            self._quiet.discard(instance.uuid)
            if os.path.exists(path):
                os.unlink(path)
        LOG.info("snapshot %s uploaded", image_id, instance=instance)

    # -- rescue -----------------------------------------------------------------------------
    def rescue(self, context, instance, network_info, image_meta, rescue_password,
               block_device_info, share_info=None):
        """Boot the rescue image's disk first, the instance's own disk second."""
        idir = self._idir(instance)
        image_id = image_meta.id if "id" in image_meta else instance.image_ref
        disks.check_image(instance, image_meta)
        if not CONF.cloudhypervisor.firmware:
            raise exception.ImageUnacceptable(
                image_id=image_id, reason=_("rescue needs [cloudhypervisor]firmware"))
        self._stop(instance, idir)
        self._create_root_disk(context, instance, idir.file(vmconfig.RESCUE_DISK), image_id)
        meta = idir.read_meta()
        meta["normal_config"] = meta["config"]
        config = models.VmConfig.from_json(meta["config"])
        config.payload = models.PayloadConfig(
            firmware=CONF.cloudhypervisor.firmware)
        config.disks = [models.DiskConfig(
            path=idir.file(vmconfig.RESCUE_DISK), id=vmconfig.RESCUE_ID,
            image_type="Raw")] + list(config.disks or [])
        meta["config"] = config.to_json()
        idir.write_meta(meta)
        self._launch(instance, idir)
        LOG.info("instance rescued", instance=instance)

    def unrescue(self, context, instance):
        idir = self._idir(instance)
        self._stop(instance, idir)
        meta = idir.read_meta()
        if "normal_config" in meta:
            meta["config"] = meta.pop("normal_config")
            idir.write_meta(meta)
        if os.path.exists(idir.file(vmconfig.RESCUE_DISK)):
            os.unlink(idir.file(vmconfig.RESCUE_DISK))
        self._launch(instance, idir)
        LOG.info("instance unrescued", instance=instance)

    # -- cold resize on this host -----------------------------------------------------------
    def _resize_dir(self, instance):
        return instance_dir.InstanceDir(instance.uuid, suffix="_resize")

    def migrate_disk_and_power_off(self, context, instance, dest, flavor, network_info,
                                   block_device_info=None, timeout=0, retry_interval=0):
        if dest not in (CONF.host, CONF.my_ip):
            raise exception.MigrationPreCheckError(
                reason=_("the Cloud Hypervisor driver resizes on the same host only"))
        idir = self._idir(instance)
        if flavor.root_gb * GiB < os.path.getsize(idir.file(vmconfig.ROOT_DISK)) \
                if os.path.exists(idir.file(vmconfig.ROOT_DISK)) else False:
            raise exception.InstanceFaultRollback(exception.ResizeError(
                reason=_("the root disk cannot shrink")))
        self.power_off(instance, timeout, retry_interval)
        backup = self._resize_dir(instance)
        backup.remove()
        shutil.copytree(idir.path, backup.path)
        return "{}"

    def finish_migration(self, context, migration, instance, disk_info, network_info,
                         image_meta, resize_instance, allocations, block_device_info=None,
                         power_on=True):
        idir = self._idir(instance)
        meta = idir.read_meta()
        flavor = instance.flavor
        config = models.VmConfig.from_json(meta["config"])
        config.cpus = models.CpusConfig(boot_vcpus=flavor.vcpus,
                                                   max_vcpus=flavor.vcpus)
        config.memory = models.MemoryConfig(size=flavor.memory_mb * 1024 ** 2)
        meta.update(config=config.to_json(), vcpus=flavor.vcpus,
                    memory_mb=flavor.memory_mb)
        root = idir.file(vmconfig.ROOT_DISK)
        if resize_instance and os.path.exists(root) \
                and flavor.root_gb * GiB > os.path.getsize(root):
            os.truncate(root, flavor.root_gb * GiB)
        idir.write_meta(meta)
        if power_on:
            self._launch(instance, idir)
        LOG.info("instance resized", instance=instance)

    def confirm_migration(self, context, migration, instance, network_info):
        self._resize_dir(instance).remove()

    def finish_revert_migration(self, context, instance, network_info, migration,
                                block_device_info=None, power_on=True):
        idir = instance_dir.InstanceDir(instance.uuid)
        backup = self._resize_dir(instance)
        self._stop(instance, idir)
        if backup.exists():
            idir.remove()
            os.rename(backup.path, idir.path)
        if power_on:
            self._launch(instance, idir)
        LOG.info("resize reverted", instance=instance)
