"""Nova compute driver for system containers on liblxc (no libvirt, no LXD).

Loaded with ``compute_driver = liblxc.LXCDriver`` (the ``nova.virt.liblxc`` shim; not
``lxc``, which would read as nova's libvirt LXC mode). Thin: container work in
``nova_lxc.hypervisor`` (and, privileged, ``nova_lxc.container``/``images``), instance
directories, host resources and event delivery in ``nova_common``. Operations containers
cannot do (suspend to disk, rescue, live migration, VNC/SPICE/serial consoles, and for
now volumes and interface hot-plug) raise ``NotImplementedError`` (nova's base class).
"""
import os
import tempfile

from nova import exception
from nova.compute import power_state
from nova.compute import task_states
import nova.conf
from nova.i18n import _
from nova.image import glance
from nova.virt import driver
from nova.virt import event as virtevent
from nova.virt import hardware
from oslo_concurrency import lockutils
from oslo_log import log as logging

from nova_common import host
from nova_common import instance_dir
from nova_common import lifecycle
from nova_common import vifs
from nova_lxc import hypervisor

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
STATES = {"RUNNING": power_state.RUNNING, "FROZEN": power_state.PAUSED,
          "FREEZING": power_state.RUNNING, "THAWED": power_state.RUNNING,
          "STARTING": power_state.RUNNING, "STOPPING": power_state.RUNNING,
          "ABORTING": power_state.RUNNING, "STOPPED": power_state.SHUTDOWN}


class LXCDriver(driver.ComputeDriver):
    capabilities = dict(
        driver.ComputeDriver.capabilities,
        supports_image_type_qcow2=True,      # an ext4 filesystem, converted once
        supports_image_type_raw=True,        # an ext4 filesystem or a rootfs tarball
        supports_image_type_aki=False,
        supports_image_type_ami=False,
        supports_image_type_ari=False,
        supports_image_type_iso=False,
        supports_image_type_vdi=False,
        supports_image_type_vhd=False,
        supports_image_type_vhdx=False,
        supports_image_type_vmdk=False,
        supports_image_type_ploop=False,
        supports_attach_interface=False,
        supports_multiattach=False,
        supports_device_tagging=False,
        supports_extend_volume=False,
    )

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        self._events = lifecycle.Dispatcher(self.emit_event)
        self._hv = hypervisor.LXCHypervisor(on_stopped=self._on_stopped)
        self._image_api = glance.API()

    # -- service start ------------------------------------------------------------------
    def init_host(self, host):
        os.makedirs(CONF.instances_path, exist_ok=True)
        self._events.start()
        self._hv.reattach()
        self._hv.start_watcher()

    def cleanup_host(self, host):
        # the containers keep running; a new nova-compute manages them again
        self._hv.stop_watcher()

    def _on_stopped(self, uuid):
        # the watcher's native thread: queue only
        self._events.post(uuid, virtevent.EVENT_LIFECYCLE_STOPPED)

    # -- inventory ----------------------------------------------------------------------
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

    def get_info(self, instance, use_cache=True):
        self._idir(instance)
        st = self._hv.state(instance.uuid)
        return hardware.InstanceInfo(state=STATES.get(st["state"], power_state.NOSTATE))

    def get_available_nodes(self, refresh=False):
        return [CONF.host]

    def get_available_resource(self, nodename):
        vcpus = sum((instance_dir.InstanceDir(u).read_meta() or {}).get("vcpus", 0)
                    for u in instance_dir.list_uuids())
        return host.available_resource(nodename, "lxc", hypervisor.version(),
                                       hypervisor.arch(), vcpus_used=vcpus)

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        host.update_provider_tree(self, provider_tree, nodename,
                                  self.get_available_resource(nodename))

    def get_host_ip_addr(self):
        return CONF.my_ip

    def get_host_uptime(self):
        return host.uptime()

    # -- create / start / stop / delete -------------------------------------------------
    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        if driver.block_device_info_get_mapping(block_device_info):
            raise exception.InvalidInput(reason="volumes are not supported by the LXC "
                                                "driver yet")
        # everything that can be refused is checked before anything is made
        hypervisor.halt_signal(instance)
        hypervisor.nics(network_info)
        hypervisor.limits(instance.flavor)
        base = self._hv.rootfs(context, instance, image_meta)
        idir = instance_dir.InstanceDir(instance.uuid).create()
        try:
            idir.write_meta({"name": instance.name, "vcpus": instance.flavor.vcpus,
                             "memory_mb": instance.flavor.memory_mb, "base": base})
            self._hv.define(instance, idir, base, network_info)
            LOG.info("container defined", instance=instance)
            if power_on:
                self._hv.start(instance)
        except Exception:
            self._remove(instance, idir, network_info)
            raise

    def _remove(self, instance, idir, network_info):
        try:
            if idir.exists():
                self._hv.remove(instance)
        finally:
            self.unplug_vifs(instance, network_info)
            idir.remove()

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        idir = instance_dir.InstanceDir(instance.uuid)
        with lockutils.lock("nova-lxc-" + instance.uuid):
            if not idir.exists():
                self.unplug_vifs(instance, network_info)
                return
            if self._hv.running(instance.uuid):
                self._hv.kill(instance)
            if destroy_disks:
                self._remove(instance, idir, network_info)
                LOG.info("container removed", instance=instance)
            else:
                self.unplug_vifs(instance, network_info)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        idir = instance_dir.InstanceDir(instance.uuid)
        if destroy_disks and idir.exists():
            self._remove(instance, idir, network_info if destroy_vifs else None)

    def power_off(self, instance, timeout=0, retry_interval=0):
        """The init's halt signal (again every ``retry_interval`` s) for up to ``timeout``
        s, then every process of the container is killed."""
        self._idir(instance)
        if not self._hv.running(instance.uuid):
            return
        if timeout and self._hv.shutdown(instance, timeout, retry_interval):
            return
        self._hv.kill(instance)

    def power_on(self, context, instance, network_info, block_device_info=None,
                 accel_info=None, share_info=None):
        self._idir(instance)
        if not self._hv.running(instance.uuid):
            self._hv.start(instance)

    def reboot(self, context, instance, network_info, reboot_type, block_device_info=None,
               bad_volumes_callback=None, accel_info=None, share_info=None):
        """SOFT: the halt signal within ``reboot_timeout`` (retried), then a fresh start;
        an init that ignores it is killed. HARD: killed and started again."""
        self._idir(instance)
        if self._hv.running(instance.uuid):
            if self._hv.state(instance.uuid)["state"] == "FROZEN":
                self._hv.thaw(instance)
            stopped = reboot_type == "SOFT" and self._hv.shutdown(
                instance, CONF.reboot_timeout or 60, retry_interval=10)
            if not stopped:
                self._hv.kill(instance)
        self._hv.start(instance)

    def pause(self, instance):
        self._idir(instance)
        self._hv.freeze(instance)

    def unpause(self, instance):
        self._idir(instance)
        self._hv.thaw(instance)

    # -- resize (on this host) ----------------------------------------------------------
    def migrate_disk_and_power_off(self, context, instance, dest, flavor, network_info,
                                   block_device_info=None, timeout=0, retry_interval=0):
        """Resizes stay on this host and keep the container's files in place: it is shut
        down here and defined again with the new flavor's limits by finish_migration
        (or the old ones by finish_revert_migration)."""
        if dest not in (CONF.host, CONF.my_ip):
            raise exception.InstanceFaultRollback(exception.MigrationPreCheckError(
                reason=_("the LXC driver resizes on the same host only "
                         "(allow_resize_to_same_host)")))
        self.power_off(instance, timeout, retry_interval)
        return ""

    def _redefine(self, instance, network_info, power_on):
        idir = self._idir(instance)
        meta = idir.read_meta()
        meta.update(vcpus=instance.flavor.vcpus, memory_mb=instance.flavor.memory_mb)
        self._hv.define(instance, idir, meta["base"], network_info)
        idir.write_meta(meta)
        LOG.info("container defined for flavor %s", instance.flavor.name,
                 instance=instance)
        if power_on:
            self._hv.start(instance)

    def finish_migration(self, context, migration, instance, disk_info, network_info,
                         image_meta, resize_instance, allocations, block_device_info=None,
                         power_on=True, share_info=None):
        self._redefine(instance, network_info, power_on)

    def confirm_migration(self, context, migration, instance, network_info):
        pass        # nothing was kept aside

    def finish_revert_migration(self, context, instance, network_info, migration,
                                block_device_info=None, power_on=True, share_info=None):
        self._redefine(instance, network_info, power_on)

    # the instances path is the storage: nova's revert then destroys the resized
    # container without its files (destroy_disks=False), as on shared storage
    def check_instance_shared_storage_local(self, context, instance):
        fd, path = tempfile.mkstemp(prefix=".shared-check-", dir=CONF.instances_path)
        os.close(fd)
        return {"filename": os.path.basename(path)}

    def check_instance_shared_storage_remote(self, context, data):
        name = os.path.basename(data["filename"])
        return os.path.exists(os.path.join(CONF.instances_path, name))

    def check_instance_shared_storage_cleanup(self, context, data):
        path = os.path.join(CONF.instances_path, os.path.basename(data["filename"]))
        if os.path.exists(path):
            os.unlink(path)

    # -- snapshots ----------------------------------------------------------------------
    def snapshot(self, context, instance, image_id, update_task_state):
        """The container's root filesystem (its image plus its changes) as a root
        tarball uploaded to Glance as ``image_id`` (disk_format raw, container_format
        bare): it boots with this driver like the image it came from."""
        idir = self._idir(instance)
        image = self._image_api.get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        path = idir.file("snapshot-%s.tar.gz" % image_id)
        try:
            self._hv.export(instance, idir.read_meta()["base"], path)
            update_task_state(task_state=task_states.IMAGE_UPLOADING,
                              expected_state=task_states.IMAGE_PENDING_UPLOAD)
            metadata = {"name": image["name"], "status": "active",
                        "disk_format": "raw", "container_format": "bare",
                        "properties": {"image_location": "snapshot",
                                       "image_state": "available",
                                       "owner_id": instance.project_id}}
            with open(path, "rb") as f:
                self._image_api.update(context, image_id, metadata, f, purge_props=False)
            LOG.info("snapshot %s uploaded", image_id, instance=instance)
        finally:
            if os.path.exists(path):
                os.unlink(path)

    # -- networking ---------------------------------------------------------------------
    def plug_vifs(self, instance, network_info):
        # the veth pairs are made by liblxc when the container starts
        for vif in network_info or []:
            vifs.check(vif)

    def unplug_vifs(self, instance, network_info):
        # a pair goes with its container; a leftover host end (a crash) is removed
        for vif in network_info or []:
            vifs.unplug(instance, vif)

    # -- consoles -----------------------------------------------------------------------
    def get_console_output(self, context, instance):
        self._idir(instance)
        return self._hv.console(instance)
