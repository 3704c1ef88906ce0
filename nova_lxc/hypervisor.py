"""LXC bound to the compute base's ``Hypervisor`` contract: an instance is a system
container named by its UUID under ``lxcpath = instances_path``, so its container
directory is its instance directory.

Unprivileged side (nova-compute's user): nova's instance, flavor and network objects read
into the launch spec and the record, images fetched from Glance, the native watcher
thread that reports containers whose init is gone. Privileged side (``nova_lxc.privsep``):
everything liblxc does.
"""
import base64
import contextlib
import ipaddress
import json
import os
import sysconfig
import time

from nova import exception
from nova import utils as nova_utils
from nova.compute import power_state
import nova.conf
from nova.i18n import _
from nova.network import model as network_model
from nova.virt import event as virtevent
from nova.virt import images as nova_images
from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import versionutils

from nova_common import hypervisor as hv_api
from nova_common import instance_dir
from nova_common import lifecycle
from nova_common import privsep as nova_common_privsep
from nova_common import vifs
from nova_lxc import blockdev
from nova_lxc import config
from nova_lxc import container
from nova_lxc import images
from nova_lxc import opts
from nova_lxc import privsep
from nova_lxc import rootdisk

CONF = nova.conf.CONF
opts.register(CONF)
LOG = logging.getLogger(__name__)
HALT_PROPERTY = "image_lxc_halt_signal"      # the image's lxc_halt_signal property
CONSOLE_TAIL = 100 * 1024


def lxcpath():
    return config.check_path(os.path.abspath(CONF.instances_path))


def cache_path():
    return config.check_path(CONF.lxc_native.image_cache_path
                             or os.path.join(lxcpath(), "_lxc_base"))


def idmap():
    """(start, size) of the containers' id map; None if they run privileged."""
    if CONF.lxc_native.privileged:
        return None
    return CONF.lxc_native.id_map_start, CONF.lxc_native.id_map_size


def cgroup_version():
    if CONF.lxc_native.cgroup_version == "auto":
        return config.host_cgroup_version()
    return int(CONF.lxc_native.cgroup_version)


def arch():
    """The host's architecture (nova's tests forbid uname: the interpreter's triplet)."""
    return (sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu").split("-")[0]


def version():
    """liblxc's version as an int (5.0.2 -> 5000002)."""
    import lxc
    try:
        return versionutils.convert_version_to_int(lxc.version.split("~")[0])
    except ValueError:
        return 0


CPU_SPECS = ("cpu_shares", "cpu_quota", "cpu_period")     # flavor quota:<name>


def cpu_specs(flavor):
    specs = flavor.extra_specs or {}
    return {k: specs["quota:" + k] for k in CPU_SPECS if specs.get("quota:" + k)}


def limits(memory_mb, vcpus, cpu):
    """cgroup items of a container of this size (``cpu``: from ``cpu_specs``)."""
    try:
        cpu = {k: int(v) for k, v in cpu.items()}
    except ValueError:
        raise exception.InvalidInput(reason=_("flavor CPU quotas must be integers: %r")
                                     % (cpu,))
    return config.cgroup_limits(cgroup_version(), memory_mb, vcpus,
                                pids_max=CONF.lxc_native.pids_max, **cpu)


def halt_signal(instance):
    """The image's ``lxc_halt_signal`` property, or the configured default."""
    sig = (instance.system_metadata or {}).get(HALT_PROPERTY)
    if sig is None:
        return CONF.lxc_native.halt_signal
    try:
        return config.check_signal(sig)
    except exception.InvalidInput:
        raise exception.ImageUnacceptable(image_id=instance.image_ref, reason=_(
            "image property lxc_halt_signal is not a signal name: %r") % sig)


def check_vif(vif):
    """Refuse, before anything is made, a port a container cannot take: the shared
    checks, and hybrid plug (the iptables firewall's ``qbr`` bridge of ML2/OVS), whose
    bridge the host end would have to be put on again at each start."""
    vifs.check(vif, LXCHypervisor.description.vif_types)
    if vif["type"] == network_model.VIF_TYPE_OVS and vif.is_hybrid_plug_enabled():
        raise exception.VirtualInterfacePlugException(_(
            "cannot plug port %s: hybrid plug (ML2/OVS with the iptables firewall) is not "
            "supported for containers; use the openvswitch firewall or OVN") % vif["id"])


def vif_entry(vif, slot):
    """The record entry of a port (``tap`` and ``ovs``, checked by ``check_vif``): its
    host device (``tap``, the host end of the veth pair), the container's end (``peer``,
    ``eth<slot>`` inside) and the addresses liblxc configures before the container's
    init runs."""
    check_vif(vif)
    network = vif.get("network") or {}
    mtu = network.get_meta("mtu") if network else None
    ipv4, gateway = [], None
    for subnet in (network.get("subnets") or []) if network else []:
        if subnet.get("version") != 4 or not subnet.get("cidr"):
            continue
        net = ipaddress.ip_network(subnet["cidr"], strict=False)
        for ip in subnet.get("ips") or []:
            ipv4.append([ip["address"], net.prefixlen, str(net.broadcast_address)])
        gw = subnet.get("gateway") or {}
        if gw.get("address") and gateway is None:
            gateway = gw["address"]
    try:
        peer = config.peer_name(vif["devname"])
    except exception.InvalidInput as e:
        raise exception.VirtualInterfacePlugException(str(e))
    entry = {"tap": vif["devname"], "peer": peer, "mac": vif["address"], "slot": slot,
             "mtu": mtu, "ipv4": ipv4, "gateway": gateway,
             "ipv6_off": vif["type"] == network_model.VIF_TYPE_OVS}
    nic_items(entry)            # refuse what liblxc could not take, before anything
    return entry


def peer_of(entry):
    """The container's end of a record entry (entries written while liblxc made the
    pairs at start have no ``peer``)."""
    return entry.get("peer") or config.peer_name(entry["tap"])


def nic_items(entry):
    try:
        return config.nic_items(entry["slot"], peer_of(entry), entry["mac"],
                                entry["mtu"], entry["ipv4"], entry["gateway"])
    except exception.InvalidInput as e:
        raise exception.VirtualInterfacePlugException(str(e))


def ensure_pairs(guest):
    """Before a start: the veth pair of every recorded port, made again if it is gone
    (the container's network namespace took it: a monitor that died, a hot-plugged
    interface, a host reboot). The OVS row stays from the plugging, so ovs-vswitchd
    attaches the new host end again; liblxc gives the peers back at stop."""
    for entry in sorted(guest.record.vifs.values(), key=lambda e: e["slot"]):
        nova_common_privsep.create_veth(entry["tap"], peer_of(entry), mtu=entry["mtu"],
                                        peer_mac=entry["mac"],
                                        disable_ipv6=bool(entry.get("ipv6_off")))


class LXCHypervisor(hv_api.Hypervisor):
    description = hv_api.Description(
        hypervisor_type="lxc",
        image_formats=("raw", "qcow2"),      # root tarballs and ext4 filesystem images
        vif_types=(network_model.VIF_TYPE_TAP, network_model.VIF_TYPE_OVS),
        optional=frozenset({hv_api.PAUSE, hv_api.DISK_HOTPLUG, hv_api.NIC_HOTPLUG}),
        vm_mode="exe")

    def __init__(self):
        self._on_event = None
        self._quiet = set()            # stops the hypervisor itself causes
        self._watched = {}             # uuid -> (init pid, its start time)
        # native: shared with the watcher thread (held for dict updates only)
        self._lock = lifecycle.native_threading().Lock()
        self._watcher = None
        self._stopping = False

    # -- host -----------------------------------------------------------------------------
    def check_host(self):
        if instance_dir.separate_host_state():
            # the option exists for hosts sharing instances_path; liblxc keeps each
            # container's files (its lxcpath) there, which hosts cannot share
            raise exception.InvalidInput(reason=_(
                "[hci_guests]host_state_path is set, but nova_lxc supports no "
                "instances_path shared between hosts: unset the option"))
        try:
            import lxc  # noqa: F401
        except ImportError as e:
            raise exception.InternalError(_("the liblxc binding is missing: %s") % e)
        for tool in ("lxc-start", "lxc-stop", "lxc-freeze", "lxc-unfreeze"):
            if not any(os.access(os.path.join(d, tool), os.X_OK)
                       for d in os.environ.get("PATH", "/usr/bin").split(os.pathsep)):
                raise exception.InternalError(_("%s is missing (Debian package lxc)")
                                              % tool)

    def version(self):
        return version()

    def arch(self):
        return arch()

    def open_events(self, on_event):
        """A native thread noticing containers whose init is gone (it died, or the
        guest halted itself) and reporting them as stopped. Reads /proc only."""
        self._on_event = on_event
        if self._watcher is not None:
            return
        self._stopping = False
        eventlet = nova_utils.get_eventlet()
        sleep = eventlet.patcher.original("time").sleep if eventlet else time.sleep

        def run():
            while not self._stopping:
                sleep(0.5)
                with self._lock:
                    gone = [u for u, (pid, since) in self._watched.items()
                            if u not in self._quiet and _start_time(pid) != since]
                    for uuid in gone:
                        del self._watched[uuid]
                for uuid in gone:
                    if self._on_event:
                        self._on_event(uuid, virtevent.EVENT_LIFECYCLE_STOPPED)

        self._watcher = lifecycle.native_threading().Thread(
            target=run, daemon=True, name="nova-lxc-watcher")
        self._watcher.start()

    def close_events(self):
        self._stopping = True
        self._on_event = None

    def reattach(self, guest):
        st = privsep.state(guest.uuid, lxcpath())
        if st["state"] == "STOPPED" or st["init_pid"] <= 0:
            return False
        self._watch(guest.uuid, st["init_pid"])
        return True

    # -- images ---------------------------------------------------------------------------
    def rootfs(self, context, instance, image_meta):
        """The cached, unpacked root of the instance's image (fetched and unpacked on
        first use; once per image and id map)."""
        images.check_meta(instance.image_ref, image_meta)
        cache = cache_path()
        key = images.cache_key(instance.image_ref, idmap())
        target = os.path.join(cache, key)
        with lockutils.lock("nova-lxc-image-" + key):
            if os.path.isdir(target):
                return target
            os.makedirs(cache, mode=0o711, exist_ok=True)
            download = os.path.join(cache, ".download-" + key)
            try:
                nova_images.fetch(context, instance.image_ref, download,
                                  trusted_certs=instance.trusted_certs)
                return privsep.unpack_image(download, cache, key, idmap(),
                                            instance.image_ref)
            finally:
                if os.path.exists(download):
                    os.unlink(download)

    # -- life cycle -----------------------------------------------------------------------
    def launch_spec(self, instance, image_meta, root_disk, config_drive, previous=None):
        """{"halt_signal", "cpu" (flavor CPU quotas), "base" (the unpacked image; set by
        the driver at spawn)}; everything refusable is refused here."""
        if not root_disk:
            raise exception.InvalidInput(reason=_(
                "the LXC driver boots from images only (no boot from volume)"))
        if config_drive:
            raise exception.InvalidInput(reason=_(
                "the LXC driver has no config drive; the guest reads its metadata from "
                "the metadata service"))
        if previous is None:
            images.check_meta(instance.image_ref, image_meta)
        spec = dict(previous or {}, halt_signal=halt_signal(instance),
                    cpu=cpu_specs(instance.flavor))
        # the root disk size: chosen at spawn (0: unlimited, the overlay's upper directory
        # in the instance directory), grown, never shrunk, by a resize
        if previous is None:
            spec["root_gb"] = rootdisk.check_size(instance.flavor.root_gb) \
                if instance.flavor.root_gb else 0
        elif spec.get("root_gb"):
            spec["root_gb"] = max(spec["root_gb"], instance.flavor.root_gb or 0)
        limits(instance.flavor.memory_mb, instance.flavor.vcpus, spec["cpu"])
        return spec

    def _items(self, guest):
        record, spec = guest.record, guest.record.spec
        start = idmap()
        nics = []
        for entry in sorted(record.vifs.values(), key=lambda e: e["slot"]):
            nics.extend(nic_items(entry))
        upper = os.path.join(guest.idir.path, container.UPPER)   # the root disk
        if spec.get("root_gb"):
            upper = os.path.join(guest.idir.path, rootdisk.MOUNT, container.UPPER)
        return config.container_config(
            guest.uuid, "overlay:%s:%s" % (spec["base"], upper),
            guest.idir.file(container.CONSOLE_LOG),
            limits(record.memory_mb, record.vcpus, spec.get("cpu", {})),
            includes=CONF.lxc_native.include_configs, privileged=start is None,
            idmap=start, apparmor_profile=CONF.lxc_native.apparmor_profile,
            halt_signal=spec["halt_signal"], nics=nics, cgroup_version=cgroup_version())

    def start(self, guest, restore_from=None):
        """Define the container from its record and the current configuration, then
        start it from a short-lived lxc-start."""
        start = idmap()
        root_gb = guest.record.spec.get("root_gb")
        try:
            self._mount_root_disk(guest)
            try:
                ensure_pairs(guest)
                privsep.define(guest.uuid, lxcpath(), self._items(guest),
                               start[0] if start else None)
                pid = privsep.start(guest.uuid, lxcpath(), CONF.lxc_native.start_timeout)
            except Exception:
                with excutils.save_and_reraise_exception():
                    if root_gb:
                        privsep.umount_root_disk(guest.uuid, lxcpath())
        except container.ContainerError as e:
            raise exception.InstanceDeployFailure(reason=str(e), instance_id=guest.uuid)
        self._watch(guest.uuid, pid)
        try:
            for volume_id, vol in sorted(guest.record.volumes.items()):
                self.attach_disk(guest, volume_id, vol)
        except Exception:
            with excutils.save_and_reraise_exception():
                self.stop(guest)
        return pid

    def stop(self, guest):
        with self._quietly(guest.uuid):
            privsep.kill(guest.uuid, lxcpath(), CONF.lxc_native.kill_timeout)
            if guest.record.spec.get("root_gb"):
                privsep.umount_root_disk(guest.uuid, lxcpath())

    def running(self, guest):
        return privsep.state(guest.uuid, lxcpath())["state"] != "STOPPED"

    def state(self, guest):
        st = privsep.state(guest.uuid, lxcpath())["state"]
        return power_state.PAUSED if st == "FROZEN" else power_state.RUNNING

    def request_shutdown(self, guest):
        """The halt signal to the container's init (its clean shutdown); a frozen
        container is thawed first, or its init could not act on it."""
        if privsep.state(guest.uuid, lxcpath())["state"] == "FROZEN":
            self.unpause(guest)
        privsep.signal_init(guest.uuid, lxcpath(), guest.record.spec["halt_signal"])

    def reset(self, guest):
        self.stop(guest)
        self.start(guest)

    def console_endpoints(self, guest):
        return {"vnc": None, "serial": None}

    def pause(self, guest):
        try:
            privsep.freeze(guest.uuid, lxcpath(), CONF.lxc_native.freeze_timeout)
        except container.ContainerError as e:
            # thawed again: the instance stays ACTIVE and the fault says why
            raise exception.InternalError(str(e)) from e

    def unpause(self, guest):
        try:
            privsep.thaw(guest.uuid, lxcpath(), CONF.lxc_native.freeze_timeout)
        except container.ContainerError as e:
            raise exception.InternalError(str(e)) from e

    def free_slot(self, guest):
        """Slots are shared by interfaces (lxc.net.<slot>) and volumes (/dev/vd<b + slot>),
        so a volume's device name stays the same across restarts."""
        used = {e.get("slot") for e in list(guest.record.vifs.values())
                + list(guest.record.volumes.values())}
        return next(i for i in range(len(used) + 1) if i not in used)

    # -- volumes: the host's device node bound into the container ---------------------------
    def attach_disk(self, guest, volume_id, volume):
        """/dev/vd<b + slot> in the running container and an ext filesystem on it
        mounted at /mnt/volumes/<volume id>."""
        if not volume.get("block"):
            raise exception.VolumeAttachFailed(volume_id=volume_id, reason=_(
                "the LXC driver attaches block devices only"))
        node = blockdev.node_name(volume["slot"])
        start = idmap()
        try:
            mount = privsep.attach_block(guest.uuid, lxcpath(), volume["path"], node,
                                         volume_id, start[0] if start else None)
        except container.ContainerError as e:
            raise exception.VolumeAttachFailed(volume_id=volume_id, reason=str(e))
        LOG.info("volume %(v)s at /dev/%(n)s%(m)s", {
            "v": volume_id, "n": node, "m": " mounted at %s" % mount if mount else ""},
            instance_uuid=guest.uuid)

    def detach_disk(self, guest, volume_id, volume):
        start = idmap()
        if volume.get("slot") is None or not volume.get("block"):
            return
        try:
            privsep.detach_block(guest.uuid, lxcpath(), volume["path"],
                                 blockdev.node_name(volume["slot"]), volume_id,
                                 start[0] if start else None)
        except container.ContainerError as e:
            raise exception.InternalError(str(e)) from e

    # -- interfaces: the container's end of the port's veth pair into the running container
    def attach_nic(self, guest, vif_id, vif):
        try:
            privsep.attach_nic(guest.uuid, lxcpath(), peer_of(vif), vif["slot"],
                               vif["mac"], vif["mtu"], vif["ipv4"], vif["gateway"])
        except container.ContainerError as e:
            raise exception.InterfaceAttachFailed(instance_uuid=guest.uuid) from e
        LOG.info("interface %(v)s in the container as eth%(s)d",
                 {"v": vif_id, "s": vif["slot"]}, instance_uuid=guest.uuid)

    def detach_nic(self, guest, vif_id, vif):
        privsep.detach_nic(guest.uuid, lxcpath(), vif["tap"])

    # -- beyond the contract: files, console, snapshots ---------------------------------------
    def seed(self, guest, instance):
        """cloud-init's NoCloud seed in the container's root (before its first start)."""
        if not CONF.lxc_native.nocloud_seed:
            return
        lines = ["instance-id: %s" % json.dumps(instance.uuid),
                 "local-hostname: %s" % json.dumps(instance.hostname or instance.uuid)]
        if instance.key_data:
            lines += ["public-keys:", "  - %s" % json.dumps(instance.key_data.strip())]
        user_data = ""
        if instance.user_data:
            try:
                user_data = base64.b64decode(instance.user_data).decode()
            except (ValueError, UnicodeDecodeError):
                raise exception.InvalidInput(reason=_("user data is not base64 text"))
        start = idmap()
        self._mount_root_disk(guest)         # the seed goes to the root disk, if any
        privsep.write_seed(guest.uuid, lxcpath(), {"meta-data": "\n".join(lines) + "\n",
                                                   "user-data": user_data},
                           start[0] if start else None)

    def console(self, guest):
        return privsep.console_log(guest.uuid, lxcpath(), CONSOLE_TAIL).encode()

    def export(self, guest, path):
        """The container's root as a tarball at ``path`` (readable by nova's user)."""
        # a stopped container's changes are on its root disk, unmounted meanwhile
        mounted = self._mount_root_disk(guest)
        try:
            return privsep.export_rootfs(guest.uuid, lxcpath(), guest.record.spec["base"],
                                         path, idmap(), os.getuid())
        finally:
            if mounted and not self.running(guest):
                privsep.umount_root_disk(guest.uuid, lxcpath())

    def _mount_root_disk(self, guest):
        """Mount the container's root disk (if it has one; nothing if mounted already)."""
        if not guest.record.spec.get("root_gb"):
            return False
        start = idmap()
        try:
            privsep.mount_root_disk(guest.uuid, lxcpath(), guest.record.spec["root_gb"],
                                    start[0] if start else None)
        except container.ContainerError as e:
            raise exception.InstanceDeployFailure(reason=str(e), instance_id=guest.uuid)
        return True

    def remove(self, uuid):
        """Stop the container and remove its directory (config, overlay upper with files
        owned by the container's ids, logs)."""
        with self._quietly(uuid):
            privsep.kill(uuid, lxcpath(), CONF.lxc_native.kill_timeout)
            privsep.remove(uuid, lxcpath())

    # -- the watcher's bookkeeping ----------------------------------------------------------
    @contextlib.contextmanager
    def _quietly(self, uuid):
        with self._lock:
            self._quiet.add(uuid)
        try:
            yield
        finally:
            with self._lock:
                self._quiet.discard(uuid)
                self._watched.pop(uuid, None)

    def _watch(self, uuid, pid):
        with self._lock:
            self._quiet.discard(uuid)
            self._watched[uuid] = (pid, _start_time(pid))


def _start_time(pid):
    """The start time of process ``pid`` (None if there is none): tells a live init
    from a reused pid."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None

