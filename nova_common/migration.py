"""Live migration to another compute host, as nova's compute manager drives it.

A mixin of ``BaseDriver`` for hypervisors declaring ``LIVE_MIGRATION``. nova's calls, in
order (``D``: destination, ``S``: source):

- D ``check_can_live_migrate_destination``: a probe file in ``instances_path`` (shared
  instance storage is detected as nova's libvirt driver does), this host's migration
  address; ``cleanup_live_migration_destination_check`` removes the probe.
- S ``check_can_live_migrate_source``: the guest runs; shared or not; block migration
  decided (``block_migration`` None: when the instance has local disks and no shared
  ``instances_path``). On a shared ``instances_path`` only the RAM moves; it needs
  ``[hci_guests]host_state_path`` (each host's records and runtime files of the guest,
  pidfile and QMP socket, in a directory of its own). Block migrations of instances with
  a config drive are refused (nova regenerates none on the destination).
- S ``get_instance_disk_info``: the local disks and the launch spec, as JSON (nova hands
  it to the destination's ``pre_live_migration``).
- D ``pre_live_migration``: the instance directory with empty disks of the same sizes
  (on a shared ``instances_path``: only this host's directory, the disks are there),
  the volumes connected, the interfaces plugged (nova waits for ``network-vif-plugged``
  on the source before the migration starts), the guest's process waiting for the
  migration; its ports go back to the source in ``migrate_data.serial_listen_ports``
  (migration, NBD). A waiter resumes the guest here when the migration completes.
- S ``live_migration``: the hypervisor migrates (disks, then RAM), reporting progress
  into nova's migration record; then the stopped source process is ended and nova's
  ``post_method`` runs; on failure the guest runs on here and ``recover_method`` runs
  (nova's rollback: ``rollback_live_migration_at_destination`` removes everything on
  the destination; nova skips it on a shared ``instances_path``, where the destination's
  waiter undoes its part itself when the migration fails). ``live_migration_abort`` and
  ``live_migration_force_complete`` act on the running migration.
- S ``post_live_migration`` (volumes disconnected), ``post_live_migration_at_source``
  (interfaces unplugged; this host's files removed and its guest uid's grants on shared
  disks revoked), ``cleanup`` (the directory removed; nova skips it on a shared
  ``instances_path``);
  D ``post_live_migration_at_destination`` (the guest runs; its record is written).
"""
import json
import os
import threading

from nova import exception
from nova import objects
import nova.conf
from nova.i18n import _
from oslo_log import log as logging
from oslo_utils import excutils

from nova_common import confine
from nova_common import disks
from nova_common import hypervisor as hv_api
from nova_common import instance_dir
from nova_common import record as rec
from nova_common import shared_storage

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)


class LiveMigration:
    """nova's live migration calls over ``self.hv`` (mixed into ``BaseDriver``)."""

    # -- checks -----------------------------------------------------------------------------
    def check_can_live_migrate_destination(self, context, instance, src_compute_info,
                                           dst_compute_info, block_migration=False,
                                           disk_over_commit=False):
        self._optional(hv_api.LIVE_MIGRATION)
        if src_compute_info.get("hypervisor_type") != dst_compute_info.get(
                "hypervisor_type"):
            raise exception.MigrationPreCheckError(
                reason=_("the source runs another hypervisor type"))
        address = self.hv.migration_address()        # this host can receive
        os.makedirs(CONF.instances_path, exist_ok=True)
        data = objects.LibvirtLiveMigrateData()
        data.filename = shared_storage.make_probe(CONF.instances_path)
        data.image_type = "qcow2"
        data.disk_over_commit = bool(disk_over_commit)
        data.disk_available_mb = dst_compute_info.get("disk_available_least", 0) * 1024
        data.graphics_listen_addr_vnc = None
        data.graphics_listen_addr_spice = None
        data.serial_listen_addr = None
        data.target_connect_addr = address
        if block_migration is not None:
            data.block_migration = bool(block_migration)
        return data

    def cleanup_live_migration_destination_check(self, context, dest_check_data):
        self._optional(hv_api.LIVE_MIGRATION)
        name = dest_check_data.filename if "filename" in dest_check_data else None
        shared_storage.remove_probe(CONF.instances_path, name)

    def check_can_live_migrate_source(self, context, instance, dest_check_data,
                                      block_device_info=None):
        self._optional(hv_api.LIVE_MIGRATION)
        guest = self._guest(instance)
        if not self.hv.running(guest):
            raise exception.MigrationPreCheckError(
                reason=_("the instance is not running"))
        self.hv.check_outgoing_migration(guest)
        data = dest_check_data
        shared_path = shared_storage.probe_exists(
            CONF.instances_path, data.filename if "filename" in data else None)
        drives = self.hv.migration_drives(guest)
        data.is_shared_instance_path = shared_path
        data.is_shared_block_storage = shared_path or not drives
        data.is_volume_backed = not os.path.exists(
            guest.idir.file(instance_dir.ROOT_DISK))
        data.instance_relative_path = instance.uuid
        if shared_path and not instance_dir.separate_host_state():
            raise exception.MigrationPreCheckError(reason=_(
                "instances_path is shared with the destination: set "
                "[hci_guests]host_state_path to a directory on local storage on both "
                "hosts to live-migrate between them"))
        if "block_migration" not in data:
            data.block_migration = bool(drives) and not shared_path   # auto-detected
        if data.block_migration and shared_path:
            raise exception.InvalidLocalStorage(
                path=CONF.instances_path, reason=_("block migration cannot be used with "
                                                   "a shared instances_path"))
        if data.block_migration and not drives:
            raise exception.InvalidLocalStorage(
                path=guest.idir.path, reason=_("block migration of an instance without "
                                               "local disks"))
        if not data.block_migration and drives and not shared_path:
            raise exception.InvalidSharedStorage(
                path=guest.idir.path, reason=_("the instance has local disks: use block "
                                               "migration"))
        if data.block_migration and os.path.exists(
                guest.idir.file(instance_dir.CONFIG_DRIVE)):
            raise exception.MigrationPreCheckError(reason=_(
                "block migration of an instance with a config drive is not supported"))
        return data

    def get_instance_disk_info(self, instance, block_device_info=None):
        self._optional(hv_api.LIVE_MIGRATION)
        guest = self._guest(instance)
        files = []
        for name in [instance_dir.ROOT_DISK] + list(
                guest.record.spec.get("local_disks", ())):
            path = guest.idir.file(name)
            if os.path.exists(path):
                files.append({"path": name})
        return json.dumps({"disks": files, "spec": guest.record.spec})

    # -- destination ------------------------------------------------------------------------
    def pre_live_migration(self, context, instance, block_device_info, network_info,
                           disk_info, migrate_data):
        self._optional(hv_api.LIVE_MIGRATION)
        source = json.loads(disk_info) if disk_info else {}
        idir = instance_dir.InstanceDir(instance.uuid)
        shared = bool(migrate_data.is_shared_instance_path)
        if shared:
            if not idir.separate:
                raise exception.MigrationPreCheckError(reason=_(
                    "instances_path is shared with the source: set "
                    "[hci_guests]host_state_path on this host"))
            if idir.host_exists():
                raise exception.DestinationDiskExists(path=idir.host_path)
            if not idir.exists():
                raise exception.InvalidSharedStorage(
                    path=idir.path, reason=_("the instance's disks are not there"))
        elif idir.exists() or idir.host_exists():
            raise exception.DestinationDiskExists(path=idir.path)
        image_meta = objects.ImageMeta.from_instance(instance)
        root_disk = not migrate_data.is_volume_backed
        # a config drive only on shared storage (block migration refuses one)
        config_drive = shared and os.path.exists(idir.file(instance_dir.CONFIG_DRIVE))
        spec = self.hv.launch_spec(instance, image_meta, root_disk=root_disk,
                                   config_drive=config_drive, previous=source.get("spec"))
        guest = hv_api.Guest(instance.uuid, idir, rec.Record(
            name=instance.name, vcpus=instance.flavor.vcpus,
            memory_mb=instance.flavor.memory_mb, spec=spec,
            uid=self._new_uid(instance.uuid, confine.granted_uids(idir.path) if shared
                              else ()) if self._desc.confined else 0))
        # the directories only once nothing before the undo below can fail
        if shared:
            idir.create_host()
        else:
            idir.create()
        try:
            if root_disk and not shared:
                disks.create_root_disk(context, instance, idir.file(instance_dir.ROOT_DISK))
            if shared:
                guest.record.spec["local_disks"] = source.get("spec", {}).get(
                    "local_disks", [])
            elif source.get("spec", {}).get("local_disks"):
                guest.record.spec["local_disks"] = disks.create_local_disks(
                    instance, idir.path, block_device_info)
            self._plug_and_connect(guest, instance, network_info, block_device_info)
            self._save(guest)
            if self._desc.confined:
                confine.grant_instance(idir, guest.record.uid)
            drives = self.hv.migration_drives(guest) if migrate_data.block_migration \
                else []
            self._quiet.add(guest.uuid)       # its start and the switch-over are ours
            port, nbd_port = self.hv.prepare_incoming(
                guest, migrate_data.target_connect_addr, drives)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.warning("preparing the incoming migration failed; undoing it",
                            instance=instance)
                self._quiet.discard(guest.uuid)
                self._undo_launch(guest, instance, network_info, block_device_info,
                                  keep_disks=shared)
        migrate_data.serial_listen_ports = [port, nbd_port]
        undo = (network_info, block_device_info) if shared else None
        threading.Thread(target=self._await_incoming, args=(guest, instance, undo),
                         daemon=True).start()
        LOG.info("waiting for the live migration", instance=instance)
        return migrate_data

    def _await_incoming(self, guest, instance, undo=None):
        """Waits for the incoming migration; with ``undo`` (network and block device
        info: a shared instances_path, where nova calls no rollback here) a migration
        that fails, or never starts (the source failed before sending, nova's wait for
        the ports timed out, it was aborted while queued), is undone on this host, the
        shared disks kept. A completed one never is."""
        status = None
        try:
            status = self.hv.wait_incoming(guest, must_start=undo is not None)
            LOG.info("incoming migration %s", status, instance=instance)
        except Exception as e:
            LOG.warning("incoming migration ended: %s", e, instance=instance)
        finally:
            self._quiet.discard(guest.uuid)
        if status == "completed" or undo is None:
            return
        with self._lock(instance):
            try:
                current = self._load(guest.uuid) or guest
            except rec.CorruptRecord:
                current = guest
            self._undo_launch(current, instance, *undo, keep_disks=True)
        LOG.info("the incoming migration did not complete; its part on this host is "
                 "undone (the shared disks stay)", instance=instance)

    def post_live_migration_at_destination(self, context, instance, network_info,
                                           block_migration=False, block_device_info=None):
        self._optional(hv_api.LIVE_MIGRATION)
        guest = self._guest(instance)
        self.hv.finish_incoming(guest)   # in case the waiter has not run yet
        self._quiet.discard(guest.uuid)
        self._save(guest)
        LOG.info("live migration to this host finished; the guest runs here",
                 instance=instance)

    def rollback_live_migration_at_destination(self, context, instance, network_info,
                                               block_device_info, destroy_disks=True,
                                               migrate_data=None):
        self._optional(hv_api.LIVE_MIGRATION)
        try:
            guest = self._load(instance.uuid)
        except rec.CorruptRecord:
            guest = None
        idir = instance_dir.InstanceDir(instance.uuid)
        shared = bool(migrate_data is not None and "is_shared_instance_path" in
                      migrate_data and migrate_data.is_shared_instance_path)
        if guest is not None:
            self._undo_launch(guest, instance, network_info, block_device_info,
                              keep_disks=shared)
        else:
            self.unplug_vifs(instance, network_info)
            if shared:
                idir.remove_host()
            else:
                idir.remove()
        self._quiet.discard(instance.uuid)
        LOG.info("rolled back the live migration to this host", instance=instance)

    # -- source -----------------------------------------------------------------------------
    def live_migration(self, context, instance, dest, post_method, recover_method,
                       block_migration=False, migrate_data=None):
        self._optional(hv_api.LIVE_MIGRATION)
        guest = self._guest(instance)
        migration = migrate_data.migration if "migration" in migrate_data else None
        port, nbd_port = migrate_data.serial_listen_ports
        drives = self.hv.migration_drives(guest) if migrate_data.block_migration else []

        def progress(values):
            if migration is None:
                return
            for key, value in values.items():
                setattr(migration, key, value)
            try:
                migration.save()
            except Exception as e:
                LOG.debug("progress not saved: %s", e, instance=instance)

        LOG.info("live migration to %s starts (%s)", dest,
                 "disks and RAM" if drives else "RAM", instance=instance)
        try:
            self.hv.migrate(guest, migrate_data.target_connect_addr, port, nbd_port,
                            drives, progress)
        except Exception as e:
            aborted = isinstance(e, exception.MigrationError) and \
                self.hv.migration_aborted(guest)
            LOG.error("live migration to %s %s: %s; the guest runs on here", dest,
                      "aborted" if aborted else "failed", e, instance=instance)
            if aborted:
                recover_method(context, instance, dest, migrate_data,
                               migration_status="cancelled")
            else:
                recover_method(context, instance, dest, migrate_data)
            return
        self._stop(guest, instance)       # the source process, stopped after the copy
        LOG.info("live migration to %s completed", dest, instance=instance)
        post_method(context, instance, dest, block_migration, migrate_data)

    def live_migration_abort(self, instance):
        self._optional(hv_api.LIVE_MIGRATION)
        self.hv.abort_migration(self._guest(instance))

    def live_migration_force_complete(self, instance):
        self._optional(hv_api.LIVE_MIGRATION)
        self.hv.force_complete_migration(self._guest(instance))

    def post_live_migration(self, context, instance, block_device_info,
                            migrate_data=None):
        self._optional(hv_api.LIVE_MIGRATION)
        guest = self._guest(instance)
        self._disconnect_volumes(guest, block_device_info)

    def post_live_migration_at_source(self, context, instance, network_info):
        self._optional(hv_api.LIVE_MIGRATION)
        self.unplug_vifs(instance, network_info)
        try:
            guest = self._load(instance.uuid)
        except rec.CorruptRecord:
            guest = None
        if guest is not None:
            # the guest runs elsewhere: this host's part goes (nova's cleanup removes
            # the rest, unless the instances_path is shared)
            self._leave_host(guest, instance)
