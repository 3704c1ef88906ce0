"""``BaseDriver``: the nova-generic compute driver flow over a ``Hypervisor``.

A driver class is ``class XDriver(BaseDriver): hypervisor_class = XHypervisor``; its
``capabilities`` derive from the hypervisor's ``Description``. See
``nova_common.hypervisor`` for the contract and README ("The compute base") for a table.
"""
import json
import os
import shutil
import time

from nova import exception
from nova import objects
from nova.compute import power_state
from nova.compute import task_states
import nova.conf
from nova.console import type as ctype
from nova.i18n import _
from nova.image import glance
from nova.network import model as network_model
from nova.virt import configdrive
from nova.virt import driver
from nova.virt import hardware
from oslo_concurrency import lockutils
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import excutils

from nova_common import confine
from nova_common import consolelog
from nova_common import diagnostics
from nova_common import disk_transfer
from nova_common import disks
from nova_common import host
from nova_common import hypervisor as hv_api
from nova_common import imagecache
from nova_common import instance_dir
from nova_common import launcher
from nova_common import lifecycle
from nova_common import migration
from nova_common import privsep
from nova_common import record as rec
from nova_common import shared_storage
from nova_common import vif_events
from nova_common import vifs
from nova_common import volumes

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
ALL_IMAGE_FORMATS = ("qcow2", "raw", "aki", "ami", "ari", "iso", "vdi", "vhd", "vhdx",
                     "vmdk", "ploop")
# files of an instance directory a resize carries over
CARRIED = (instance_dir.ROOT_DISK, instance_dir.CONFIG_DRIVE, instance_dir.CONSOLE_LOG,
           consolelog.ROTATED)


def capabilities_of(description):
    """nova's capability dict for a hypervisor ``Description``."""
    caps = dict(driver.ComputeDriver.capabilities)
    for fmt in ALL_IMAGE_FORMATS:
        caps["supports_image_type_" + fmt] = fmt in description.image_formats
    caps.update(
        supports_attach_interface=description.has(hv_api.NIC_HOTPLUG),
        supports_extend_volume=description.has(hv_api.DISK_RESIZE),
        supports_multiattach=description.has(hv_api.MULTIATTACH),
        supports_device_tagging=False,
        has_imagecache=description.has(hv_api.IMAGE_CACHE),
        supports_evacuate=description.has(hv_api.EVACUATE),
    )
    return caps


class BaseDriver(migration.LiveMigration, shared_storage.SharedStorage,
                 driver.ComputeDriver):
    hypervisor_class = None       # a nova_common.hypervisor.Hypervisor subclass

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.hypervisor_class is not None:
            cls.capabilities = capabilities_of(cls.hypervisor_class.description)

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        self.hv = self.hypervisor_class()
        self._events = lifecycle.Dispatcher(self.emit_event)
        self._quiet = set()        # instances whose stop the driver itself causes
        self._reserved_uids = {}   # guest uids given out whose record is not written yet
        self._image_api = glance.API()
        self._image_cache = (imagecache.ImageCacheManager()
                             if self._desc.has(hv_api.IMAGE_CACHE) else None)

    @property
    def _desc(self):
        return self.hv.description

    def _optional(self, operation):
        if not self._desc.has(operation):
            raise NotImplementedError(
                _("%(op)s is not supported by the %(hv)s driver")
                % {"op": operation, "hv": self._desc.hypervisor_type})

    def _lock(self, instance):
        return lockutils.lock("nova-hci-" + instance.uuid)

    # -- service start ----------------------------------------------------------------------
    def init_host(self, host):
        self._host = host          # nova's service host (two services: two names)
        self.hv.check_host()       # nova-compute does not start without its hypervisor
        os.makedirs(CONF.instances_path, exist_ok=True)
        legacy = instance_dir.list_uuids(CONF.instances_path) \
            if instance_dir.separate_host_state() else []
        if legacy:
            # their records would be looked for in host_state_path: their guests would
            # be lost to nova-compute, and their disks removed under them on a delete
            raise exception.InvalidInput(reason=_(
                "[hci_guests]host_state_path is set but %(n)d instance(s) in "
                "instances_path have their records there (%(first)s, ...): set the "
                "option on a host without instances") % {"n": len(legacy),
                                                         "first": legacy[0]})
        if self._desc.confined:
            confine.uid_range()    # a bad range stops nova-compute here
            if instance_dir.separate_host_state():
                confine.claim_uid_range(host)   # so does one another host uses
            confine.prepare_instances_path()
            if os.path.exists(launcher.TUN):
                privsep.grant_tun(CONF.hci_guests.gid)
        self._events.start()
        self.hv.open_events(self._on_event)
        for uuid in instance_dir.list_uuids():
            try:
                guest = self._load(uuid)
            except rec.CorruptRecord as e:
                LOG.error("%s; the instance is left alone (it goes to ERROR when nova "
                          "initialises it)", e, instance_uuid=uuid)
                continue
            if self.hv.reattach(guest):
                LOG.info("reattached to the running guest", instance_uuid=uuid)

    def cleanup_host(self, host):
        # the guests keep running; a new nova-compute attaches to them again
        self.hv.close_events()

    def _on_event(self, uuid, transition):
        # from the hypervisor's thread: queue only, never log here
        if uuid not in self._quiet:
            self._events.post(uuid, transition)

    # -- records ----------------------------------------------------------------------------
    def _load(self, uuid):
        """The Guest of ``uuid`` (None without a record; ``CorruptRecord``)."""
        idir = instance_dir.InstanceDir(uuid)
        record = rec.read(idir.host_path, self.hv.upgrade_record)
        return None if record is None else hv_api.Guest(uuid, idir, record)

    def _guest(self, instance):
        try:
            guest = self._load(instance.uuid)
        except rec.CorruptRecord as e:
            raise exception.InternalError(str(e))
        if guest is None:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        return guest

    @staticmethod
    def _save(guest):
        rec.write(guest.idir.host_path, guest.record)

    def _records(self):
        """Every readable record on this host (corrupt ones logged and skipped)."""
        for uuid in instance_dir.list_uuids():
            try:
                guest = self._load(uuid)
            except rec.CorruptRecord as e:
                LOG.error("%s", e, instance_uuid=uuid)
                continue
            if guest is not None:
                yield guest

    # -- inventory --------------------------------------------------------------------------
    def list_instance_uuids(self):
        return instance_dir.list_uuids()

    def list_instances(self):
        return [g.record.name for g in self._records()]

    def instance_exists(self, instance):
        return instance.uuid in instance_dir.list_uuids()

    def get_info(self, instance, use_cache=True):
        try:
            guest = self._load(instance.uuid)
        except rec.CorruptRecord:
            return hardware.InstanceInfo(state=power_state.NOSTATE)
        if guest is None:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        if not self.hv.running(guest):
            saved = os.path.exists(guest.idir.file(instance_dir.STATE_FILE))
            return hardware.InstanceInfo(
                state=power_state.SUSPENDED if saved else power_state.SHUTDOWN)
        return hardware.InstanceInfo(state=self.hv.state(guest))

    def get_available_nodes(self, refresh=False):
        return [getattr(self, "_host", None) or CONF.host]

    def get_available_resource(self, nodename):
        vcpus = sum(g.record.vcpus for g in self._records())
        return host.available_resource(nodename, self._desc.hypervisor_type,
                                       self.hv.version(), self.hv.arch(), vcpus_used=vcpus)

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        host.update_provider_tree(self, provider_tree, nodename,
                                  self.get_available_resource(nodename))

    def get_host_ip_addr(self):
        return CONF.my_ip

    def get_host_uptime(self):
        return host.uptime()

    # -- spawn and its undo -----------------------------------------------------------------
    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        mappings = driver.block_device_info_get_mapping(block_device_info)
        root_volume = self._root_volume(block_device_info, mappings)
        if root_volume is None:
            disks.check_image(instance, image_meta, self._desc.image_formats)
        for vif in network_info or []:
            vifs.check(vif, self._desc.vif_types)
        if not self._desc.has(hv_api.LOCAL_DISKS) and \
                disks.local_disks(instance, block_device_info):
            raise exception.InstanceDeployFailure(
                reason=_("ephemeral and swap disks are not supported by the %s driver")
                % self._desc.hypervisor_type, instance_id=instance.uuid)
        config_drive = configdrive.required_by(instance)
        spec = self.hv.launch_spec(instance, image_meta, root_disk=root_volume is None,
                                   config_drive=config_drive)
        self.hv.check_host()
        idir = instance_dir.InstanceDir(instance.uuid)
        # evacuated onto this host from a shared instances_path: the disks are there
        # and are the instance's (nova found them with instance_on_disk, and found no
        # record of it here with instance_exists)
        on_disk = instance.obj_attr_is_set("task_state") and \
            instance.task_state == task_states.REBUILD_SPAWNING and idir.separate \
            and idir.exists()
        if idir.separate and idir.exists() and not on_disk:
            # another host's disks on the shared instances_path: never overwritten
            raise exception.InstanceDeployFailure(
                reason=_("the instance's directory %s exists on the shared "
                         "instances_path") % idir.path, instance_id=instance.uuid)
        guest = hv_api.Guest(instance.uuid, idir, rec.Record(
            name=instance.name, vcpus=instance.flavor.vcpus,
            memory_mb=instance.flavor.memory_mb, spec=spec,
            uid=self._new_uid(instance.uuid, confine.granted_uids(idir.path) if on_disk
                              else ()) if self._desc.confined else 0))
        if on_disk:
            LOG.info("evacuated onto this host: the instance's disks on the shared "
                     "instances_path are used", instance=instance)
            idir.remove_host()          # a stale one without a record (none was found)
            idir.create_host()
        else:
            idir.create()
        try:
            if on_disk:
                guest.record.spec["local_disks"] = disks.local_disk_names(idir.path)
            else:
                if root_volume is None:
                    disks.create_root_disk(context, instance,
                                           idir.file(instance_dir.ROOT_DISK))
                if self._desc.has(hv_api.LOCAL_DISKS):
                    guest.record.spec["local_disks"] = disks.create_local_disks(
                        instance, idir.path, block_device_info)
            if config_drive and not os.path.exists(idir.file(instance_dir.CONFIG_DRIVE)):
                disks.create_config_drive(context, instance, injected_files, admin_password,
                                          network_info, idir.file(instance_dir.CONFIG_DRIVE))
            # Neutron's network-vif-plugged awaited before the guest runs on its ports
            with vif_events.plugging(self.virtapi, instance, network_info, power_on):
                self._plug_and_connect(guest, instance, network_info, block_device_info)
            self._save(guest)      # once, before the guest starts
            self._reserved_uids.pop(instance.uuid, None)     # (the record holds it)
            LOG.info("created the guest's disks and devices", instance=instance)
            if power_on:
                self._start(guest, instance)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.warning("spawn failed; undoing it", instance=instance)
                self._undo_launch(guest, instance, network_info, block_device_info,
                                  keep_disks=on_disk)
                self._reserved_uids.pop(instance.uuid, None)

    def _new_uid(self, uuid, avoid=()):
        """A guest uid no other guest of this host has: neither in a record on disk nor
        given to a spawn of this process whose record is not written yet (spawns run
        concurrently); that reservation ends once the record holding the uid is
        written (here or, for records written elsewhere, at the next call), or when
        the spawn is undone. Nor one of ``avoid`` (the uids another host's guest had
        on the shared disks: that host revokes its own when it lets go of them)."""
        with lockutils.lock("nova-hci-uids"):
            recorded = {g.uuid: g.record.uid for g in self._records()}
            for other, uid in list(self._reserved_uids.items()):
                if recorded.get(other) == uid:
                    del self._reserved_uids[other]
            used = {uid for other, uid in recorded.items() if other != uuid}
            used.update(uid for other, uid in self._reserved_uids.items() if other != uuid)
            used.update(avoid)
            uid = confine.allocate_uid(used)
            self._reserved_uids[uuid] = uid
            return uid

    def _plug_and_connect(self, guest, instance, network_info, block_device_info):
        """Plug the interfaces and connect the volumes nova gives into ``guest.record``,
        keeping the slots of those it had (the record is written by the caller). None
        for either keeps what the record has."""
        if network_info is not None:
            old, guest.record.vifs = guest.record.vifs, {}
            for vif in network_info:
                self._plug(guest, instance, vif, old.get(vif["id"], {}).get("slot"))
        if block_device_info is not None:
            old, guest.record.volumes = guest.record.volumes, {}
            mappings = driver.block_device_info_get_mapping(block_device_info)
            root_volume = self._root_volume(block_device_info, mappings)
            for bdm in mappings:
                info = bdm["connection_info"]
                was = old.get(self._volume_id(info), {})
                self._connect_volume(guest, info, boot=bdm is root_volume,
                                     slot=was.get("slot"),
                                     # what the attach decided, for a volume it had
                                     encryption=was.get("encryption", {}) if was else None)

    def _undo_launch(self, guest, instance, network_info, block_device_info,
                     keep_disks=False):
        """After a failed spawn or finish_migration: no guest process, no interface, no
        volume connection and no directory left (each step tried; errors logged); with
        ``keep_disks`` (a shared instances_path) only this host's directory goes."""
        for step in (lambda: self._stop(guest, instance),
                     lambda: self.unplug_vifs(instance, network_info),
                     lambda: self._disconnect_volumes(guest, block_device_info)):
            try:
                step()
            except Exception:
                LOG.exception("cleaning up after the failure failed", instance=instance)
        if keep_disks:
            self._leave_host(guest, instance)
        else:
            guest.idir.remove()

    @staticmethod
    def _root_volume(block_device_info, mappings):
        """The mapping that is the root disk (boot from volume), or None."""
        root = driver.block_device_info_get_root_device(block_device_info)
        for bdm in mappings:
            if bdm.get("boot_index") == 0 or (root and bdm.get("mount_device") == root):
                return bdm
        return None

    # -- power ------------------------------------------------------------------------------
    def _start(self, guest, instance):
        if self._desc.confined:
            if not guest.record.uid:   # a record of an earlier release
                guest.record.uid = self._new_uid(guest.uuid)
                self._save(guest)
                self._reserved_uids.pop(guest.uuid, None)
            confine.grant_instance(guest.idir, guest.record.uid)
        state = guest.idir.file(instance_dir.STATE_FILE)
        restore = state if os.path.exists(state) else None
        self._quiet.discard(guest.uuid)
        self.hv.start(guest, restore_from=restore)
        if restore:
            os.unlink(restore)
        LOG.info("guest started%s", " from its saved state" if restore else "",
                 instance=instance)

    def _stop(self, guest, instance):
        """Stop the guest's process (no lifecycle event from it)."""
        if not self.hv.running(guest):
            self.hv.stop(guest)        # drops what is left (connections)
            return
        self._quiet.add(guest.uuid)
        try:
            self.hv.stop(guest)
        finally:
            self._quiet.discard(guest.uuid)
        LOG.info("guest stopped", instance=instance)

    def _rebuild(self, guest, instance, network_info, block_device_info):
        """Start the guest again from the current configuration and what nova says it has
        now (volumes reconnected, interfaces plugged again), as libvirt's hard reboot;
        the ports ``[workarounds]wait_for_vif_plugged_event_during_hard_reboot`` asks
        for are unplugged first, and their ``network-vif-plugged`` awaited before the
        guest starts (``vif_events``)."""
        self._stop(guest, instance)
        events = vif_events.on_hard_reboot(network_info)
        waited = {e[1] for e in events}
        for vif in network_info or []:
            if vif["id"] in waited:        # down, so that Neutron reports it up again
                vifs.unplug(instance, vif)
        try:
            with vif_events.plugging(self.virtapi, instance, network_info, events=events):
                self._plug_and_connect(guest, instance, network_info, block_device_info)
        except exception.VirtualInterfaceCreateException:
            with excutils.save_and_reraise_exception():
                LOG.warning("the ports were not reported plugged; the guest stays off "
                            "and its ports unplugged", instance=instance)
                self.unplug_vifs(instance, network_info)
        self._save(guest)
        self._start(guest, instance)

    def power_off(self, instance, timeout=0, retry_interval=0):
        """A clean shutdown if ``timeout``: the ACPI power button, pressed again every
        ``retry_interval`` seconds, until the guest is off or ``timeout`` has passed;
        then the guest's process is stopped."""
        guest = self._guest(instance)
        if timeout and self.hv.running(guest):
            self._quiet.add(guest.uuid)
            try:
                self._clean_shutdown(guest, instance, timeout, retry_interval)
            finally:
                self._quiet.discard(guest.uuid)
        self._stop(guest, instance)

    def _clean_shutdown(self, guest, instance, timeout, retry_interval):
        deadline = time.monotonic() + timeout
        presses = 0
        while True:
            try:
                self.hv.request_shutdown(guest)
            except exception.NovaException as e:
                LOG.warning("the shutdown request failed: %s", e, instance=instance)
                return
            presses += 1
            until = min(deadline, time.monotonic() + (retry_interval or timeout))
            while self.hv.running(guest) and time.monotonic() < until:
                time.sleep(0.1)
            if not self.hv.running(guest):
                LOG.info("the guest powered off (%d shutdown request(s))", presses,
                         instance=instance)
                return
            if time.monotonic() >= deadline:
                LOG.warning("the guest did not power off within %ss after %d shutdown "
                            "request(s); stopping it", timeout, presses, instance=instance)
                return

    def power_on(self, context, instance, network_info, block_device_info=None,
                 accel_info=None, share_info=None):
        guest = self._guest(instance)
        if not self.hv.running(guest):
            self._rebuild(guest, instance, network_info, block_device_info)

    def reboot(self, context, instance, network_info, reboot_type, block_device_info=None,
               bad_volumes_callback=None, accel_info=None, share_info=None):
        guest = self._guest(instance)
        if reboot_type == "SOFT" and self.hv.running(guest):
            # a clean power-off within the grace time, then a fresh start; a guest that
            # stays up gets stopped the same way, as a hard reboot
            LOG.info("soft reboot", instance=instance)
            self.power_off(instance, timeout=CONF.reboot_timeout or 60,
                           retry_interval=CONF.reboot_timeout or 60)
            self._start(guest, instance)
            return
        LOG.info("hard reboot: the guest is rebuilt from its configuration",
                 instance=instance)
        self._discard_state(guest)     # like a fresh boot: a saved state is dropped
        self._rebuild(guest, instance, network_info, block_device_info)

    @staticmethod
    def _discard_state(guest):
        for name in (instance_dir.STATE_FILE, instance_dir.STATE_FILE + ".part"):
            if os.path.exists(guest.idir.file(name)):
                os.unlink(guest.idir.file(name))

    def _running_guest(self, instance):
        guest = self._guest(instance)
        if not self.hv.running(guest):
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        return guest

    def pause(self, instance):
        self._optional(hv_api.PAUSE)
        self.hv.pause(self._running_guest(instance))
        LOG.info("guest paused", instance=instance)

    def unpause(self, instance):
        self._optional(hv_api.PAUSE)
        self.hv.unpause(self._running_guest(instance))
        LOG.info("guest unpaused", instance=instance)

    def trigger_crash_dump(self, instance):
        """An NMI, as a physical machine's crash-dump button gives (the guest decides)."""
        self._optional(hv_api.NMI)
        self.hv.inject_nmi(self._running_guest(instance))
        LOG.info("NMI injected", instance=instance)

    def suspend(self, context, instance):
        """Save the guest's state to the instance directory and stop it."""
        self._optional(hv_api.SAVE_RESTORE)
        guest = self._running_guest(instance)
        part = guest.idir.file(instance_dir.STATE_FILE + ".part")
        self._quiet.add(guest.uuid)
        try:
            self.hv.save(guest, part)
            fd = os.open(part, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(part, guest.idir.file(instance_dir.STATE_FILE))
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.warning("suspend failed; the guest keeps running", instance=instance)
                self._discard_state(guest)
        finally:
            self._quiet.discard(guest.uuid)
        self._stop(guest, instance)
        LOG.info("guest suspended (state saved)", instance=instance)

    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        self._optional(hv_api.SAVE_RESTORE)
        guest = self._guest(instance)
        if not os.path.exists(guest.idir.file(instance_dir.STATE_FILE)):
            raise exception.InstanceResumeFailure(
                reason=_("instance %s has no saved state") % instance.uuid)
        if not self.hv.running(guest):
            self._start(guest, instance)

    # -- delete -----------------------------------------------------------------------------
    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        idir = instance_dir.InstanceDir(instance.uuid)
        try:
            guest = self._load(instance.uuid)
        except rec.CorruptRecord as e:
            LOG.warning("%s; destroying what is there", e, instance=instance)
            guest = None
        guest = guest or hv_api.Guest(instance.uuid, idir,
                                      rec.Record(instance.name, 0, 0, {}))
        if idir.host_exists():
            self._stop(guest, instance)
        self.unplug_vifs(instance, network_info)
        self._disconnect_volumes(guest, block_device_info)
        if not destroy_disks:
            self._leave_host(guest, instance)     # the disks stay (shared storage)
        else:
            idir.remove()
            # a resize being reverted still needs the directory kept aside
            reverting = instance.obj_attr_is_set("task_state") and \
                instance.task_state == task_states.RESIZE_REVERTING
            if not reverting:
                disk_transfer.stop_exports(self._resize_dir(instance))
                self._resize_idir(instance).remove()
            LOG.info("guest and its files removed", instance=instance)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        if destroy_vifs:
            self.unplug_vifs(instance, network_info)
        if destroy_disks:
            instance_dir.InstanceDir(instance.uuid).remove()

    def _leave_host(self, guest, instance):
        """This host's files of an instance whose disks stay (another host runs it
        from a shared instances_path): its record and runtime files removed, its guest
        uid's grants on the disks revoked."""
        idir = guest.idir
        if not idir.separate:
            return
        if self._desc.confined and guest.record.uid and idir.exists():
            try:
                confine.revoke_instance_dir(idir.path, guest.record.uid)
            except Exception as e:
                LOG.warning("revoking uid %d on %s failed: %s", guest.record.uid,
                            idir.path, e, instance=instance)
        idir.remove_host()
        LOG.info("this host's files of the instance removed; its disks stay",
                 instance=instance)

    # -- resize and cold migration ----------------------------------------------------------
    def _resize_dir(self, instance):
        return self._resize_idir(instance).path

    @staticmethod
    def _resize_idir(instance):
        return instance_dir.InstanceDir(instance.uuid, suffix="_resize")

    def _same_host(self, context, instance, dest):
        """Whether the resize stays here: the destination compute of the instance's
        migration (``dest`` is only an address, which two hosts may share)."""
        loadable = context is not None and instance.obj_attr_is_set("uuid")
        mc = instance.migration_context if loadable or instance.obj_attr_is_set(
            "migration_context") else None
        if mc is not None and "migration_id" in mc and mc.migration_id:
            migration_obj = objects.Migration.get_by_id(context, mc.migration_id)
            return migration_obj.dest_compute == CONF.host
        return dest in (CONF.host, CONF.my_ip)

    def migrate_disk_and_power_off(self, context, instance, dest, flavor, network_info,
                                   block_device_info=None, timeout=0, retry_interval=0):
        """The instance is stopped and its directory kept aside (``<uuid>_resize``)
        until the resize is confirmed or reverted; to another host its disks are
        served for the destination to fetch (``nova_common.disk_transfer``)."""
        remote = not self._same_host(context, instance, dest)
        if remote and not self._desc.has(hv_api.COLD_MIGRATION):
            raise exception.InstanceFaultRollback(exception.MigrationPreCheckError(
                reason=_("the %s driver resizes on the same host only "
                         "(allow_resize_to_same_host)") % self._desc.hypervisor_type))
        if flavor.root_gb < instance.flavor.root_gb:
            raise exception.InstanceFaultRollback(exception.ResizeError(
                reason=_("the root disk cannot shrink")))
        try:
            address, tls_dir = self.hv.disk_transfer("server") if remote else (None, None)
        except exception.NovaException as e:
            raise exception.InstanceFaultRollback(e)
        guest = self._guest(instance)
        if any(v.get("encryption") for v in guest.record.volumes.values()):
            raise exception.InstanceFaultRollback(exception.ResizeError(
                reason=_("resizing an instance with encrypted volumes is not supported "
                         "by this driver")))
        was_running = self.hv.running(guest)
        self.power_off(instance, timeout, retry_interval)
        self.unplug_vifs(instance, network_info)
        self._disconnect_volumes(guest, block_device_info)
        kept = self._resize_dir(instance)
        guest.idir.rename(self._resize_idir(instance))
        if not remote:
            LOG.info("stopped for resize; its directory is kept aside", instance=instance)
            return ""
        try:
            info = disk_transfer.export(kept, guest.record.spec, address, tls_dir,
                                        instance.uuid)
        except Exception as e:
            LOG.error("serving the disks to %s failed: %s; the instance stays here",
                      dest, e, instance=instance)
            self._back_to_source(guest, instance, network_info, block_device_info,
                                 was_running)
            raise exception.InstanceFaultRollback(exception.MigrationError(
                reason=_("the disks could not be served: %s") % e))
        LOG.info("stopped for migration to %s; its disks are served to it", dest,
                 instance=instance)
        return json.dumps(info)

    def _back_to_source(self, guest, instance, network_info, block_device_info,
                        was_running):
        """After a failed start of a migration: the directory back, the interfaces
        and volumes again, the guest started if it ran."""
        kept = self._resize_dir(instance)
        disk_transfer.stop_exports(kept)
        disk_transfer.remove_probes(kept)
        self._resize_idir(instance).rename(guest.idir)
        self._plug_and_connect(guest, instance, network_info, block_device_info)
        self._save(guest)
        if was_running:
            self._start(guest, instance)

    def finish_migration(self, context, migration, instance, disk_info, network_info,
                         image_meta, resize_instance, allocations, block_device_info=None,
                         power_on=True, share_info=None):
        """The instance again, with its new flavor, from the disks kept aside."""
        old = instance_dir.InstanceDir(instance.uuid, suffix="_resize")
        remote = disk_transfer.parse(disk_info)        # None: resized on this host
        kept = None
        if remote is not None and disk_transfer.shared(remote, old.path):
            LOG.info("the source shares instances_path with this host", instance=instance)
            if not old.separate:      # its record is with the disks: a copy of it
                kept = self._kept_record(old)
            spec, remote = remote["spec"], None
        elif remote is None:
            kept = self._kept_record(old)
        else:
            spec = remote["spec"]
        if kept is None:
            kept = rec.Record(name=instance.name, vcpus=instance.flavor.vcpus,
                              memory_mb=instance.flavor.memory_mb, spec=spec,
                              uid=self._new_uid(instance.uuid) if self._desc.confined
                              else 0)
        idir = instance_dir.InstanceDir(instance.uuid).create()
        guest = hv_api.Guest(instance.uuid, idir, kept)
        fetched, tls_dir = [], None
        try:
            if remote is not None:
                self._optional(hv_api.COLD_MIGRATION)
                tls_dir = self.hv.disk_transfer("client")[1]
                local = disk_transfer.pull(remote, idir.path, tls_dir, instance.uuid,
                                           fetched)
            else:
                for name in CARRIED:
                    if os.path.exists(old.file(name)):
                        shutil.copy2(old.file(name), idir.file(name))
            root = idir.file(instance_dir.ROOT_DISK)
            root_gb = instance.flavor.root_gb
            if resize_instance and root_gb and os.path.exists(root):
                processutils.execute("qemu-img", "resize", "-q", root,
                                     str(root_gb * disks.GiB))
            kept.vcpus, kept.memory_mb = instance.flavor.vcpus, instance.flavor.memory_mb
            kept.spec = self.hv.launch_spec(
                instance, image_meta, root_disk=os.path.exists(root),
                config_drive=os.path.exists(idir.file(instance_dir.CONFIG_DRIVE)),
                previous=kept.spec)
            if self._desc.has(hv_api.LOCAL_DISKS):
                kept.spec["local_disks"] = local if remote is not None else \
                    disks.copy_local_disks(old.path, idir.path)
            # no network-vif-plugged awaited, as libvirt: Neutron may not have seen the
            # ports unplugged by migrate_disk_and_power_off, so no event would come
            self._plug_and_connect(guest, instance, network_info, block_device_info)
            self._save(guest)
            if power_on:
                self._start(guest, instance)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.warning("finishing the resize failed; the directory kept aside stays "
                            "for a revert", instance=instance)
                self._undo_launch(guest, instance, network_info, block_device_info)
                if remote is not None:     # the source's servers of unread disks end
                    disk_transfer.release(remote, tls_dir, fetched)
        LOG.info("resized", instance=instance)

    def _kept_record(self, old):
        try:
            kept = rec.read(old.host_path, self.hv.upgrade_record)
        except rec.CorruptRecord as e:
            raise exception.InternalError(str(e))
        if kept is None:
            raise exception.InternalError(_("no record in the directory kept aside (%s)")
                                          % old.host_path)
        return kept

    def confirm_migration(self, context, migration, instance, network_info):
        disk_transfer.stop_exports(self._resize_dir(instance))
        self._resize_idir(instance).remove()
        LOG.info("resize confirmed; the old directory is removed", instance=instance)

    def finish_revert_migration(self, context, instance, network_info, migration,
                                block_device_info=None, power_on=True, share_info=None):
        """Back to the directory kept aside (nova has destroyed the resized one)."""
        idir = instance_dir.InstanceDir(instance.uuid)
        if os.path.isdir(self._resize_dir(instance)):
            if idir.exists():
                try:
                    self._stop(self._guest(instance), instance)
                except exception.NovaException:
                    LOG.warning("no usable resized guest to stop", instance=instance)
                idir.remove()
            disk_transfer.stop_exports(self._resize_dir(instance))
            disk_transfer.remove_probes(self._resize_dir(instance))
            self._resize_idir(instance).rename(idir)
        guest = self._guest(instance)
        try:
            # the ports not yet active, as libvirt waits here (its ports were unplugged
            # by migrate_disk_and_power_off)
            with vif_events.plugging(self.virtapi, instance, network_info, power_on):
                self._plug_and_connect(guest, instance, network_info, block_device_info)
        except exception.VirtualInterfaceCreateException:
            with excutils.save_and_reraise_exception():
                LOG.warning("the ports were not reported plugged; the reverted guest "
                            "stays off and its ports unplugged", instance=instance)
                self.unplug_vifs(instance, network_info)
        self._save(guest)
        if power_on:
            self._start(guest, instance)
        LOG.info("resize reverted", instance=instance)

    # -- rescue -----------------------------------------------------------------------------
    def rescue(self, context, instance, network_info, image_meta, rescue_password,
               block_device_info, share_info):
        """Boot the rescue image, the instance's own root disk attached as the second
        disk; ``unrescue`` boots the instance as it was."""
        self._optional(hv_api.RESCUE)
        guest = self._guest(instance)
        if not os.path.exists(guest.idir.file(instance_dir.ROOT_DISK)):
            raise exception.InstanceNotRescuable(
                instance_id=instance.uuid,
                reason=_("only instances booted from an image can be rescued"))
        disks.check_image(instance, image_meta, self._desc.image_formats)
        image_id = image_meta.id if "id" in image_meta else instance.image_ref
        disks.create_root_disk(context, instance, guest.idir.file(instance_dir.RESCUE_DISK),
                               image_id)
        self._stop(guest, instance)
        guest.record.rescued = True
        self._save(guest)
        try:
            self._start(guest, instance)
        except Exception:
            with excutils.save_and_reraise_exception():
                self.unrescue(context, instance)
        LOG.info("rescued", instance=instance)

    def unrescue(self, context, instance):
        guest = self._guest(instance)
        self._stop(guest, instance)
        guest.record.rescued = False
        self._save(guest)
        rescue = guest.idir.file(instance_dir.RESCUE_DISK)
        if os.path.exists(rescue):
            os.unlink(rescue)
        self._start(guest, instance)
        LOG.info("unrescued", instance=instance)

    # -- diagnostics ------------------------------------------------------------------------
    def _diagnostics(self, instance):
        if type(self.hv).diagnostics is hv_api.Hypervisor.diagnostics:
            raise NotImplementedError()
        guest = self._guest(instance)
        stats = None
        state = power_state.SHUTDOWN
        if self.hv.running(guest):
            state = self.hv.state(guest)
            stats = self.hv.diagnostics(guest)
        return guest, stats, diagnostics.build(
            instance, state, guest.record, stats, self._desc.hypervisor_type,
            guest.record.spec.get("config_drive"))

    def get_instance_diagnostics(self, instance):
        return self._diagnostics(instance)[2]

    def get_diagnostics(self, instance):
        guest, stats, diags = self._diagnostics(instance)
        return diagnostics.legacy(diags, guest.record, stats)

    # -- volumes ----------------------------------------------------------------------------
    def get_volume_connector(self, instance):
        return self.hv.volume_connector(volumes.connector_properties())

    @staticmethod
    def _volume_id(connection_info):
        return connection_info["data"].get("volume_id") or connection_info["serial"]

    def _connect_volume(self, guest, connection_info, boot=False, slot=None,
                        encryption=None):
        """Connect a volume on this host into ``guest.record`` (not written).
        ``encryption``: the hypervisor's ``volume_encryption`` field ({} for none, as
        recorded before a restart); None refuses a volume cinder says is encrypted (nova
        gives a spawn no encryption metadata)."""
        volume_id = self._volume_id(connection_info)
        if encryption is None:
            if (connection_info.get("data") or {}).get("encrypted"):
                raise exception.VolumeEncryptionNotSupported(
                    volume_type=_("%s (attach it to the running server instead of "
                                  "booting with it)")
                    % connection_info.get("driver_volume_type"), volume_id=volume_id)
        encrypted = {"encryption": encryption} if encryption else {}
        if slot is None and not boot:
            slot = self.hv.free_slot(guest)
        shared = {"shared": True} if connection_info.get("multiattach") else {}
        if shared and not self._desc.has(hv_api.MULTIATTACH):
            raise exception.MultiattachNotSupportedByVirtDriver(volume_id=volume_id)
        if self.hv.connects_volume(connection_info):
            vol = dict(self.hv.connect_volume(guest, volume_id, connection_info),
                       slot=slot, boot=boot, **shared, **encrypted)
            guest.record.volumes[volume_id] = vol
            return volume_id, vol
        path, device_info = volumes.connect(connection_info)
        try:
            volumes.grant(path, guest.record.uid)
        except Exception:
            with excutils.save_and_reraise_exception():
                volumes.disconnect(connection_info, device_info)
        vol = {"path": path, "block": volumes.is_block_device(path), "slot": slot,
               "boot": boot, "device_info": device_info, **shared, **encrypted}
        guest.record.volumes[volume_id] = vol
        return volume_id, vol

    def _disconnect_volumes(self, guest, block_device_info):
        """Disconnect the instance's volumes on this host (errors logged, each tried)."""
        for bdm in driver.block_device_info_get_mapping(block_device_info):
            info = bdm["connection_info"]
            vol = guest.record.volumes.get(self._volume_id(info), {})
            try:
                self._release_volume(guest, info, vol)
            except Exception:
                LOG.exception("disconnecting volume %s failed", self._volume_id(info),
                              instance_uuid=guest.uuid)

    def _release_volume(self, guest, connection_info, vol):
        """Undo ``_connect_volume`` on this host (nothing for a volume the hypervisor
        connected itself)."""
        if self.hv.connects_volume(connection_info):
            return
        if vol.get("path"):
            volumes.revoke(vol["path"], guest.record.uid)
        if connection_info.get("multiattach") and self._volume_users(
                self._volume_id(connection_info), guest.uuid):
            LOG.info("volume %s stays connected on this host: other instances use it",
                     self._volume_id(connection_info), instance_uuid=guest.uuid)
            return
        volumes.disconnect(connection_info, vol.get("device_info"))

    def _volume_users(self, volume_id, but):
        """Other instances on this host whose records have the volume (multiattach)."""
        return [g.uuid for g in self._records()
                if g.uuid != but and volume_id in g.record.volumes]

    def attach_volume(self, context, connection_info, instance, mountpoint, disk_bus=None,
                      device_type=None, encryption=None):
        """Connect the volume on this host (os-brick) and hot-plug it; recorded so every
        later start has it too."""
        volume_id = self._volume_id(connection_info)
        if device_type not in (None, "disk") or disk_bus not in (None, "virtio"):
            raise exception.VolumeAttachFailed(
                volume_id=volume_id, reason=_("only virtio disks are supported"))
        with self._lock(instance):
            guest = self._guest(instance)
            running = self.hv.running(guest)
            if running:
                self._optional(hv_api.DISK_HOTPLUG)
            encrypted = {}
            if encryption:
                encrypted = self.hv.volume_encryption(
                    guest, context, volume_id, connection_info, encryption) or {}
                if encrypted and not running:    # its header is checked by the guest's
                    raise exception.VolumeEncryptionNotSupported(      # hypervisor
                        volume_type=_("%s (attach it while the server runs)")
                        % connection_info.get("driver_volume_type"), volume_id=volume_id)
            volume_id, vol = self._connect_volume(guest, connection_info,
                                                  encryption=encrypted)
            try:
                if running:
                    self.hv.attach_disk(guest, volume_id, vol)
                self._save(guest)
            except Exception:
                with excutils.save_and_reraise_exception():
                    LOG.warning("attaching volume %s failed; disconnecting it", volume_id,
                                instance=instance)
                    guest.record.volumes.pop(volume_id, None)
                    self._release_volume(guest, connection_info, vol)
        LOG.info("volume %s attached", volume_id, instance=instance)

    def detach_volume(self, context, connection_info, instance, mountpoint,
                      encryption=None):
        volume_id = self._volume_id(connection_info)
        with self._lock(instance):
            guest = self._guest(instance)
            vol = guest.record.volumes.get(volume_id)
            if vol is None:
                raise exception.DiskNotFound(location=volume_id)
            if self.hv.running(guest):
                self._optional(hv_api.DISK_HOTPLUG)
                self.hv.detach_disk(guest, volume_id, vol)
            del guest.record.volumes[volume_id]
            self._save(guest)
        self._release_volume(guest, connection_info, vol)
        LOG.info("volume %s detached", volume_id, instance=instance)

    def swap_volume(self, context, old_connection_info, new_connection_info, instance,
                    mountpoint, resize_to):
        """Cinder's migration or retype of an attached volume: the new volume connected,
        the guest's disk copied to it and switched over while the guest runs (the
        hypervisor's ``swap_disk``), the old one disconnected."""
        old_id = self._volume_id(old_connection_info)
        with self._lock(instance):
            guest = self._guest(instance)
            old = guest.record.volumes.get(old_id)
            if old is None:
                raise exception.DiskNotFound(location=old_id)
            self._optional(hv_api.DISK_SWAP)
            if old.get("encryption") or \
                    (new_connection_info.get("data") or {}).get("encrypted"):
                raise NotImplementedError(_("swapping an encrypted volume is not "
                                            "supported by this driver"))
            if not self.hv.running(guest):
                raise exception.InstanceNotRunning(instance_id=instance.uuid)
            new_id, new = self._connect_volume(guest, new_connection_info,
                                               boot=old.get("boot", False),
                                               slot=old.get("slot"))
            try:
                self.hv.swap_disk(guest, old_id, old, new_id, new)
            except Exception:
                with excutils.save_and_reraise_exception():
                    LOG.warning("swapping volume %s for %s failed; the guest keeps the "
                                "old one", old_id, new_id, instance=instance)
                    guest.record.volumes.pop(new_id, None)
                    guest.record.volumes[old_id] = old
                    self._release_volume(guest, new_connection_info, new)
            if old_id != new_id:
                guest.record.volumes.pop(old_id, None)
            self._save(guest)
            if resize_to:
                self.hv.resize_disk(guest, new_id, new, resize_to * 1024 ** 3)
        self._release_volume(guest, old_connection_info, old)
        LOG.info("volume %s swapped for %s", old_id, new_id, instance=instance)

    def extend_volume(self, context, connection_info, instance, requested_size):
        volume_id = self._volume_id(connection_info)
        guest = self._guest(instance)
        vol = guest.record.volumes.get(volume_id)
        if vol is None:
            raise exception.DiskNotFound(location=volume_id)
        if vol.get("encryption"):
            raise exception.ExtendVolumeNotSupported()
        size = (vol.get("path") and volumes.extend(connection_info, vol["path"])) or \
            requested_size
        if self.hv.running(guest):
            self._optional(hv_api.DISK_RESIZE)
            self.hv.resize_disk(guest, volume_id, vol, int(size))
        LOG.info("volume %s extended to %d bytes", volume_id, int(size), instance=instance)

    # -- network interfaces -----------------------------------------------------------------
    def _plug(self, guest, instance, vif, slot=None):
        """Plug ``vif``'s host side into ``guest.record`` (not written)."""
        if slot is None:
            slot = self.hv.free_slot(guest)
        queues = vifs.queues(instance) if self._desc.has(hv_api.MULTIQUEUE) else 1
        if vif["type"] == network_model.VIF_TYPE_VHOSTUSER:
            queues = 1              # (one queue pair on vhost-user ports)
        plugged = vifs.plug(instance, vif, owner=self._tap_owner(guest), queues=queues)
        guest.record.vifs[vif["id"]] = dict(vifs.backend(vif, plugged),
                                            mac=vif["address"], slot=slot)
        if queues > 1:
            guest.record.vifs[vif["id"]]["queues"] = queues
        return guest.record.vifs[vif["id"]]

    def _tap_owner(self, guest):
        return (guest.record.uid or None) if self._desc.guest_opens_taps else None

    def plug_vifs(self, instance, network_info):
        # after a host reboot the taps are gone: make them again (idempotent); an
        # instance whose record is unusable goes to ERROR here (nova's init_instance)
        try:
            guest = self._load(instance.uuid)
        except rec.CorruptRecord as e:
            LOG.error("%s", e, instance=instance)
            raise exception.VirtualInterfacePlugException(str(e))
        for vif in network_info or []:
            entry = guest.record.vifs.get(vif["id"], {}) if guest else {}
            vifs.plug(instance, vif, owner=self._tap_owner(guest) if guest else None,
                      queues=entry.get("queues", 1))

    def unplug_vifs(self, instance, network_info):
        for vif in network_info or []:
            vifs.unplug(instance, vif)

    def attach_interface(self, context, instance, image_meta, vif):
        vifs.check(vif, self._desc.vif_types)
        with self._lock(instance):
            guest = self._guest(instance)
            if vif["id"] in guest.record.vifs:
                return
            running = self.hv.running(guest)
            if running:
                self._optional(hv_api.NIC_HOTPLUG)
            try:
                entry = self._plug(guest, instance, vif)
                if running:
                    self.hv.attach_nic(guest, vif["id"], entry)
                self._save(guest)
            except Exception as e:
                LOG.warning("attaching interface %s failed: %s", vif["id"], e,
                            instance=instance)
                vifs.unplug(instance, vif)
                raise exception.InterfaceAttachFailed(instance_uuid=instance.uuid) from e
        LOG.info("interface %s attached", vif["id"], instance=instance)

    def detach_interface(self, context, instance, vif):
        with self._lock(instance):
            guest = self._guest(instance)
            entry = guest.record.vifs.get(vif["id"])
            if entry is None:
                raise exception.NotFound(_("interface %s is not attached") % vif["id"])
            if self.hv.running(guest):
                self._optional(hv_api.NIC_HOTPLUG)
                self.hv.detach_nic(guest, vif["id"], entry)
            del guest.record.vifs[vif["id"]]
            self._save(guest)
        vifs.unplug(instance, vif)
        LOG.info("interface %s detached", vif["id"], instance=instance)

    # -- snapshots --------------------------------------------------------------------------
    def snapshot(self, context, instance, image_id, update_task_state):
        """The root disk as a standalone qcow2 image, uploaded to Glance as ``image_id``:
        copied live (point in time) from a running guest, from the disk file otherwise."""
        guest = self._guest(instance)
        live = self.hv.running(guest)
        if live:
            self._optional(hv_api.EXPORT_ROOT)
        image = self._image_api.get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        path = guest.idir.file("snapshot-%s.qcow2" % image_id)
        try:
            if live:
                self.hv.export_root_disk(guest, path)
            else:
                processutils.execute("qemu-img", "convert", "-q", "-O", "qcow2",
                                     guest.idir.file(instance_dir.ROOT_DISK), path)
            update_task_state(task_state=task_states.IMAGE_UPLOADING,
                              expected_state=task_states.IMAGE_PENDING_UPLOAD)
            metadata = {"name": image["name"], "status": "active",
                        "disk_format": "qcow2", "container_format": "bare",
                        "properties": {"image_location": "snapshot",
                                       "image_state": "available",
                                       "owner_id": instance.project_id}}
            if instance.os_type:
                metadata["properties"]["os_type"] = instance.os_type
            with open(path, "rb") as f:
                self._image_api.update(context, image_id, metadata, f, purge_props=False)
        finally:
            if os.path.exists(path):
                os.unlink(path)
        LOG.info("snapshot uploaded as image %s", image_id, instance=instance)

    # -- consoles ---------------------------------------------------------------------------
    def _console_port(self, instance, kind):
        guest = self._guest(instance)
        port = self.hv.console_endpoints(guest).get(kind) if self.hv.running(guest) \
            else None
        if not port:
            raise exception.ConsoleTypeUnavailable(console_type=kind)
        return port

    def get_vnc_console(self, context, instance):
        return ctype.ConsoleVNC(host=CONF.vnc.server_proxyclient_address,
                                port=self._console_port(instance, "vnc"))

    def get_serial_console(self, context, instance):
        return ctype.ConsoleSerial(host=CONF.serial_console.proxyclient_address,
                                   port=self._console_port(instance, "serial"))

    def get_console_output(self, context, instance):
        return consolelog.tail(self._guest(instance).idir.host_path,
                               consolelog.MAX_CONSOLE_BYTES)

    # -- image cache ------------------------------------------------------------------------
    def manage_image_cache(self, context, all_instances):
        """nova's periodic image cache pass: unused bases in ``_base`` are removed."""
        self._optional(hv_api.IMAGE_CACHE)
        self._image_cache.update(context, all_instances)
