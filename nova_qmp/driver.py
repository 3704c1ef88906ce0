"""Nova compute driver running QEMU directly, managed over QMP.

Loaded with ``compute_driver = qmp.QMPDriver`` (the ``nova.virt.qmp`` shim). Thin: QEMU
command lines and processes in ``nova_qmp.qemu``, QMP connections and events in
``nova_qmp.monitor``, instance files, disks, host resources and event delivery in
``nova_common``. Operations not implemented here raise ``NotImplementedError`` (nova's
base class), so the compute manager reports them as unsupported.
"""
import os
import shutil
import time

from nova import exception
from nova.compute import power_state
from nova.compute import task_states
import nova.conf
from nova.console import type as ctype
from nova.i18n import _
from nova.image import glance
from nova.virt import configdrive
from nova.virt import driver
from nova.virt import event as virtevent
from nova.virt import hardware
from oslo_concurrency import lockutils
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import versionutils

from nova_common import consolelog
from nova_common import disks
from nova_common import host
from nova_common import imagecache
from nova_common import instance_dir
from nova_common import lifecycle
from nova_common import ports
from nova_common import vifs
from nova_common import volumes
from nova_qmp import monitor
from nova_qmp import opts
from nova_qmp import qemu

CONF = nova.conf.CONF
opts.register(CONF)
LOG = logging.getLogger(__name__)

# QMP query-status -> nova power state
STATUS = {"running": power_state.RUNNING, "paused": power_state.PAUSED,
          "suspended": power_state.SUSPENDED, "shutdown": power_state.SHUTDOWN,
          "guest-panicked": power_state.CRASHED, "internal-error": power_state.CRASHED,
          "io-error": power_state.PAUSED, "prelaunch": power_state.PAUSED,
          "inmigrate": power_state.PAUSED, "postmigrate": power_state.PAUSED,
          "finish-migrate": power_state.PAUSED, "restore-vm": power_state.PAUSED,
          "save-vm": power_state.PAUSED, "debug": power_state.PAUSED,
          "watchdog": power_state.PAUSED}
# QMP events -> nova lifecycle transitions
EVENTS = {"STOP": virtevent.EVENT_LIFECYCLE_PAUSED,
          "RESUME": virtevent.EVENT_LIFECYCLE_RESUMED,
          "SHUTDOWN": virtevent.EVENT_LIFECYCLE_STOPPED,
          "RESET": virtevent.EVENT_LIFECYCLE_STARTED,       # nova re-reads the power state
          "SUSPEND": virtevent.EVENT_LIFECYCLE_SUSPENDED,   # the guest's own ACPI S3
          "DISCONNECTED": virtevent.EVENT_LIFECYCLE_STOPPED}


class QMPDriver(driver.ComputeDriver):
    capabilities = dict(
        driver.ComputeDriver.capabilities,
        has_imagecache=True,
        supports_image_type_qcow2=True,
        supports_image_type_raw=True,
        supports_image_type_aki=False,
        supports_image_type_ami=False,
        supports_image_type_ari=False,
        supports_image_type_iso=False,
        supports_image_type_vdi=False,
        supports_image_type_vhd=False,
        supports_image_type_vhdx=False,
        supports_image_type_vmdk=False,
        supports_image_type_ploop=False,
        supports_extend_volume=True,
        supports_attach_interface=True,
        supports_multiattach=False,
    )

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        self._events = lifecycle.Dispatcher(self.emit_event)
        self._monitor = None
        self._quiet = set()        # instances whose QEMU exit the driver itself causes
        self._version = None
        self._image_api = glance.API()
        self._image_cache = imagecache.ImageCacheManager()

    # -- service start ----------------------------------------------------------------------
    def init_host(self, host):
        qemu.check_binary(CONF)        # nova-compute does not start without its QEMU
        os.makedirs(CONF.instances_path, exist_ok=True)
        self._monitor = monitor.Monitor(self._on_qmp_event, timeout=CONF.qmp.qmp_timeout)
        self._events.start()
        for uuid in instance_dir.list_uuids():
            idir = instance_dir.InstanceDir(uuid)
            if qemu.alive(qemu.read_pid(idir), uuid):
                try:
                    self._monitor.connect(uuid, idir.file(qemu.QMP_SOCKET))
                    LOG.info("reattached to running instance %s", uuid)
                except monitor.MonitorError as e:
                    LOG.warning("instance %s runs but its QMP socket does not answer: %s",
                                uuid, e)

    def cleanup_host(self, host):
        # the instances keep running; a new nova-compute attaches to them again
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None

    def _on_qmp_event(self, uuid, name):
        # called from the monitor's native thread: queue only, never log here
        transition = EVENTS.get(name)
        if transition is not None and uuid not in self._quiet:
            self._events.post(uuid, transition)

    # -- inventory --------------------------------------------------------------------------
    def list_instance_uuids(self):
        return instance_dir.list_uuids()

    def list_instances(self):
        names = []
        for uuid in instance_dir.list_uuids():
            meta = instance_dir.InstanceDir(uuid).read_meta() or {}
            names.append(meta.get("name", uuid))
        return names

    def instance_exists(self, instance):
        return instance_dir.InstanceDir(instance.uuid).read_meta() is not None

    def _idir(self, instance):
        idir = instance_dir.InstanceDir(instance.uuid)
        if idir.read_meta() is None:
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        return idir

    def _running(self, instance, idir):
        return qemu.alive(qemu.read_pid(idir), instance.uuid)

    def get_info(self, instance, use_cache=True):
        idir = self._idir(instance)
        if not self._running(instance, idir):
            saved = os.path.exists(idir.file(qemu.STATE_FILE))
            return hardware.InstanceInfo(
                state=power_state.SUSPENDED if saved else power_state.SHUTDOWN)
        try:
            self._connect(instance, idir)
            status = self._monitor.execute(instance.uuid, "query-status")["status"]
        except monitor.MonitorError:
            return hardware.InstanceInfo(state=power_state.NOSTATE)
        return hardware.InstanceInfo(state=STATUS.get(status, power_state.NOSTATE))

    def get_available_nodes(self, refresh=False):
        return [CONF.host]

    def _hypervisor_version(self):
        """QEMU's version as an int (7.2.0 -> 7002000), read once."""
        if self._version is None:
            try:
                out, _err = processutils.execute(CONF.qmp.qemu_binary, "--version")
                words = out.split()
                text = words[words.index("version") + 1]
                self._version = versionutils.convert_version_to_int(
                    text.split("(")[0].split("+")[0])
            except (processutils.ProcessExecutionError, OSError, ValueError, IndexError):
                self._version = 0
        return self._version

    def _usage(self):
        vcpus = memory = 0
        for uuid in instance_dir.list_uuids():
            meta = instance_dir.InstanceDir(uuid).read_meta() or {}
            vcpus += meta.get("vcpus", 0)
            memory += meta.get("memory_mb", 0)
        return vcpus, memory

    def get_available_resource(self, nodename):
        vcpus, _memory = self._usage()
        return host.available_resource(
            nodename, "qemu", self._hypervisor_version(), qemu.arch_of(CONF.qmp.qemu_binary),
            vcpus_used=vcpus)

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        host.update_provider_tree(self, provider_tree, nodename,
                                  self.get_available_resource(nodename))

    def get_host_ip_addr(self):
        return CONF.my_ip

    def get_host_uptime(self):
        return host.uptime()

    # -- QMP --------------------------------------------------------------------------------
    def _connect(self, instance, idir):
        if not self._monitor.connected(instance.uuid):
            self._monitor.connect(instance.uuid, idir.file(qemu.QMP_SOCKET))

    def _qmp(self, instance, command, **arguments):
        idir = self._idir(instance)
        if not self._running(instance, idir):
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        try:
            self._connect(instance, idir)
            return self._monitor.execute(instance.uuid, command, arguments or None)
        except monitor.MonitorError as e:
            raise exception.InternalError(str(e)) from e

    # -- create / start / stop / delete -----------------------------------------------------
    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        mappings = driver.block_device_info_get_mapping(block_device_info)
        root_volume = self._root_volume(block_device_info, mappings)
        if root_volume is None:
            disks.check_image(instance, image_meta)
        machine = qemu.machine_type(CONF, instance, image_meta)
        qemu.check_binary(CONF)
        for vif in network_info or []:
            vifs.check(vif)
        idir = instance_dir.InstanceDir(instance.uuid).create()
        try:
            if root_volume is None:
                disks.create_root_disk(context, instance, idir.file(qemu.ROOT_DISK))
            local = disks.create_local_disks(instance, idir.path, block_device_info)
            with_config = configdrive.required_by(instance)
            if with_config:
                disks.create_config_drive(context, instance, injected_files, admin_password,
                                          network_info, idir.file(qemu.CONFIG_DRIVE))
            meta = self._launch_meta(instance, idir, machine, with_config,
                                     root_disk=root_volume is None, local_disks=local)
            self._attach_devices(instance, idir, meta, network_info, block_device_info)
            if power_on:
                self._start(instance, idir)
        except Exception:
            self._undo_launch(instance, idir, network_info, block_device_info)
            raise

    def _undo_launch(self, instance, idir, network_info, block_device_info):
        """After a failed spawn or finish_migration: no QEMU, no tap, no volume
        connection and no directory left."""
        self._stop(instance, idir)
        self.unplug_vifs(instance, network_info)
        self._disconnect_volumes(idir, block_device_info)
        idir.remove()

    @staticmethod
    def _launch_meta(instance, idir, machine, config_drive, root_disk, local_disks=()):
        """An instance's launch metadata: its QEMU command line for its current flavor
        (consoles as nova's console proxies are configured) and what it uses."""
        argv = qemu.command_line(
            CONF, instance, idir, machine, config_drive=config_drive,
            serial_ports=(ports.parse_range(CONF.serial_console.port_range)
                          if CONF.serial_console.enabled else None),
            vnc_tcp=CONF.vnc.enabled, root_disk=root_disk, local_disks=local_disks)
        return {"name": instance.name, "argv": argv, "vcpus": instance.flavor.vcpus,
                "memory_mb": instance.flavor.memory_mb}

    def _attach_devices(self, instance, idir, meta, network_info, block_device_info):
        """Plug the interfaces and connect the volumes nova gives, recorded in ``meta``
        (written after each, so a failure leaves what to undo on record)."""
        meta["vifs"], meta["volumes"] = {}, {}
        idir.write_meta(meta)
        for vif in network_info or []:
            self._plug(instance, meta, vif)
            idir.write_meta(meta)
        mappings = driver.block_device_info_get_mapping(block_device_info)
        root_volume = self._root_volume(block_device_info, mappings)
        for bdm in mappings:
            self._connect_volume(meta, bdm["connection_info"], boot=bdm is root_volume)
            idir.write_meta(meta)

    @staticmethod
    def _root_volume(block_device_info, mappings):
        """The mapping that is the root disk (boot from volume), or None."""
        root = driver.block_device_info_get_root_device(block_device_info)
        for bdm in mappings:
            if bdm.get("boot_index") == 0 or (root and bdm.get("mount_device") == root):
                return bdm
        return None

    @staticmethod
    def _volume_id(connection_info):
        return connection_info["data"].get("volume_id") or connection_info["serial"]

    def _connect_volume(self, meta, connection_info, boot=False):
        """Connect a volume on this host and record it in ``meta`` (a hot-plug port,
        or the root bus for the boot disk); returns (volume id, record)."""
        volume_id = self._volume_id(connection_info)
        port = None if boot else self._free_port(meta)
        path, device_info = volumes.connect(connection_info)
        vol = {"path": path, "block": volumes.is_block_device(path), "port": port,
               "boot": boot, "device_info": device_info}
        meta.setdefault("volumes", {})[volume_id] = vol
        return volume_id, vol

    def _disconnect_volumes(self, idir, block_device_info):
        """Disconnect the instance's volumes on this host (missing ones are fine)."""
        known = (idir.read_meta() or {}).get("volumes", {}) if idir.exists() else {}
        for bdm in driver.block_device_info_get_mapping(block_device_info):
            info = bdm["connection_info"]
            vol = known.get(self._volume_id(info), {})
            try:
                volumes.disconnect(info, vol.get("device_info"))
            except Exception:
                LOG.exception("disconnecting volume %s failed", self._volume_id(info))

    def _start(self, instance, idir):
        """Start QEMU; from the saved guest state if the instance was suspended."""
        meta = idir.read_meta()
        if os.path.exists(idir.file(qemu.QMP_SOCKET)):
            os.unlink(idir.file(qemu.QMP_SOCKET))
        state = idir.file(qemu.STATE_FILE)
        saved = os.path.exists(state)
        argv = (meta["argv"] + qemu.vif_args(meta.get("vifs", {}))
                + qemu.volume_args(meta.get("volumes", {})))
        qemu.start(CONF, instance, argv + (["-incoming", "defer"] if saved else []))
        self._quiet.discard(instance.uuid)
        try:
            self._connect(instance, idir)
            if saved:
                self._migrate(instance, "migrate-incoming", state, os.O_RDONLY)
                if self._qmp(instance, "query-status")["status"] != "running":
                    self._qmp(instance, "cont")
                os.unlink(state)
            # where QEMU bound the consoles' TCP ports, for nova's console proxies
            meta.update(qemu.listening_ports(self._qmp(instance, "query-vnc"),
                                             self._qmp(instance, "query-chardev")))
            idir.write_meta(meta)
        except (monitor.MonitorError, exception.InternalError) as e:
            self._stop(instance, idir)
            raise exception.InstanceDeployFailure(reason=str(e), instance_id=instance.uuid)

    def _migrate(self, instance, command, path, flags):
        """Run a migration to or from the file ``path`` and wait until it completes."""
        fd = os.open(path, flags, 0o600)
        try:
            self._monitor.execute_with_fd(instance.uuid, fd, "state", command,
                                          {"uri": "fd:state"})
        except monitor.MonitorError as e:
            raise exception.InternalError(str(e)) from e
        finally:
            os.close(fd)
        deadline = time.monotonic() + CONF.qmp.save_timeout
        while True:
            info = self._qmp(instance, "query-migrate")
            status = info.get("status")
            if status == "completed":
                return
            if status in ("failed", "cancelled") or time.monotonic() > deadline:
                if status not in ("failed", "cancelled"):
                    self._qmp(instance, "migrate_cancel")
                raise exception.InternalError(
                    _("%(cmd)s of instance %(uuid)s did not complete: %(why)s")
                    % {"cmd": command, "uuid": instance.uuid,
                       "why": info.get("error-desc", status or "timed out")})
            time.sleep(0.05)

    def _stop(self, instance, idir):
        """Stop the QEMU process (quit over QMP, else signals); quietly."""
        pid = qemu.read_pid(idir)
        if not qemu.alive(pid, instance.uuid):
            self._monitor.disconnect(instance.uuid)
            return
        self._quiet.add(instance.uuid)
        try:
            if self._monitor.connected(instance.uuid):
                try:
                    self._monitor.execute(instance.uuid, "quit")
                except monitor.MonitorError:
                    pass    # the signals below still stop it
            self._monitor.disconnect(instance.uuid)
            qemu.kill(pid, instance.uuid, CONF.qmp.stop_timeout)
        finally:
            self._quiet.discard(instance.uuid)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        idir = instance_dir.InstanceDir(instance.uuid)
        if idir.exists():
            self._stop(instance, idir)
        self.unplug_vifs(instance, network_info)
        self._disconnect_volumes(idir, block_device_info)
        if destroy_disks:
            idir.remove()

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        if destroy_disks:
            instance_dir.InstanceDir(instance.uuid).remove()

    def power_off(self, instance, timeout=0, retry_interval=0):
        """ACPI power button, up to ``timeout`` seconds for the guest to power off, then
        QEMU is stopped."""
        idir = self._idir(instance)
        if timeout and self._running(instance, idir):
            self._quiet.add(instance.uuid)
            try:
                self._qmp(instance, "system_powerdown")
                deadline = time.monotonic() + timeout
                while self._running(instance, idir) and time.monotonic() < deadline:
                    time.sleep(0.1)
            except exception.InternalError:
                pass
            finally:
                self._quiet.discard(instance.uuid)
        self._stop(instance, idir)

    def power_on(self, context, instance, network_info, block_device_info=None,
                 accel_info=None, share_info=None):
        idir = self._idir(instance)
        if not self._running(instance, idir):
            self._start(instance, idir)

    def reboot(self, context, instance, network_info, reboot_type, block_device_info=None,
               bad_volumes_callback=None, accel_info=None, share_info=None):
        idir = self._idir(instance)
        if reboot_type == "HARD" and not self._running(instance, idir):
            # like a fresh boot: a suspended instance's saved state is discarded
            self._discard_state(idir)
        if reboot_type == "SOFT" and self._running(instance, idir):
            # ACPI power-off within the guest's grace time, then a fresh start; a guest that
            # ignores ACPI gets the hard reboot below
            self.power_off(instance, timeout=CONF.reboot_timeout or 60)
            self._start(instance, idir)
            return
        if self._running(instance, idir):
            self._qmp(instance, "system_reset")
            if self.get_info(instance).state == power_state.PAUSED:
                self._qmp(instance, "cont")
        else:
            self._start(instance, idir)

    def _discard_state(self, idir):
        for name in (qemu.STATE_FILE, qemu.STATE_FILE + ".part"):
            if os.path.exists(idir.file(name)):
                os.unlink(idir.file(name))

    def suspend(self, context, instance):
        """Save the guest's state to the instance directory and stop QEMU."""
        idir = self._idir(instance)
        if not self._running(instance, idir):
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        part = idir.file(qemu.STATE_FILE + ".part")
        self._quiet.add(instance.uuid)
        try:
            self._qmp(instance, "stop")
            self._migrate(instance, "migrate", part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            fd = os.open(part, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(part, idir.file(qemu.STATE_FILE))
        except Exception:
            self._discard_state(idir)
            if self._running(instance, idir):
                self._qmp(instance, "cont")
            raise
        finally:
            self._quiet.discard(instance.uuid)
        self._stop(instance, idir)

    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        idir = self._idir(instance)
        if not os.path.exists(idir.file(qemu.STATE_FILE)):
            raise exception.InstanceResumeFailure(
                reason=_("instance %s has no saved state") % instance.uuid)
        if not self._running(instance, idir):
            self._start(instance, idir)

    # -- resize (on this host) --------------------------------------------------------------
    def _resize_dir(self, instance):
        return instance_dir.InstanceDir(instance.uuid, suffix="_resize").path

    def migrate_disk_and_power_off(self, context, instance, dest, flavor, network_info,
                                   block_device_info=None, timeout=0, retry_interval=0):
        """Resizes stay on this host: the instance is stopped and its directory kept
        aside (``<uuid>_resize``) until the resize is confirmed or reverted."""
        if dest not in (CONF.host, CONF.my_ip):
            raise exception.InstanceFaultRollback(exception.MigrationPreCheckError(
                reason=_("the QMP driver resizes on the same host only "
                         "(allow_resize_to_same_host)")))
        if flavor.root_gb < instance.flavor.root_gb:
            raise exception.InstanceFaultRollback(exception.ResizeError(
                reason=_("the root disk cannot shrink")))
        idir = self._idir(instance)
        self.power_off(instance, timeout, retry_interval)
        self.unplug_vifs(instance, network_info)
        self._disconnect_volumes(idir, block_device_info)
        os.rename(idir.path, self._resize_dir(instance))
        return ""

    def finish_migration(self, context, migration, instance, disk_info, network_info,
                         image_meta, resize_instance, allocations, block_device_info=None,
                         power_on=True, share_info=None):
        """The instance again, with its new flavor, from the disks kept aside."""
        old = instance_dir.InstanceDir(instance.uuid, suffix="_resize")
        meta = old.read_meta()
        idir = instance_dir.InstanceDir(instance.uuid).create()
        try:
            for name in (qemu.ROOT_DISK, qemu.CONFIG_DRIVE, qemu.CONSOLE_LOG):
                if os.path.exists(old.file(name)):
                    shutil.copy2(old.file(name), idir.file(name))
            local = disks.copy_local_disks(old.path, idir.path)
            root_gb = instance.flavor.root_gb
            if resize_instance and root_gb and os.path.exists(idir.file(qemu.ROOT_DISK)):
                processutils.execute("qemu-img", "resize", "-q", idir.file(qemu.ROOT_DISK),
                                     str(root_gb * disks.GiB))
            meta = self._launch_meta(instance, idir, qemu.machine_of(meta["argv"]),
                                     os.path.exists(idir.file(qemu.CONFIG_DRIVE)),
                                     root_disk=qemu.ROOT_DEVICE in meta["argv"],
                                     local_disks=local)
            self._attach_devices(instance, idir, meta, network_info, block_device_info)
            if power_on:
                self._start(instance, idir)
        except Exception:
            self._undo_launch(instance, idir, network_info, block_device_info)
            raise

    def confirm_migration(self, context, migration, instance, network_info):
        shutil.rmtree(self._resize_dir(instance), ignore_errors=True)

    def finish_revert_migration(self, context, instance, network_info, migration,
                                block_device_info=None, power_on=True, share_info=None):
        """Back to the directory kept aside (nova has destroyed the resized one)."""
        idir = instance_dir.InstanceDir(instance.uuid)
        if os.path.isdir(self._resize_dir(instance)):
            if idir.exists():
                self._stop(instance, idir)
                idir.remove()
            os.rename(self._resize_dir(instance), idir.path)
        meta = self._idir(instance).read_meta()
        self._attach_devices(instance, idir, meta, network_info, block_device_info)
        if power_on:
            self._start(instance, idir)

    def rescue(self, context, instance, network_info, image_meta, rescue_password,
               block_device_info, share_info):
        """Boot the rescue image, the instance's own root disk attached as the second
        disk; ``unrescue`` boots the instance as it was."""
        idir = self._idir(instance)
        meta = idir.read_meta()
        if qemu.ROOT_DEVICE not in meta["argv"]:
            raise exception.InstanceNotRescuable(
                instance_id=instance.uuid,
                reason=_("the QMP driver rescues image-backed instances only"))
        disks.check_image(instance, image_meta)
        image_id = image_meta.id if "id" in image_meta else instance.image_ref
        disks.create_root_disk(context, instance, idir.file(qemu.RESCUE_DISK), image_id)
        self._stop(instance, idir)
        meta["rescued_argv"] = meta["argv"]
        meta["argv"] = qemu.rescue_args(idir, meta["argv"])
        idir.write_meta(meta)
        try:
            self._start(instance, idir)
        except Exception:
            self.unrescue(context, instance)
            raise

    def unrescue(self, context, instance):
        idir = self._idir(instance)
        meta = idir.read_meta()
        self._stop(instance, idir)
        if "rescued_argv" in meta:
            meta["argv"] = meta.pop("rescued_argv")
            idir.write_meta(meta)
        if os.path.exists(idir.file(qemu.RESCUE_DISK)):
            os.unlink(idir.file(qemu.RESCUE_DISK))
        self._start(instance, idir)

    def trigger_crash_dump(self, instance):
        """An NMI, as a physical machine's crash-dump button gives (the guest decides)."""
        self._qmp(instance, "inject-nmi")

    def pause(self, instance):
        self._qmp(instance, "stop")

    def unpause(self, instance):
        self._qmp(instance, "cont")

    # -- volumes ----------------------------------------------------------------------------
    def get_volume_connector(self, instance):
        return volumes.connector_properties()

    def attach_volume(self, context, connection_info, instance, mountpoint, disk_bus=None,
                      device_type=None, encryption=None):
        """Connect the volume on this host (os-brick) and hot-plug it as a virtio disk;
        recorded in the instance's metadata so every later start has it too."""
        volume_id = self._volume_id(connection_info)
        if encryption:
            raise exception.VolumeEncryptionNotSupported(
                volume_type=connection_info.get("driver_volume_type"), volume_id=volume_id)
        if device_type not in (None, "disk") or disk_bus not in (None, "virtio"):
            raise exception.VolumeAttachFailed(
                volume_id=volume_id, reason=_("only virtio disks are supported"))
        idir = self._idir(instance)
        with lockutils.lock("nova-qmp-" + instance.uuid):
            meta = idir.read_meta()
            volume_id, vol = self._connect_volume(meta, connection_info)
            try:
                if self._running(instance, idir):
                    self._qmp(instance, "blockdev-add",
                              **qemu.volume_blockdev(volume_id, vol["path"], vol["block"]))
                    try:
                        self._qmp(instance, "device_add",
                                  **qemu.volume_device(volume_id, vol["port"]))
                    except exception.InternalError:
                        self._qmp(instance, "blockdev-del",
                                  **{"node-name": qemu.volume_ids(volume_id)[0]})
                        raise
            except Exception:
                volumes.disconnect(connection_info, vol["device_info"])
                raise
            idir.write_meta(meta)

    def detach_volume(self, context, connection_info, instance, mountpoint,
                      encryption=None):
        volume_id = self._volume_id(connection_info)
        idir = self._idir(instance)
        with lockutils.lock("nova-qmp-" + instance.uuid):
            meta = idir.read_meta()
            vol = meta.get("volumes", {}).get(volume_id)
            if vol is None:
                raise exception.DiskNotFound(location=volume_id)
            if self._running(instance, idir):
                self._unplug(instance, volume_id)
            del meta["volumes"][volume_id]
            idir.write_meta(meta)
        volumes.disconnect(connection_info, vol.get("device_info"))

    def _unplug(self, instance, volume_id):
        """Ask the guest to release the disk (PCI hot-unplug), wait, drop the node."""
        node, dev = qemu.volume_ids(volume_id)
        self._device_del(instance, dev)
        self._qmp(instance, "blockdev-del", **{"node-name": node})

    def _device_del(self, instance, dev):
        """Hot-unplug a device and wait until the guest has released it."""
        self._qmp(instance, "device_del", id=dev)
        deadline = time.monotonic() + CONF.qmp.qmp_timeout
        while True:
            try:
                self._qmp(instance, "qom-get", path="/machine/peripheral/" + dev,
                          property="type")
            except exception.InternalError:
                break                     # the device is gone
            if time.monotonic() > deadline:
                raise exception.DeviceDetachFailed(
                    device=dev, reason=_("the guest did not release it within %ss")
                    % CONF.qmp.qmp_timeout)
            time.sleep(0.1)

    def extend_volume(self, context, connection_info, instance, requested_size):
        volume_id = self._volume_id(connection_info)
        idir = self._idir(instance)
        vol = (idir.read_meta() or {}).get("volumes", {}).get(volume_id)
        if vol is None:
            raise exception.DiskNotFound(location=volume_id)
        size = volumes.extend(connection_info, vol["path"]) or requested_size
        if self._running(instance, idir):
            # a file grows to the size; a block device must already have it
            self._qmp(instance, "block_resize", **{"node-name": qemu.volume_ids(volume_id)[0],
                                                    "size": int(size)})

    def _free_port(self, meta):
        """A hot-plug port no volume or interface uses (None: the machine's root bus)."""
        slots = qemu.hotplug_ports(qemu.machine_of(meta["argv"]))
        if not slots:
            return None
        used = {d.get("port") for kind in ("volumes", "vifs")
                for d in meta.get(kind, {}).values()}
        free = [p for p in slots if p not in used]
        if not free:
            raise exception.TooManyDiskDevices(maximum=qemu.HOTPLUG_PORTS)
        return free[0]

    # -- network interfaces -----------------------------------------------------------------
    def _plug(self, instance, meta, vif):
        """Plug ``vif``'s host side and record it (taken by the next QEMU start)."""
        tap = vifs.plug(instance, vif)
        meta.setdefault("vifs", {})[vif["id"]] = {
            "tap": tap, "mac": vif["address"], "port": self._free_port(meta)}
        return meta["vifs"][vif["id"]]

    def plug_vifs(self, instance, network_info):
        # after a host reboot the taps are gone: make them again (idempotent)
        for vif in network_info or []:
            vifs.plug(instance, vif)

    def unplug_vifs(self, instance, network_info):
        for vif in network_info or []:
            vifs.unplug(instance, vif)

    def attach_interface(self, context, instance, image_meta, vif):
        vifs.check(vif)
        idir = self._idir(instance)
        with lockutils.lock("nova-qmp-" + instance.uuid):
            meta = idir.read_meta()
            if vif["id"] in meta.get("vifs", {}):
                return
            try:
                rec = self._plug(instance, meta, vif)
                if self._running(instance, idir):
                    self._qmp(instance, "netdev_add", **qemu.vif_netdev(vif["id"], rec["tap"]))
                    try:
                        self._qmp(instance, "device_add",
                                  **qemu.vif_device(vif["id"], rec["mac"], rec["port"]))
                    except exception.InternalError:
                        self._qmp(instance, "netdev_del", id=qemu.vif_ids(vif["id"])[0])
                        raise
            except Exception as e:
                vifs.unplug(instance, vif)
                raise exception.InterfaceAttachFailed(instance_uuid=instance.uuid) from e
            idir.write_meta(meta)

    def detach_interface(self, context, instance, vif):
        idir = self._idir(instance)
        with lockutils.lock("nova-qmp-" + instance.uuid):
            meta = idir.read_meta()
            if vif["id"] not in meta.get("vifs", {}):
                raise exception.NotFound(_("interface %s is not attached") % vif["id"])
            if self._running(instance, idir):
                netdev, dev = qemu.vif_ids(vif["id"])
                self._device_del(instance, dev)
                self._qmp(instance, "netdev_del", id=netdev)
            del meta["vifs"][vif["id"]]
            idir.write_meta(meta)
        vifs.unplug(instance, vif)

    # -- snapshots --------------------------------------------------------------------------
    def snapshot(self, context, instance, image_id, update_task_state):
        """The root disk as a standalone qcow2 image, uploaded to Glance as ``image_id``.

        A running guest is copied live (a point-in-time ``drive-backup``); a stopped or
        suspended one from its disk file.
        """
        idir = self._idir(instance)
        image = self._image_api.get(context, image_id)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        path = idir.file("snapshot-%s.qcow2" % image_id)
        try:
            if self._running(instance, idir):
                self._backup(instance, path)
            else:
                processutils.execute("qemu-img", "convert", "-q", "-O", "qcow2",
                                     idir.file(qemu.ROOT_DISK), path)
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

    def _backup(self, instance, path):
        job = "snapshot-" + instance.uuid
        self._qmp(instance, "drive-backup", device="root", target=path, format="qcow2",
                  sync="full", mode="absolute-paths", **{"job-id": job,
                                                         "auto-dismiss": False})
        deadline = time.monotonic() + CONF.qmp.save_timeout
        while True:
            jobs = {j["id"]: j for j in self._qmp(instance, "query-jobs")}
            mine = jobs.get(job)
            if mine is not None and mine["status"] == "concluded":
                self._qmp(instance, "job-dismiss", id=job)
                if mine.get("error"):
                    raise exception.InternalError(_("snapshot of %(uuid)s failed: %(err)s")
                                                  % {"uuid": instance.uuid,
                                                     "err": mine["error"]})
                return
            if mine is None or time.monotonic() > deadline:
                if mine is not None:
                    self._qmp(instance, "job-cancel", id=job)
                raise exception.InternalError(_("snapshot of %s did not complete")
                                              % instance.uuid)
            time.sleep(0.05)

    # -- image cache ------------------------------------------------------------------------
    def manage_image_cache(self, context, all_instances):
        self._image_cache.update(context, all_instances)

    # -- consoles ---------------------------------------------------------------------------
    def get_vnc_console(self, context, instance):
        port = (self._idir(instance).read_meta() or {}).get("vnc_port")
        if not port:
            raise exception.ConsoleTypeUnavailable(console_type="vnc")
        return ctype.ConsoleVNC(host=CONF.vnc.server_proxyclient_address, port=port)

    def get_serial_console(self, context, instance):
        port = (self._idir(instance).read_meta() or {}).get("serial_port")
        if not port:
            raise exception.ConsoleTypeUnavailable(console_type="serial")
        return ctype.ConsoleSerial(host=CONF.serial_console.proxyclient_address, port=port)
    def get_console_output(self, context, instance):
        return consolelog.tail(self._idir(instance).path, consolelog.MAX_CONSOLE_BYTES)
