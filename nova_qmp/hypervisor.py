"""QEMU bound to the compute base's ``Hypervisor`` contract, over QMP.

Command lines and processes: ``nova_qmp.qemu``; connections and events:
``nova_qmp.monitor``. Waits use QMP events where QEMU sends them (``DEVICE_DELETED``,
``JOB_STATUS_CHANGE``, ``MIGRATION``).
"""
import itertools
import os
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
from oslo_utils import strutils
from oslo_utils import versionutils

from nova_common import confine
from nova_common import hypervisor as hv_api
from nova_common import ports
from nova_qmp import encryption as luks
from nova_qmp import iscsi
from nova_qmp import migration
from nova_qmp import monitor
from nova_qmp import qemu
from nova_qmp import stats

CONF = nova.conf.CONF
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
SNAPSHOT_JOB = "hci-snapshot-"
SWAP_JOB = "hci-swap-"
FORMAT_JOB = "hci-luks-"
DETACH_RETRY = 10   # seconds between device_del requests (more than a PCIe slot's 5 s
#                    attention-button window, in which a second press would cancel)


class QemuHypervisor(migration.LiveMigration, hv_api.Hypervisor):
    description = hv_api.Description(
        hypervisor_type="qemu",
        image_formats=("qcow2", "raw"),
        vif_types=(network_model.VIF_TYPE_TAP, network_model.VIF_TYPE_OVS,
                   network_model.VIF_TYPE_VHOSTUSER),
        optional=hv_api.OPTIONAL,               # multiattach: share-rw=on devices
        confined=True)

    def __init__(self):
        self._mon = None
        self._on_event = None
        self._version = None
        self._late = {}               # uuid -> {device id: backend to drop when released}
        self._jobs = itertools.count(1)

    # -- host -----------------------------------------------------------------------------
    def check_host(self):
        qemu.check_binary(CONF)

    def version(self):
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

    def arch(self):
        return qemu.arch_of(CONF.qmp.qemu_binary)

    def open_events(self, on_event):
        self._on_event = on_event
        self._mon = monitor.Monitor(self._event, timeout=CONF.qmp.qmp_timeout)

    def close_events(self):
        if self._mon is not None:
            self._mon.close()
            self._mon = None

    def _event(self, uuid, name, data):
        # the monitor's loop thread: no blocking, no logging
        if name == "DEVICE_DELETED":
            backend = self._late.get(uuid, {}).pop(data.get("device"), None)
            if backend is not None:        # a release after the detach had given up
                self._mon.execute_soon(uuid, *backend)
        transition = EVENTS.get(name)
        if transition is not None and self._on_event is not None:
            self._on_event(uuid, transition)

    def reattach(self, guest):
        if not self.running(guest):
            return False
        try:
            self._connect(guest)
            self._dismiss_stale_jobs(guest)
        except (monitor.MonitorError, exception.InternalError) as e:
            LOG.warning("the guest runs but its QMP socket does not answer: %s", e,
                        instance_uuid=guest.uuid)
        return True

    def upgrade_record(self, data):
        """Version 1 (one QEMU command line saved at spawn) -> version 2 fields."""
        argv = data.pop("argv")
        rescued = "rescued_argv" in data
        if rescued:
            argv = data.pop("rescued_argv")
        spec = {"machine": qemu.machine_of(argv),
                "root_disk": qemu.ROOT_DEVICE in argv,
                "config_drive": any("id=config," in a for a in argv)}
        for kind in ("vifs", "volumes"):
            for entry in data.get(kind, {}).values():
                entry["slot"] = entry.pop("port", None)
        return {"name": data.get("name", ""), "vcpus": data.get("vcpus", 0),
                "memory_mb": data.get("memory_mb", 0), "spec": spec,
                "vifs": data.get("vifs", {}), "volumes": data.get("volumes", {}),
                "rescued": rescued, "version": 2}

    # -- QMP plumbing ---------------------------------------------------------------------
    def _connect(self, guest):
        if self._mon is None:
            raise monitor.MonitorError("the QMP monitor is closed (nova-compute stops)")
        if not self._mon.connected(guest.uuid):
            self._mon.connect(guest.uuid, guest.idir.file(qemu.QMP_SOCKET))

    def _connect_new(self, guest):
        """Connect to a QEMU just started: its socket may exist a moment before it
        listens."""
        deadline = time.monotonic() + CONF.qmp.start_timeout
        while True:
            try:
                return self._connect(guest)
            except monitor.MonitorError:
                if time.monotonic() > deadline or not self.running(guest):
                    raise
                time.sleep(0.05)

    def _qmp(self, guest, command, **arguments):
        if not self.running(guest):
            raise exception.InstanceNotRunning(instance_id=guest.uuid)
        try:
            self._connect(guest)
            return self._mon.execute(guest.uuid, command, arguments or None)
        except monitor.MonitorError as e:
            raise exception.InternalError(str(e)) from e

    def _qmp_wait(self, guest, command, arguments, event, match, timeout,
                  reply_match=None):
        try:
            self._connect(guest)
            return self._mon.execute_and_wait(guest.uuid, command, arguments, event, match,
                                              timeout, reply_match)
        except monitor.MonitorError as e:
            raise exception.InternalError(str(e)) from e

    # -- life cycle -----------------------------------------------------------------------
    def launch_spec(self, instance, image_meta, root_disk, config_drive, previous=None):
        machine = (previous or {}).get("machine") or \
            qemu.machine_type(CONF, instance, image_meta)
        spec = {"machine": machine, "root_disk": root_disk, "config_drive": config_drive}
        flavor = instance.flavor if instance.obj_attr_is_set("flavor") else None
        extra = (flavor.extra_specs or {}) if flavor is not None and \
            flavor.obj_attr_is_set("extra_specs") else {}
        if strutils.bool_from_string(extra.get(qemu.SHARED_MEMORY_SPEC, False)):
            spec["shared_memory"] = True
        return spec

    def start(self, guest, restore_from=None):
        sock = guest.idir.file(qemu.QMP_SOCKET)
        if os.path.exists(sock):
            os.unlink(sock)
        argv = qemu.command_line(
            CONF, guest,
            serial_ports=(ports.parse_range(CONF.serial_console.port_range)
                          if CONF.serial_console.enabled else None),
            vnc_tcp=CONF.vnc.enabled)
        qemu.start(CONF, guest, argv + (["-incoming", "defer"] if restore_from else []))
        try:
            self._connect_new(guest)
            if restore_from:
                self._migrate(guest, "migrate-incoming", restore_from, os.O_RDONLY)
                if self._qmp(guest, "query-status")["status"] != "running":
                    self._qmp(guest, "cont")
        except (monitor.MonitorError, exception.InternalError) as e:
            with excutils.save_and_reraise_exception(reraise=False):
                self.stop(guest)
            raise exception.InstanceDeployFailure(reason=str(e), instance_id=guest.uuid)

    def stop(self, guest):
        pid = qemu.read_pid(guest.idir)
        mon = self._mon             # None once close_events ran
        if mon is not None:
            if qemu.alive(pid, guest.uuid) and mon.connected(guest.uuid):
                try:
                    mon.execute(guest.uuid, "quit")
                except monitor.MonitorError:
                    pass    # the signals below still stop it
            mon.disconnect(guest.uuid)
        qemu.kill(pid, guest.uuid, CONF.qmp.stop_timeout)
        self._late.pop(guest.uuid, None)

    def running(self, guest):
        return qemu.alive(qemu.read_pid(guest.idir), guest.uuid)

    def state(self, guest):
        try:
            self._connect(guest)
            status = self._mon.execute(guest.uuid, "query-status")["status"]
        except monitor.MonitorError:
            return power_state.NOSTATE
        return STATUS.get(status, power_state.NOSTATE)

    def request_shutdown(self, guest):
        self._qmp(guest, "system_powerdown")

    def reset(self, guest):
        self._qmp(guest, "system_reset")
        if self.state(guest) == power_state.PAUSED:
            self._qmp(guest, "cont")

    def console_endpoints(self, guest):
        found = qemu.listening_ports(self._qmp(guest, "query-vnc"),
                                     self._qmp(guest, "query-chardev"))
        return {"vnc": found["vnc_port"], "serial": found["serial_port"]}

    # -- optional operations --------------------------------------------------------------
    def pause(self, guest):
        self._qmp(guest, "stop")

    def unpause(self, guest):
        self._qmp(guest, "cont")

    def inject_nmi(self, guest):
        self._qmp(guest, "inject-nmi")

    def save(self, guest, path):
        self._qmp(guest, "stop")
        try:
            self._migrate(guest, "migrate", path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        except Exception:
            with excutils.save_and_reraise_exception():
                if self.running(guest):
                    self._qmp(guest, "cont")

    def _migrate(self, guest, command, path, flags):
        """A migration to or from the file ``path``, waited for on MIGRATION events."""
        self._qmp(guest, "migrate-set-capabilities",
                  capabilities=[{"capability": "events", "state": True}])
        fd = os.open(path, flags, 0o600)
        try:
            done = self._with_fd_and_wait(guest, fd, command)
        finally:
            os.close(fd)
        info = self._qmp(guest, "query-migrate")
        status = info.get("status") if done is None else done.get("status")
        if status != "completed":
            if status not in ("failed", "cancelled"):
                self._qmp(guest, "migrate_cancel")
            raise exception.InternalError(
                _("%(cmd)s of instance %(uuid)s did not complete: %(why)s")
                % {"cmd": command, "uuid": guest.uuid,
                   "why": info.get("error-desc", status or "timed out")})

    def _with_fd_and_wait(self, guest, fd, command):
        finished = ("completed", "failed", "cancelled")
        try:
            self._connect(guest)
            return self._mon.execute_with_fd_and_wait(
                guest.uuid, fd, "state", command, {"uri": "fd:state"}, "MIGRATION",
                lambda d: d.get("status") in finished, CONF.qmp.save_timeout)
        except monitor.MonitorError as e:
            raise exception.InternalError(str(e)) from e

    def free_slot(self, guest):
        slots = qemu.hotplug_ports(guest.record.spec["machine"])
        if not slots:
            return None
        used = {d.get("slot") for kind in (guest.record.volumes, guest.record.vifs)
                for d in kind.values()}
        free = [p for p in slots if p not in used]
        if not free:
            raise exception.TooManyDiskDevices(maximum=qemu.HOTPLUG_PORTS)
        return free[0]

    def diagnostics(self, guest):
        return stats.collect(lambda command, **kw: self._qmp(guest, command, **kw),
                             qemu.read_pid(guest.idir))

    # volumes QEMU connects itself: nova_qmp.iscsi
    def volume_connector(self, props):
        return iscsi.connector_properties(CONF, props)

    def connects_volume(self, connection_info):
        return iscsi.enabled(CONF) and \
            connection_info.get("driver_volume_type") == iscsi.KIND

    def connect_volume(self, guest, volume_id, connection_info):
        key = iscsi.master_key(guest.idir, guest.record.uid)
        return iscsi.target(volume_id, connection_info, key)

    def volume_encryption(self, guest, context, volume_id, connection_info, encryption):
        key = iscsi.master_key(guest.idir, guest.record.uid)
        return luks.entry(context, volume_id, connection_info, encryption, key)

    def _add_secrets(self, guest, node, volume):
        """The QEMU secret objects a volume needs (CHAP password, LUKS passphrase; the
        instance's master key first, if this QEMU was started without it); their ids."""
        secrets = [s for s in (iscsi.secret_object(node, volume),
                               luks.secret_object(node, volume)) if s is not None]
        if not secrets:
            return []
        objects = {o["name"] for o in self._qmp(guest, "qom-list", path="/objects")}
        if iscsi.MASTER_ID not in objects:
            self._qmp(guest, "object-add", **iscsi.master_key_object(guest.idir))
        added = []
        try:
            for secret in secrets:
                self._qmp(guest, "object-add", **secret)
                added.append(secret["id"])
        except Exception:
            with excutils.save_and_reraise_exception():
                self._del_secrets(guest, added)
        return added

    def _del_secrets(self, guest, ids):
        for secret in ids:
            self._qmp(guest, "object-del", id=secret)

    def _secret_ids(self, node, volume):
        return ([iscsi.secret_id(node)] if "password" in volume else []) + \
            ([luks.secret_id(node)] if volume.get("encryption") else [])

    def _blockdev(self, node, volume_id, volume):
        if volume.get("kind") == iscsi.KIND:
            return iscsi.blockdev(node, volume, iscsi.initiator_name(CONF))
        return qemu.volume_blockdev(volume_id, volume["path"], volume["block"])

    def _blockdevs(self, node, volume_id, volume):
        """The volume's block nodes in the order they are added (the guest's last)."""
        plain = self._blockdev(node, volume_id, volume)
        return luks.blockdevs(node, plain) if volume.get("encryption") else [plain]

    def _add_blockdevs(self, guest, node, volume_id, volume):
        """``blockdev-add`` the volume's nodes; an encrypted volume without a LUKS header
        gets one first (``_format``). The node names added."""
        added = []
        try:
            for bd in self._blockdevs(node, volume_id, volume):
                if bd["driver"] == "luks":
                    self._open_luks(guest, volume_id, bd, volume)
                else:
                    self._qmp(guest, "blockdev-add", **bd)
                added.append(bd["node-name"])
        except Exception:
            with excutils.save_and_reraise_exception():
                self._del_blockdevs(guest, reversed(added))
        return added

    def _del_blockdevs(self, guest, nodes):
        for name in nodes:
            self._qmp(guest, "blockdev-del", **{"node-name": name})

    def _open_luks(self, guest, volume_id, bd, volume):
        try:
            self._qmp(guest, "blockdev-add", **bd)
            return
        except exception.InternalError as e:
            if not luks.not_formatted(e):
                raise exception.VolumeAttachFailed(
                    volume_id=volume_id,
                    reason=_("QEMU cannot open the encrypted volume with its key from "
                             "the key manager: %s") % e) from e
        device_size = self._format(guest, volume_id, bd["file"], bd["node-name"], volume)
        self._qmp(guest, "blockdev-add", **bd)
        # the payload fills the volume (creating it truncated a file to header+payload)
        payload, protocol = self._node_size(guest, bd["node-name"]), \
            self._node_size(guest, bd["file"])
        want = device_size - (protocol - payload)
        if want != payload:
            self._qmp(guest, "block_resize", **{"node-name": bd["node-name"],
                                                 "size": want})

    def _format(self, guest, volume_id, protocol, node, volume):
        """Write a LUKS header with the volume's passphrase (``blockdev-create``, waited
        for on JOB_STATUS_CHANGE), as os-brick formats a blank encrypted volume on its
        first attach; the device's size before."""
        device_size = self._node_size(guest, protocol)
        LOG.info("volume %s has no LUKS header yet: formatting it with its key",
                 volume_id, instance_uuid=guest.uuid)
        for attempt in range(1, luks.FORMAT_ATTEMPTS + 1):
            job = "%s%s-%d" % (FORMAT_JOB, guest.uuid[:8], next(self._jobs))
            try:
                self._job_step(guest, job, "blockdev-create",
                               luks.create_job(job, protocol, node, device_size, volume),
                               "concluded")
                return device_size
            except exception.InternalError as e:
                if not luks.benchmark_failed(e) or attempt == luks.FORMAT_ATTEMPTS:
                    raise
                LOG.info("QEMU's key-derivation benchmark measured no CPU time "
                         "(attempt %d); formatting volume %s again", attempt, volume_id,
                         instance_uuid=guest.uuid)
            finally:
                self._dismiss(guest, job)

    def _node_size(self, guest, name):
        for dev in self._qmp(guest, "query-named-block-nodes"):
            if dev.get("node-name") == name:
                return dev["image"]["virtual-size"]
        raise exception.InternalError(_("block node %s is missing") % name)

    def attach_disk(self, guest, volume_id, volume):
        node = qemu.volume_ids(volume_id)[0]
        secrets = self._add_secrets(guest, node, volume)
        try:
            nodes = self._add_blockdevs(guest, node, volume_id, volume)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._del_secrets(guest, secrets)
        try:
            self._qmp(guest, "device_add", **qemu.volume_device(
                volume_id, volume["slot"], shared=volume.get("shared", False)))
        except Exception:
            with excutils.save_and_reraise_exception():
                self._del_blockdevs(guest, reversed(nodes))
                self._del_secrets(guest, secrets)

    def detach_disk(self, guest, volume_id, volume):
        node, dev = qemu.volume_ids(volume_id)
        dev = volume.get("qdev") or dev               # swapped: the old volume's device
        self._device_del(guest, dev, ("blockdev-del", {"node-name": node}))
        self._del_blockdevs(guest, [bd["node-name"] for bd in
                                    reversed(self._blockdevs(node, volume_id, volume))])
        self._del_secrets(guest, self._secret_ids(node, volume))

    def swap_disk(self, guest, old_id, old, new_id, new):
        """``blockdev-mirror`` of the guest's disk to the new volume's node, then
        ``job-complete``: the device switches to the new node (the pivot); waited for on
        JOB_STATUS_CHANGE. Guest writes during the copy reach both."""
        old_node, dev = qemu.volume_ids(old_id)
        dev = old.get("qdev") or dev
        node = qemu.volume_ids(new_id)[0]
        job = "%s%s-%d" % (SWAP_JOB, guest.uuid[:8], next(self._jobs))
        if old.get("encryption") or new.get("encryption"):
            raise NotImplementedError(_("swapping an encrypted volume is not supported"))
        secret = new.get("kind") == iscsi.KIND and self._add_secrets(guest, node, new)
        try:
            self._qmp(guest, "blockdev-add", **self._blockdev(node, new_id, new))
        except Exception:
            with excutils.save_and_reraise_exception():
                if secret:
                    self._qmp(guest, "object-del", id=iscsi.secret_id(node))
        pivoted = False
        try:
            self._job_step(guest, job, "blockdev-mirror",
                           {"job-id": job, "device": old_node, "target": node,
                            "sync": "full", "auto-dismiss": False}, "ready")
            self._job_step(guest, job, "job-complete", {"id": job}, "concluded")
            pivoted = True
        finally:
            if not pivoted:
                jobs = {j["id"]: j for j in self._qmp(guest, "query-jobs")}
                if job in jobs and jobs[job]["status"] != "concluded":
                    self._qmp(guest, "job-cancel", id=job)
                    self._wait_concluded(guest, job)
            self._dismiss(guest, job)
            if not pivoted:
                self._qmp(guest, "blockdev-del", **{"node-name": node})
                if secret:
                    self._qmp(guest, "object-del", id=iscsi.secret_id(node))
        new["qdev"] = dev
        self._qmp(guest, "blockdev-del", **{"node-name": old_node})
        if "password" in old:
            self._qmp(guest, "object-del", id=iscsi.secret_id(old_node))

    def _job_step(self, guest, job, command, arguments, status):
        """Run ``command`` and wait until the job ``job`` reaches ``status`` (or ends)."""
        done = self._qmp_wait(
            guest, command, arguments, "JOB_STATUS_CHANGE",
            lambda d: d.get("id") == job and d.get("status") in (status, "concluded"),
            CONF.qmp.save_timeout)
        mine = {j["id"]: j for j in self._qmp(guest, "query-jobs")}.get(job, {})
        if done is None or done.get("status") != status or mine.get("error"):
            raise exception.InternalError(
                _("%(cmd)s of %(uuid)s did not reach %(status)s: %(why)s")
                % {"cmd": command, "uuid": guest.uuid, "status": status,
                   "why": mine.get("error") or (done or {}).get("status") or "timed out"})

    def resize_disk(self, guest, volume_id, volume, size):
        # a file grows to the size; a block device must already have it
        self._qmp(guest, "block_resize", **{"node-name": qemu.volume_ids(volume_id)[0],
                                             "size": size})

    def attach_nic(self, guest, vif_id, vif):
        if "vhostuser" in vif:
            return self._attach_vhostuser(guest, vif_id, vif)
        netdev = qemu.vif_ids(vif_id)[0]
        queues = vif.get("queues", 1)
        self._qmp(guest, "netdev_add", **qemu.vif_netdev(vif_id, vif["tap"], queues))
        try:
            self._qmp(guest, "device_add", **qemu.vif_device(vif_id, vif["mac"], vif["slot"],
                                                             queues))
        except Exception:
            with excutils.save_and_reraise_exception():
                self._qmp(guest, "netdev_del", id=netdev)

    def _shared_memory(self, guest):
        """Whether the running QEMU's RAM is the shared backend (asked, not assumed)."""
        try:
            return self._qmp(guest, "qom-get", path="/objects/" + qemu.GUEST_RAM,
                             property="share") is True
        except exception.InternalError:
            return False

    def _attach_vhostuser(self, guest, vif_id, vif):
        """chardev-add (QEMU the socket's server), netdev_add (returns once Open
        vSwitch, which os-vif already pointed at the socket, has connected: QEMU waits
        for the vhost-user backend), device_add; what was added is removed again on a
        failure. Refused, before anything is added, when the guest RAM is not shared."""
        if not self._shared_memory(guest):
            raise exception.VirtualInterfacePlugException(
                _("cannot hot-plug vhost-user port %(id)s into %(uuid)s: its memory is not "
                  "shared (it was started without vhost-user ports); attach it while the "
                  "server is stopped, or use a flavor with %(spec)s=true")
                % {"id": vif_id, "uuid": guest.uuid, "spec": qemu.SHARED_MEMORY_SPEC})
        netdev = qemu.vif_ids(vif_id)[0]
        chardev = qemu.vif_chardev(vif_id, vif["vhostuser"])
        self._qmp(guest, "chardev-add", **chardev)
        try:
            self._qmp(guest, "netdev_add", **qemu.vif_netdev(vif_id, None,
                                                             vhostuser=vif["vhostuser"]))
        except Exception:
            with excutils.save_and_reraise_exception():
                self._qmp(guest, "chardev-remove", id=chardev["id"])
        try:
            self._qmp(guest, "device_add", **qemu.vif_device(
                vif_id, vif["mac"], vif["slot"], intx=CONF.qmp.accelerator == "tcg"))
        except Exception:
            with excutils.save_and_reraise_exception():
                self._qmp(guest, "netdev_del", id=netdev)   # (its chardev goes with it)

    def detach_nic(self, guest, vif_id, vif):
        # (a vhost-user netdev removes its chardev itself)
        netdev, dev = qemu.vif_ids(vif_id)
        self._device_del(guest, dev, ("netdev_del", {"id": netdev}))
        self._qmp(guest, "netdev_del", id=netdev)

    def _present(self, guest, dev):
        try:
            self._qmp(guest, "qom-get", path="/machine/peripheral/" + dev, property="type")
            return True
        except exception.InternalError:
            return False

    def _device_del(self, guest, dev, backend):
        """Hot-unplug ``dev``: ``device_del``, waiting for DEVICE_DELETED and asking
        again every DETACH_RETRY seconds (a guest may miss a request, e.g. while it
        boots) until ``[qmp]qmp_timeout``. A guest that releases the device later gets
        ``backend`` (the QMP command freeing what the device used) run then."""
        if not self._present(guest, dev):
            return                      # released after an earlier attempt gave up
        deadline = time.monotonic() + CONF.qmp.qmp_timeout
        attempt = 0
        while True:
            attempt += 1
            wait = max(0.1, min(DETACH_RETRY, deadline - time.monotonic()))
            try:
                gone = self._qmp_wait(guest, "device_del", {"id": dev}, "DEVICE_DELETED",
                                      lambda d: d.get("device") == dev, wait)
            except exception.InternalError as e:
                if not self._present(guest, dev):
                    return
                LOG.info("device_del %s (attempt %d): %s", dev, attempt, e,
                         instance_uuid=guest.uuid)
                gone = None
                time.sleep(wait)
            if gone is not None or not self._present(guest, dev):
                return
            if time.monotonic() >= deadline:
                self._late.setdefault(guest.uuid, {})[dev] = backend
                raise exception.DeviceDetachFailed(
                    device=dev, reason=_("the guest did not release it within %(t)ss "
                                         "(%(n)d requests)")
                    % {"t": CONF.qmp.qmp_timeout, "n": attempt})
            LOG.info("the guest has not released %s yet; asking again", dev,
                     instance_uuid=guest.uuid)

    def export_root_disk(self, guest, path):
        """A point-in-time copy of the root disk (``blockdev-backup``, full sync) into a
        new qcow2 file, waited for on JOB_STATUS_CHANGE."""
        size = self._root_size(guest)
        processutils.execute("qemu-img", "create", "-q", "-f", "qcow2", path, str(size))
        confine.grant_file(path, guest.record.uid)
        job = "%s%s-%d" % (SNAPSHOT_JOB, guest.uuid[:8], next(self._jobs))
        node = "snap%d" % os.getpid() + job[-6:].replace("-", "")
        self._qmp(guest, "blockdev-add", driver="qcow2", **{"node-name": node}, file={
            "driver": "file", "filename": path})
        try:
            done = self._qmp_wait(
                guest, "blockdev-backup",
                {"job-id": job, "device": "root", "target": node, "sync": "full",
                 "auto-dismiss": False},
                "JOB_STATUS_CHANGE",
                lambda d: d.get("id") == job and d.get("status") == "concluded",
                CONF.qmp.save_timeout)
            jobs = {j["id"]: j for j in self._qmp(guest, "query-jobs")}
            mine = jobs.get(job)
            if done is None:
                if mine is not None:
                    self._qmp(guest, "job-cancel", id=job)
                    self._wait_concluded(guest, job)
                raise exception.InternalError(
                    _("the snapshot of %(uuid)s did not complete within %(t)ss")
                    % {"uuid": guest.uuid, "t": CONF.qmp.save_timeout})
            if mine is not None and mine.get("error"):
                raise exception.InternalError(_("the snapshot of %(uuid)s failed: %(err)s")
                                              % {"uuid": guest.uuid, "err": mine["error"]})
        finally:
            self._dismiss(guest, job)
            self._qmp(guest, "blockdev-del", **{"node-name": node})

    def _root_size(self, guest):
        for dev in self._qmp(guest, "query-block"):
            if dev.get("device") == "root":
                return dev["inserted"]["image"]["virtual-size"]
        raise exception.InternalError(_("instance %s has no root disk") % guest.uuid)

    def _wait_concluded(self, guest, job, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = {j["id"]: j for j in self._qmp(guest, "query-jobs")}
            if job not in jobs or jobs[job]["status"] == "concluded":
                return
            time.sleep(0.1)

    def _dismiss(self, guest, job):
        jobs = {j["id"]: j for j in self._qmp(guest, "query-jobs")}
        if jobs.get(job, {}).get("status") == "concluded":
            self._qmp(guest, "job-dismiss", id=job)

    def _dismiss_stale_jobs(self, guest):
        """Snapshot jobs a previous nova-compute left (it stopped in the middle)."""
        for job in self._qmp(guest, "query-jobs"):
            if not job["id"].startswith(SNAPSHOT_JOB):
                continue
            if job["status"] != "concluded":
                self._qmp(guest, "job-cancel", id=job["id"])
                self._wait_concluded(guest, job["id"])
            self._dismiss(guest, job["id"])
            LOG.info("dismissed the stale snapshot job %s", job["id"],
                     instance_uuid=guest.uuid)
        for dev in self._qmp(guest, "query-named-block-nodes"):
            if dev.get("node-name", "").startswith("snap"):
                self._qmp(guest, "blockdev-del", **{"node-name": dev["node-name"]})

