"""Nova compute driver for system containers on liblxc (no libvirt, no LXD).

Loaded with ``compute_driver = lxc.LXCDriver`` (the ``nova.virt.lxc`` shim; the
``nova.virt.liblxc`` shim names the same class). A binding of the compute base
(``nova_common.driver.BaseDriver``) to ``nova_lxc.hypervisor.LXCHypervisor``; it replaces
the base where containers differ from disk-image guests:

- the root is the unpacked image (cached once) under an overlay, not a qcow2 disk: spawn,
  snapshot (a root tarball) and resize (the container's files stay in place) are its own;
- a port's host side is a veth pair made when the port is plugged (``tap`` and ``ovs``
  ports; for ``ovs`` os-vif writes the OVS row first, ``nova_common.vifs``), inside
  nova's ``network-vif-plugged`` wait and before the container starts: Neutron wires the
  port before the container's init runs (liblxc making the pair at start would be too
  late for that). The container's end is handed to liblxc as a physical interface
  (``lxc.net.<slot>.type = phys``): liblxc moves it in with the port's MAC, MTU and
  addresses and gives it back at stop; the record keeps what liblxc configures;
- the container's files belong to its (shifted) ids and its console log to root: removal
  and the console go through the privileged side.

Operations containers cannot do (suspend to disk, rescue, live migration, VNC/SPICE/serial
consoles) and those not done yet (volumes at spawn, config drive) raise
``NotImplementedError`` or are refused before anything is made.
"""
import os
import tempfile

from nova import exception
from nova.compute import task_states
import nova.conf
from nova.i18n import _
from nova.virt import configdrive
from nova.virt import driver
from oslo_log import log as logging
from oslo_utils import excutils

from nova_common import driver as base_driver
from nova_common import hypervisor as hv_api
from nova_common import instance_dir
from nova_common import privsep as nova_common_privsep
from nova_common import record as rec
from nova_common import vif_events
from nova_common import vifs
from nova_lxc import config
from nova_lxc import hypervisor

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)


class LXCDriver(base_driver.BaseDriver):
    hypervisor_class = hypervisor.LXCHypervisor

    # -- spawn and its undo -----------------------------------------------------------------
    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        if driver.block_device_info_get_mapping(block_device_info):
            raise exception.InvalidInput(reason=_(
                "the LXC driver attaches volumes to existing servers only"))
        for vif in network_info or []:
            hypervisor.check_vif(vif)
        # everything refusable is refused before anything is made
        spec = self.hv.launch_spec(instance, image_meta, root_disk=True,
                                   config_drive=configdrive.required_by(instance))
        self.hv.check_host()
        spec["base"] = self.hv.rootfs(context, instance, image_meta)
        idir = instance_dir.InstanceDir(instance.uuid).create()
        guest = hv_api.Guest(instance.uuid, idir, rec.Record(
            name=instance.name, vcpus=instance.flavor.vcpus,
            memory_mb=instance.flavor.memory_mb, spec=spec))
        try:
            # Neutron's network-vif-plugged awaited before the container's init runs
            with vif_events.plugging(self.virtapi, instance, network_info, power_on):
                self._plug_and_connect(guest, instance, network_info, None)
            self._save(guest)
            self.hv.seed(guest, instance)
            LOG.info("container defined on image %s", instance.image_ref,
                     instance=instance)
            if power_on:
                self._start(guest, instance)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.warning("spawn failed; undoing it", instance=instance)
                self._undo_launch(guest, instance, network_info, block_device_info)

    def _undo_launch(self, guest, instance, network_info, block_device_info):
        try:
            self.hv.remove(guest.uuid)
        except Exception:
            LOG.exception("removing the container failed", instance=instance)
        super()._undo_launch(guest, instance, network_info, block_device_info)

    # -- network interfaces: veth pairs, the container's end handed to liblxc -------------
    def _plug(self, guest, instance, vif, slot=None):
        if slot is None:
            slot = self.hv.free_slot(guest)
        entry = hypervisor.vif_entry(vif, slot)    # refused before anything is made
        vifs.plug(instance, vif, peer=entry["peer"])
        guest.record.vifs[vif["id"]] = entry
        return entry

    def plug_vifs(self, instance, network_info):
        # at nova-compute start (idempotent): the OVS rows, and the pairs of stopped
        # containers made again if gone (a host reboot); a running container keeps its
        # end, the host end is left as it is
        try:
            guest = self._load(instance.uuid)
        except rec.CorruptRecord as e:
            LOG.error("%s", e, instance=instance)
            raise exception.VirtualInterfacePlugException(str(e))
        for vif in network_info or []:
            hypervisor.check_vif(vif)
            entry = guest.record.vifs.get(vif["id"]) if guest else None
            vifs.plug(instance, vif, peer=hypervisor.peer_of(entry) if entry
                      else config.peer_name(vif["devname"]))

    def unplug_vifs(self, instance, network_info):
        # os-vif removes the OVS row, then the host end goes, and the pair with it; a
        # container's end left on the host (its host end moved away by a backend) too
        super().unplug_vifs(instance, network_info)
        for vif in network_info or []:
            if vif["type"] in vifs.SUPPORTED and vif.get("devname"):
                peer = config.peer_name(vif["devname"])
                if nova_common_privsep.device_exists(peer):
                    nova_common_privsep.delete_tap(peer)

    # -- delete -----------------------------------------------------------------------------
    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        if destroy_disks and instance_dir.InstanceDir(instance.uuid).exists():
            self._release_volumes(instance)
            self.hv.remove(instance.uuid)
            LOG.info("container and its files removed", instance=instance)
        super().destroy(context, instance, network_info, block_device_info,
                        destroy_disks, destroy_secrets)

    def _release_volumes(self, instance):
        """Volumes out of the container (and the container root's access to them) before
        its directory, with the record, goes; os-brick disconnects them after."""
        try:
            guest = self._load(instance.uuid)
        except rec.CorruptRecord:
            return
        for volume_id, vol in sorted((guest.record.volumes if guest else {}).items()):
            try:
                self.hv.detach_disk(guest, volume_id, vol)
            except Exception:
                LOG.exception("releasing volume %s failed", volume_id, instance=instance)

    def _disconnect_volumes(self, guest, block_device_info):
        for volume_id, vol in sorted(guest.record.volumes.items()):
            try:
                self.hv.detach_disk(guest, volume_id, vol)
            except Exception:
                LOG.exception("releasing volume %s failed", volume_id,
                              instance_uuid=guest.uuid)
        super()._disconnect_volumes(guest, block_device_info)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        if destroy_disks and instance_dir.InstanceDir(instance.uuid).exists():
            self.hv.remove(instance.uuid)
        super().cleanup(context, instance, network_info, block_device_info, destroy_disks,
                        migrate_data, destroy_vifs, destroy_secrets)

    # -- resize (on this host; the container's files stay in place) ------------------------
    def migrate_disk_and_power_off(self, context, instance, dest, flavor, network_info,
                                   block_device_info=None, timeout=0, retry_interval=0):
        """Shut the container down; finish_migration defines it again with the new
        flavor's limits (finish_revert_migration with the old ones)."""
        if dest not in (CONF.host, CONF.my_ip):
            raise exception.InstanceFaultRollback(exception.MigrationPreCheckError(
                reason=_("the LXC driver resizes on the same host only "
                         "(allow_resize_to_same_host)")))
        self.power_off(instance, timeout, retry_interval)
        LOG.info("stopped for resize", instance=instance)
        return ""

    def _redefine(self, instance, image_meta, network_info, power_on):
        guest = self._guest(instance)
        record = guest.record
        record.spec = self.hv.launch_spec(instance, image_meta, root_disk=True,
                                          config_drive=False, previous=record.spec)
        record.vcpus, record.memory_mb = instance.flavor.vcpus, instance.flavor.memory_mb
        self._plug_and_connect(guest, instance, network_info, None)
        self._save(guest)
        LOG.info("container limits set for flavor %s", instance.flavor.name,
                 instance=instance)
        if power_on:
            self._start(guest, instance)

    def finish_migration(self, context, migration, instance, disk_info, network_info,
                         image_meta, resize_instance, allocations, block_device_info=None,
                         power_on=True, share_info=None):
        self._redefine(instance, image_meta, network_info, power_on)

    def confirm_migration(self, context, migration, instance, network_info):
        LOG.info("resize confirmed", instance=instance)    # nothing was kept aside

    def finish_revert_migration(self, context, instance, network_info, migration,
                                block_device_info=None, power_on=True, share_info=None):
        self._redefine(instance, None, network_info, power_on)

    # The instances path is the container's storage: a marker file tells nova that source
    # and destination share it, so a revert destroys the resized container without its
    # files (destroy_disks=False).
    def check_instance_shared_storage_local(self, context, instance):
        fd, path = tempfile.mkstemp(prefix=".shared-check-", dir=CONF.instances_path)
        os.close(fd)
        return {"filename": os.path.basename(path)}

    def check_instance_shared_storage_remote(self, context, data):
        return os.path.exists(os.path.join(CONF.instances_path,
                                           os.path.basename(data["filename"])))

    def check_instance_shared_storage_cleanup(self, context, data):
        path = os.path.join(CONF.instances_path, os.path.basename(data["filename"]))
        if os.path.exists(path):
            os.unlink(path)

    # -- snapshots: a root tarball ----------------------------------------------------------
    def snapshot(self, context, instance, image_id, update_task_state):
        """The container's root filesystem (its image plus its changes, running or not)
        as a root tarball uploaded to Glance as ``image_id`` (disk_format raw,
        container_format bare): it boots with this driver like the image it came from."""
        guest = self._guest(instance)
        image = self._image_api.get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        path = guest.idir.file("snapshot-%s.tar.gz" % image_id)
        try:
            self.hv.export(guest, path)
            update_task_state(task_state=task_states.IMAGE_UPLOADING,
                              expected_state=task_states.IMAGE_PENDING_UPLOAD)
            metadata = {"name": image["name"], "status": "active",
                        "disk_format": "raw", "container_format": "bare",
                        "properties": {"image_location": "snapshot",
                                       "image_state": "available",
                                       "owner_id": instance.project_id}}
            with open(path, "rb") as f:
                self._image_api.update(context, image_id, metadata, f, purge_props=False)
        finally:
            if os.path.exists(path):
                os.unlink(path)
        LOG.info("snapshot uploaded as image %s", image_id, instance=instance)

    # -- consoles ---------------------------------------------------------------------------
    def get_console_output(self, context, instance):
        return self.hv.console(self._guest(instance))

    def get_vnc_console(self, context, instance):
        raise NotImplementedError(_("containers have no graphical console"))

    def get_spice_console(self, context, instance):
        raise NotImplementedError(_("containers have no graphical console"))

    def get_serial_console(self, context, instance):
        raise NotImplementedError(_("the LXC driver has no serial console proxy"))

