"""LXC as a hypervisor for nova: an instance is a system container named by its UUID
under ``lxcpath = instances_path``, so its container directory is its instance directory.

Unprivileged side (nova-compute's user): reading nova's instance, flavor, image and
network objects into plain values, fetching images from Glance, launch metadata, the
native watcher thread. Privileged side (``nova_lxc.privsep``): everything liblxc does.
"""
import ipaddress
import os
import sysconfig
import time

from nova import exception
from nova import utils as nova_utils
import nova.conf
from nova.i18n import _
from nova.virt import images as nova_images
from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import versionutils

from nova_common import instance_dir
from nova_common import lifecycle
from nova_common import vifs
from nova_lxc import config
from nova_lxc import container
from nova_lxc import images
from nova_lxc import opts
from nova_lxc import privsep

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


def limits(flavor):
    specs = flavor.extra_specs or {}
    return config.cgroup_limits(
        cgroup_version(), flavor.memory_mb, flavor.vcpus,
        cpu_shares=specs.get("quota:cpu_shares"), cpu_quota=specs.get("quota:cpu_quota"),
        cpu_period=specs.get("quota:cpu_period"), pids_max=CONF.lxc_native.pids_max)


def halt_signal(instance):
    sig = (instance.system_metadata or {}).get(HALT_PROPERTY)
    if sig is None:
        return CONF.lxc_native.halt_signal
    try:
        return config.check_signal(sig)
    except exception.InvalidInput:
        raise exception.ImageUnacceptable(image_id=instance.image_ref, reason=_(
            "image property lxc_halt_signal is not a signal name: %r") % sig)


def nics(network_info):
    """liblxc veth items for the instance's ports (checked with the shared VIF code:
    ``tap`` ports, whose device name becomes the host end of the pair)."""
    items = []
    for index, vif in enumerate(network_info or []):
        vifs.check(vif)
        network = vif.get("network") or {}
        mtu = network.get_meta("mtu") if network else None
        ipv4, gateway = [], None
        for subnet in (network.get("subnets") or []) if network else []:
            if subnet.get("version") != 4 or not subnet.get("cidr"):
                continue
            net = ipaddress.ip_network(subnet["cidr"], strict=False)
            for ip in subnet.get("ips") or []:
                ipv4.append((ip["address"], net.prefixlen, str(net.broadcast_address)))
            gw = subnet.get("gateway") or {}
            if gw.get("address") and gateway is None:
                gateway = gw["address"]
        try:
            items.extend(config.nic_items(index, vif["devname"], vif["address"], mtu,
                                          ipv4, gateway))
        except exception.InvalidInput as e:
            raise exception.VirtualInterfacePlugException(str(e))
    return items


class LXCHypervisor:
    """Containers of one compute host."""

    def __init__(self, on_stopped=None):
        self._on_stopped = on_stopped      # called (uuid) from the watcher thread
        self._quiet = set()                # stops the driver itself causes
        self._watched = {}                 # uuid -> init pid
        # native: shared with the watcher thread (held for dict updates only)
        self._lock = lifecycle.native_threading().Lock()
        self._watcher = None
        self._stopping = False

    # -- images ---------------------------------------------------------------------------
    def rootfs(self, context, instance, image_meta):
        """The cached, unpacked root of the instance's image (fetched and unpacked on
        first use; one image per id map)."""
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

    # -- containers -----------------------------------------------------------------------
    def define(self, instance, idir, base, network_info, flavor=None):
        """Write the container's config for ``flavor`` (default: the instance's)."""
        name = instance.uuid
        start = idmap()
        items = config.container_config(
            name, "overlay:%s:%s" % (base, idir.file(container.UPPER)),
            idir.file(container.CONSOLE_LOG), limits(flavor or instance.flavor),
            includes=CONF.lxc_native.include_configs, privileged=start is None,
            idmap=start, apparmor_profile=CONF.lxc_native.apparmor_profile,
            halt_signal=halt_signal(instance), nics=nics(network_info),
            cgroup_version=cgroup_version())
        privsep.define(name, lxcpath(), items, start[0] if start else None)

    def state(self, uuid):
        return privsep.state(uuid, lxcpath())

    def running(self, uuid):
        return self.state(uuid)["state"] != "STOPPED"

    def start(self, instance):
        pid = privsep.start(instance.uuid, lxcpath(), CONF.lxc_native.start_timeout)
        LOG.info("container started (init pid %d)", pid, instance=instance)
        self.watch(instance.uuid, pid)
        return pid

    def kill(self, instance):
        with self._quietly(instance.uuid):
            privsep.kill(instance.uuid, lxcpath(), CONF.lxc_native.kill_timeout)
        LOG.info("container stopped", instance=instance)

    def shutdown(self, instance, timeout, retry_interval=0):
        """The halt signal to init, again every ``retry_interval`` s, for up to
        ``timeout`` s; True if the container stopped by itself."""
        deadline = time.monotonic() + timeout
        with self._quietly(instance.uuid):
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                step = min(retry_interval or left, left)
                if privsep.shutdown(instance.uuid, lxcpath(), max(1, int(step))):
                    LOG.info("container shut down", instance=instance)
                    return True

    def freeze(self, instance):
        try:
            privsep.freeze(instance.uuid, lxcpath(), CONF.lxc_native.freeze_timeout)
        except container.ContainerError as e:
            # thawed again: the instance stays ACTIVE and the fault says why
            raise exception.InternalError(str(e)) from e
        LOG.info("container frozen", instance=instance)

    def thaw(self, instance):
        privsep.thaw(instance.uuid, lxcpath(), CONF.lxc_native.freeze_timeout)
        LOG.info("container thawed", instance=instance)

    def set_limits(self, instance, flavor):
        privsep.set_cgroup_items(instance.uuid, lxcpath(), limits(flavor))

    def console(self, instance):
        return privsep.console_log(instance.uuid, lxcpath(), CONSOLE_TAIL).encode()

    def export(self, instance, base, path):
        """The container's root as a tarball at ``path`` (readable by nova's user)."""
        return privsep.export_rootfs(instance.uuid, lxcpath(), base, path, idmap(),
                                     os.getuid())

    def remove(self, instance):
        """Stop the container and remove its directory (config, overlay upper, logs)."""
        if self.running(instance.uuid):
            self.kill(instance)
        self._forget(instance.uuid)
        privsep.remove(instance.uuid, lxcpath())

    # -- watching for containers that stop by themselves -----------------------------------
    class _Quiet:
        def __init__(self, owner, uuid):
            self.owner, self.uuid = owner, uuid

        def __enter__(self):
            with self.owner._lock:
                self.owner._quiet.add(self.uuid)

        def __exit__(self, *exc):
            with self.owner._lock:
                self.owner._quiet.discard(self.uuid)
                self.owner._watched.pop(self.uuid, None)

    def _quietly(self, uuid):
        return self._Quiet(self, uuid)

    def _forget(self, uuid):
        with self._lock:
            self._watched.pop(uuid, None)

    def watch(self, uuid, pid):
        with self._lock:
            self._watched[uuid] = (pid, _start_time(pid))

    def start_watcher(self, interval=0.5):
        """A native thread noticing containers whose init is gone (it died, or the
        guest halted itself) and reporting them through ``on_stopped``. Reads /proc only:
        no privileges, no lock held while reporting."""
        if self._watcher is not None:
            return

        self._stopping = False
        eventlet = nova_utils.get_eventlet()
        sleep = eventlet.patcher.original("time").sleep if eventlet else time.sleep

        def run():
            while not self._stopping:
                sleep(interval)
                with self._lock:
                    gone = [u for u, (pid, since) in self._watched.items()
                            if u not in self._quiet and _start_time(pid) != since]
                    for uuid in gone:
                        del self._watched[uuid]
                for uuid in gone:
                    if self._on_stopped:
                        self._on_stopped(uuid)

        self._watcher = lifecycle.native_threading().Thread(
            target=run, daemon=True, name="nova-lxc-watcher")
        self._watcher.start()

    def stop_watcher(self):
        self._stopping = True

    def reattach(self):
        """After a nova-compute restart: watch the containers that still run."""
        root = lxcpath()
        for uuid in instance_dir.list_uuids(root):
            st = self.state(uuid)
            if st["state"] != "STOPPED" and st["init_pid"] > 0:
                self.watch(uuid, st["init_pid"])
                LOG.info("container %s runs (init pid %d): managed again", uuid,
                         st["init_pid"])


def _start_time(pid):
    """The start time of process ``pid`` (None if there is none): tells a live init
    from a reused pid."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None

