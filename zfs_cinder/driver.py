"""Cinder volume driver on ZFS zvols.

Thin: naming and policy here, every ZFS operation through ``zfs_common.client``, exports
through cinder's target helpers (``zfs_cinder.target``), listings of manageable zvols in
``zfs_cinder.manageable``. Volumes are zvols named ``<root>/<volume.name>`` (the name uses
``name_id``), snapshots ``@<snapshot.name>``; clones and volumes from snapshots are ZFS
clones (O(1)); a deleted volume or snapshot that still has clones is retired (promoted or
destroyed deferred) so no data a clone needs goes and nothing stays behind once unused.
"""
import contextlib
import math
import socket
import uuid

from cinder import exception
from cinder import interface
from cinder.i18n import _
from cinder.image import image_utils
from cinder.volume import driver
from cinder.volume import volume_types
from cinder.volume import volume_utils
from oslo_config import cfg
from oslo_log import log as logging

from zfs_cinder import locks
from zfs_cinder import manageable
from zfs_cinder import migration
from zfs_cinder import opts
from zfs_cinder import pools
from zfs_cinder import target
from zfs_common import client as zfs_client
from zfs_common import exception as zfs_exc
from zfs_common import executor as zfs_executor
from zfs_common import opts as zfs_opts
from zfs_common import properties
from zfs_common import rootwrap as zfs_rootwrap
from zfs_common import translation
from zfs_common import validation

CONF = cfg.CONF
LOG = logging.getLogger(__name__)
GiB = 1024 ** 3
VOLUME_ID_PROPERTY = "org.openstack:cinder_volume"
# properties a volume type may set as "zfs:<property>"; volblocksize only at creation
TUNABLE = frozenset({
    "compression", "dedup", "sync", "logbias", "copies", "checksum", "primarycache",
    "secondarycache", "redundant_metadata", "volblocksize",
})
CREATE_ONLY = frozenset({"volblocksize"})


def backend_error(e):
    """The cinder exception for a ZFS layer error that no method mapped more closely."""
    if isinstance(e, zfs_exc.InvalidName | zfs_exc.InvalidValue):
        return exception.InvalidInput(reason=str(e))
    return exception.VolumeBackendAPIException(data=str(e))


@contextlib.contextmanager
def translated(resource=None, snapshot=False):
    """Map ZFS layer errors to the cinder exceptions an operator should see."""
    try:
        yield
    except (zfs_exc.InvalidName, zfs_exc.InvalidValue, properties.InvalidSpec) as e:
        raise exception.InvalidInput(reason=str(e))
    except zfs_exc.DatasetBusy as e:
        if resource is None:
            raise exception.VolumeBackendAPIException(data=str(e))
        if snapshot:
            raise exception.SnapshotIsBusy(snapshot_name=resource)
        raise exception.VolumeIsBusy(volume_name=resource)
    except zfs_exc.ZFSError as e:
        raise exception.VolumeBackendAPIException(data=str(e))


@interface.volumedriver
@translation.translate_errors(backend_error)
class ZFSVolumeDriver(driver.VolumeDriver):
    """Volumes as zvols on a local or remote (SSH) ZFS host."""

    VERSION = "1.0.0"
    CI_WIKI_NAME = "openstack-hci-drivers_CI"

    @property
    def SUPPORTS_ACTIVE_ACTIVE(self):   # noqa: N802 (cinder's attribute name)
        """Several cinder-volume services of one ``cluster`` may drive a remote ZFS host:
        what they share there (rtslib, the origin/clone tree while a volume is retired)
        is locked through cinder's coordination (``zfs_cinder.locks``). A local ZFS host
        is one machine's: no cluster."""
        return self.remote

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(opts.zfs_volume_opts)
        self.configuration.append_config_values(zfs_opts.zfs_host_opts)
        self.backend_name = self.configuration.safe_get("volume_backend_name") or "ZFS"
        self.zfs = None
        self.roots = {}        # pool name -> root dataset (zfs_cinder.pools)
        self.target = None
        self.protocol = None
        self._local_hosts = frozenset()

    @classmethod
    def get_driver_options(cls):
        from cinder.volume.targets import spdknvmf  # noqa: F401  (registers its options)
        return (opts.zfs_volume_opts + zfs_opts.zfs_host_opts + cls._get_oslo_driver_opts(
            "target_helper", "target_protocol", "target_ip_address", "target_port",
            "target_prefix", "target_secondary_ip_addresses", "volumes_dir",
            "reserved_percentage", "max_over_subscription_ratio", "nvmet_port_id",
            "iscsi_target_flags", "iscsi_write_cache"))

    # -- setup ----------------------------------------------------------------------------
    @property
    def remote(self):
        return bool(self.configuration.zfs_ssh_host)

    def do_setup(self, context):
        conf = self.configuration
        self.backend_name = conf.safe_get("volume_backend_name") or "ZFS"
        self.roots = pools.roots_from_config(conf, self.backend_name)
        if not self.remote:
            zfs_rootwrap.use_service_rootwrap("cinder-rootwrap")
        self.zfs = zfs_client.ZFSClient.from_config(conf)
        self.target = target.build(self, conf, self.zfs.executor, self.remote)
        self.protocol = self.target.storage_protocol or self.target.protocol
        hosts = set(conf.zfs_local_attach_hosts)
        if not hosts and not self.remote:
            hosts = {CONF.host, socket.gethostname()}
        self._local_hosts = frozenset(hosts) if conf.zfs_local_attach else frozenset()

    def check_for_setup_error(self):
        for root in self.roots.values():
            try:
                if not self.zfs.exists(root):
                    self._create_root(root)
                if self.zfs.get_one(root, "type") != zfs_client.FILESYSTEM:
                    raise zfs_exc.ZFSError("%s is not a filesystem" % root)
            except zfs_exc.ZFSError as e:
                raise exception.VolumeBackendAPIException(data=_(
                    "volume root %(root)s is not usable: %(err)s") % {"root": root,
                                                                      "err": e})

    def _create_root(self, root):
        try:
            self.zfs.create_filesystem(root, parents=True)
        except zfs_exc.DatasetExists:
            # another service of the cluster starting at the same moment made it
            LOG.debug("volume root %s was created concurrently", root)

    # -- naming ---------------------------------------------------------------------------
    def _root(self, volume):
        """The root dataset of the pool ``volume`` is (to be) in."""
        pool = pools.pool_of(volume)
        if pool in self.roots:
            return self.roots[pool]
        if len(self.roots) == 1:
            return next(iter(self.roots.values()))
        for root in self.roots.values():   # a volume whose host names no pool
            if self.zfs.exists("%s/%s" % (root, volume.name)):
                return root
        raise exception.VolumeBackendAPIException(data=_(
            "volume %(id)s is on pool %(pool)s, which this backend does not serve") % {
                "id": volume.id, "pool": pool})

    def _zvol(self, volume):
        return "%s/%s" % (self._root(volume), volume.name)

    def _snapshot(self, snapshot):
        return "%s@%s" % (self._zvol(snapshot.volume), snapshot.name)

    def local_path(self, volume):
        if self.remote:
            raise NotImplementedError(_("volumes are on the remote ZFS host %s")
                                      % self.configuration.zfs_ssh_host)
        return self.zfs.zvol_path(self._zvol(volume))

    def get_pool(self, volume):
        root = self._root(volume)
        return next(pool for pool, r in self.roots.items() if r == root)

    # -- properties -----------------------------------------------------------------------
    def _type_specs(self, volume_type_id):
        if not volume_type_id:
            return {}
        return volume_types.get_volume_type_extra_specs(volume_type_id)

    def _sparse(self, specs):
        kind = specs.get("provisioning:type")
        if kind in ("thin", "thick"):
            return kind == "thin"
        thin = properties.capability(specs, "capabilities:thin_provisioning_support")
        return self.configuration.zfs_sparse_volumes if thin is None else thin

    def _properties(self, specs, volume):
        props = properties.from_extra_specs(
            specs, TUNABLE, self.configuration.zfs_volume_properties, kind="volume types")
        props[VOLUME_ID_PROPERTY] = volume.id
        return props

    # -- volumes --------------------------------------------------------------------------
    def create_volume(self, volume):
        specs = self._type_specs(volume.volume_type_id)
        with translated():
            self.zfs.create_volume(self._zvol(volume), volume.size * GiB,
                                   self._properties(specs, volume), sparse=self._sparse(specs))

    def _clone(self, origin, volume, size_gb):
        """Clone ``origin`` (a snapshot) into ``volume``, then grow and reserve it."""
        specs = self._type_specs(volume.volume_type_id)
        props = {k: v for k, v in self._properties(specs, volume).items()
                 if k not in CREATE_ONLY}
        name = self._zvol(volume)
        if origin.split("/")[0] == name.split("/")[0]:
            self.zfs.clone(origin, name, props)
        else:
            # another zpool of this host: no clone can cross zpools
            self.zfs.copy_snapshot(origin, self.zfs, name, props)
        try:
            changes = {}
            if volume.size * GiB > size_gb * GiB:
                changes["volsize"] = volume.size * GiB
            if not self._sparse(specs):
                changes["refreservation"] = "auto"
            if changes:
                self.zfs.set(name, changes)
        except zfs_exc.ZFSError:
            self.zfs.destroy(name, missing_ok=True)
            raise

    def create_volume_from_snapshot(self, volume, snapshot):
        with translated():
            self._clone(self._snapshot(snapshot), volume, snapshot.volume_size)

    def create_cloned_volume(self, volume, src_vref):
        """A ZFS clone of a snapshot taken for it; the snapshot goes with the clone."""
        helper = "%s@%s%s" % (self._zvol(src_vref), manageable.CLONE_SNAPSHOT_PREFIX, volume.id)
        with translated():
            self.zfs.snapshot(helper)
            try:
                self._clone(helper, volume, src_vref.size)
            finally:
                # with the clone: marked, and destroyed with the clone; without: now
                self.zfs.destroy(helper, defer=True, missing_ok=True)

    def delete_volume(self, volume):
        name = self._zvol(volume)
        with translated(volume.name):
            if not self.zfs.exists(name):
                LOG.info("zvol %s of volume %s is already gone", name, volume.id)
                return
            try:
                self._retire(name)
            except zfs_exc.DatasetBusy:
                # a target of a service that died while exporting holds the zvol open
                if not (isinstance(self.target, target.RemoteLioAdm)
                        and self.target.remove_leftover(volume)):
                    raise
                LOG.info("removed the leftover export of volume %s", volume.id)
                self._retire(name)

    def _retire(self, name):
        # the promotion a retirement may do moves snapshots between datasets that other
        # services of a cluster may be retiring at the same moment: one retirement at a
        # time per zpool of the ZFS host
        with locks.host_lock("retire", self.zfs.executor, name.split("/")[0]):
            self.zfs.retire(name)

    def extend_volume(self, volume, new_size):
        with translated(volume.name):
            self.zfs.set(self._zvol(volume), {"volsize": new_size * GiB})
        if volume.provider_location:
            self.target.extend_target(volume)

    def retype(self, context, volume, new_type, diff, host):
        """Change ZFS properties and thin/thick in place; other changes need migration."""
        specs = dict(new_type.get("extra_specs") or {})
        if volume_utils.extract_host(host["host"], "backend") != volume_utils.extract_host(
                volume.host, "backend"):
            return False
        pool = volume_utils.extract_host(host["host"], "pool")
        if pool and self.roots.get(pool, self._root(volume)) != self._root(volume):
            return False      # another zpool of this backend: cinder migrates
        name = self._zvol(volume)
        with translated(volume.name):
            wanted = self._properties(specs, volume)
            current = self.zfs.get(name, sorted(TUNABLE | {"refreservation"}))[name]
            for prop in CREATE_ONLY & wanted.keys():
                if current.get(prop) != str(self._size_value(wanted[prop])):
                    LOG.info("retype of %s changes %s: needs migration", volume.id, prop)
                    return False
            changes = {k: v for k, v in wanted.items()
                       if k in TUNABLE - CREATE_ONLY and current.get(k) != str(v)}
            changes["refreservation"] = "none" if self._sparse(specs) else "auto"
            self.zfs.set(name, changes)
            for prop in sorted((TUNABLE - CREATE_ONLY) - wanted.keys()):
                self.zfs.inherit(name, prop)
        return True, None

    def migrate_volume(self, context, volume, host):
        """An available volume to another ZFS backend (zfs_cinder.migration); (False,
        None) lets cinder copy it where this driver cannot move it."""
        specs = self._type_specs(volume.volume_type_id)
        with translated(volume.name):
            props = {k: v for k, v in self._properties(specs, volume).items()
                     if k not in CREATE_ONLY}
            return migration.migrate(self, volume, host, props, self._sparse(specs))

    @staticmethod
    def _size_value(value):
        """'16K' -> 16384 (volblocksize as ZFS reports it with -p)."""
        text = str(value).strip().upper()
        units = {"K": 1024, "M": 1024 ** 2}
        if text and text[-1] in units and text[:-1].isdigit():
            return int(text[:-1]) * units[text[-1]]
        return value

    # -- snapshots ------------------------------------------------------------------------
    def create_snapshot(self, snapshot):
        with translated():
            self.zfs.snapshot(self._snapshot(snapshot))

    def delete_snapshot(self, snapshot):
        """Destroy it, or mark it for destruction with its last clone (-d)."""
        with translated(snapshot.name, snapshot=True):
            self.zfs.destroy(self._snapshot(snapshot), defer=True, missing_ok=True)

    def snapshot_revert_use_temp_snapshot(self):
        # a newer temporary snapshot would make `zfs rollback` refuse
        return False

    def revert_to_snapshot(self, context, volume, snapshot):
        """``zfs rollback``; NotImplementedError (cinder copies instead) if it cannot.

        Cinder reverts only to a volume's latest snapshot, so newer ones are the driver's
        own clone snapshots: those without clones left go, ones with clones block.
        """
        name, snap = self._zvol(volume), self._snapshot(snapshot)
        with translated(volume.name):
            snaps = self.zfs.snapshots(name)
            if snap not in snaps:
                raise exception.SnapshotNotFound(snapshot_id=snapshot.id)
            newer = snaps[snaps.index(snap) + 1:]
            if any(self.zfs.clones(s) for s in newer):
                raise NotImplementedError(_(
                    "newer snapshots of %s have clones; zfs rollback cannot keep them")
                    % name)
            self.zfs.rollback(snap, destroy_newer=bool(newer))
            if volume.size > snapshot.volume_size:
                self.zfs.set(name, {"volsize": volume.size * GiB})

    # -- images ---------------------------------------------------------------------------
    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        """Write the image as raw onto the zvol: directly on the ZFS host, or converted
        into a temporary file here and streamed to the remote ZFS host over SSH."""
        blocksize = self.configuration.volume_dd_blocksize
        if not self.remote:
            image_utils.fetch_to_raw(context, image_service, image_id,
                                     self._wait_for_zvol(volume), blocksize,
                                     size=volume.size, disable_sparse=disable_sparse)
            return
        with image_utils.temporary_file(prefix="zfs-cinder-") as tmp:
            image_utils.fetch_to_raw(context, image_service, image_id, tmp, blocksize,
                                     size=volume.size, run_as_root=False,
                                     disable_sparse=disable_sparse)
            device = self._wait_for_zvol(volume)
            with translated():
                zfs_executor.copy_bytes(None, tmp, self.zfs.executor, device,
                                        sparse=not disable_sparse,
                                        timeout=self.configuration.zfs_command_timeout * 30)

    def copy_volume_to_image(self, context, volume, image_service, image_meta):
        if not self.remote:
            volume_utils.upload_volume(context, image_service, image_meta,
                                       self._wait_for_zvol(volume), volume)
            return
        # the ZFS host sends a snapshot's stream: only allocated blocks cross the wire,
        # and the image is the volume at one moment even while it is in use
        name = self._zvol(volume)
        snap = "%s@%s%s" % (name, manageable.UPLOAD_SNAPSHOT_PREFIX, uuid.uuid4().hex)
        with image_utils.temporary_file(prefix="zfs-cinder-") as tmp:
            with translated(volume.name):
                size = self.zfs.get_int(name, "volsize")
                self.zfs.snapshot(snap)
                try:
                    with open(tmp, "r+b") as f:
                        data = self.zfs.read_zvol(
                            snap, f.fileno(), size,
                            timeout=self.configuration.zfs_command_timeout * 30)
                finally:
                    self.zfs.destroy(snap, missing_ok=True)
            LOG.debug("volume %s: %d of %d bytes carry data", volume.id, data, size)
            volume_utils.upload_volume(context, image_service, image_meta, tmp, volume,
                                       run_as_root=False)

    # -- stats ----------------------------------------------------------------------------
    def _update_volume_stats(self):
        conf = self.configuration
        with translated():
            capacity = pools.capacities(self.zfs, list(self.roots.values()))
        pool_stats = []
        for pool, root in sorted(self.roots.items()):
            total, free = capacity[root]
            pool_stats.append({
                "pool_name": pool,
                "total_capacity_gb": round(total / GiB, 2),
                "free_capacity_gb": round(free / GiB, 2),
                "reserved_percentage": conf.reserved_percentage,
                "max_over_subscription_ratio": conf.max_over_subscription_ratio,
                "thin_provisioning_support": True,
                "thick_provisioning_support": True,
                "multiattach": True,
                "online_extend_support": True,
                "sparse_copy_volume": True,
                "QoS_support": False,
                "location_info": migration.location_info(
                    migration.own_location(conf, root)),
            })
        self._stats = {
            "volume_backend_name": self.backend_name,
            "vendor_name": "Open Source",
            "driver_version": self.VERSION,
            "storage_protocol": self.protocol,
            "pools": pool_stats,
        }

    # -- manage / unmanage ----------------------------------------------------------------
    @staticmethod
    def _source_name(existing_ref):
        name = (existing_ref or {}).get("source-name")
        if not name:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason=_("source-name is required"))
        return name

    def _existing_zvol(self, volume, existing_ref):
        name = self._source_name(existing_ref)
        root = self._root(volume)
        name = name if "/" in name else "%s/%s" % (root, name)
        try:
            validation.dataset(name)
            props = self.zfs.get(name, ["type", "volsize"])[name]
        except zfs_exc.ZFSError as e:
            raise exception.ManageExistingInvalidReference(existing_ref=existing_ref,
                                                           reason=str(e))
        if props.get("type") != zfs_client.VOLUME:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason=_("%s is not a zvol") % name)
        if name.split("/")[0] != root.split("/")[0]:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref,
                reason=_("%(name)s is not in zpool %(pool)s") % {
                    "name": name, "pool": root.split("/")[0]})
        return name, int(props["volsize"])

    def manage_existing_get_size(self, volume, existing_ref):
        return int(math.ceil(self._existing_zvol(volume, existing_ref)[1] / GiB))

    def manage_existing(self, volume, existing_ref):
        """Rename the zvol into this backend's naming, grown to whole GiB if needed."""
        name, size = self._existing_zvol(volume, existing_ref)
        target_name = self._zvol(volume)
        with translated(volume.name):
            if name != target_name:
                self.zfs.rename(name, target_name)
            changes = {VOLUME_ID_PROPERTY: volume.id}
            if size % GiB:
                changes["volsize"] = int(math.ceil(size / GiB)) * GiB
            self.zfs.set(target_name, changes)

    def unmanage(self, volume):
        with translated(volume.name):
            self.zfs.inherit(self._zvol(volume), VOLUME_ID_PROPERTY)

    def _existing_snapshot(self, snapshot, existing_ref):
        name = self._source_name(existing_ref)
        zvol = self._zvol(snapshot.volume)
        full = name if "@" in name else "%s@%s" % (zvol, name)
        try:
            validation.snapshot(full)
            size = self.zfs.get_int(full, "volsize")
        except zfs_exc.ZFSError as e:
            raise exception.ManageExistingInvalidReference(existing_ref=existing_ref,
                                                           reason=str(e))
        if full.split("@")[0] != zvol:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref,
                reason=_("%(snap)s is not a snapshot of %(zvol)s") % {"snap": full,
                                                                      "zvol": zvol})
        return full, size

    def manage_existing_snapshot_get_size(self, snapshot, existing_ref):
        return int(math.ceil(self._existing_snapshot(snapshot, existing_ref)[1] / GiB))

    def manage_existing_snapshot(self, snapshot, existing_ref):
        full, _size = self._existing_snapshot(snapshot, existing_ref)
        with translated(snapshot.name, snapshot=True):
            if full != self._snapshot(snapshot):
                self.zfs.rename(full, self._snapshot(snapshot))

    def unmanage_snapshot(self, snapshot):
        """Cinder forgets it; the ZFS snapshot stays as it is."""

    def get_manageable_volumes(self, cinder_volumes, marker, limit, offset, sort_keys,
                               sort_dirs):
        with translated():
            entries = [e for root in sorted(self.roots.values())
                       for e in manageable.volumes(self.zfs, root, cinder_volumes)]
        return volume_utils.paginate_entries_list(entries, marker, limit, offset, sort_keys,
                                                  sort_dirs)

    def get_manageable_snapshots(self, cinder_snapshots, marker, limit, offset, sort_keys,
                                 sort_dirs):
        with translated():
            entries = [e for root in sorted(self.roots.values())
                       for e in manageable.snapshots(self.zfs, root, cinder_snapshots)]
        return volume_utils.paginate_entries_list(entries, marker, limit, offset, sort_keys,
                                                  sort_dirs)

    # -- attach: local connections or cinder's target helpers -----------------------------
    def _is_local(self, connector):
        return bool(connector) and connector.get("host") in self._local_hosts

    def _wait_for_zvol(self, volume):
        with translated():
            return self.zfs.wait_for_zvol(self._zvol(volume),
                                          timeout=self.configuration.zfs_zvol_wait_timeout)

    def validate_connector(self, connector):
        if not self._is_local(connector):
            return self.target.validate_connector(connector)

    def create_export(self, context, volume, connector):
        if self._is_local(connector):
            return None
        info = self.target.create_export(context, volume, self._wait_for_zvol(volume))
        return {"provider_location": info["location"], "provider_auth": info["auth"]}

    def ensure_export(self, context, volume):
        if volume.provider_location:
            return self.target.ensure_export(context, volume, self._wait_for_zvol(volume))

    def remove_export(self, context, volume):
        if volume.provider_location:
            self.target.remove_export(context, volume)

    def initialize_connection(self, volume, connector):
        if self._is_local(connector):
            return {"driver_volume_type": "local",
                    "data": {"device_path": self._wait_for_zvol(volume)}}
        return self.target.initialize_connection(volume, connector)

    def terminate_connection(self, volume, connector, **kwargs):
        """Returns True when the export must stay (other attachments still use it)."""
        if self._is_local(connector):
            return len(volume.volume_attachment) > 1
        attachments = volume.volume_attachment

        def same_connector(attachment):
            return attachment.connector and self.target.are_same_connector(
                attachment.connector, connector)

        if volume.multiattach and sum(1 for a in attachments if same_connector(a)) > 1:
            return True
        if connector is not None and volume.provider_location:
            # (a forced detach without connector leaves the ACL to remove_export)
            self.target.terminate_connection(volume, connector, **kwargs)
        return len(attachments) > 1
