"""Manila share driver on ZFS datasets, exported over NFS (DHSS=False).

Thin: naming and policy here, every ZFS operation through ``zfs_common.client``, NFS
exports through ``zfs_manila.nfs``. Shares are datasets with a ``refquota`` (snapshots
do not eat the share's size); shares from snapshots are ZFS clones when the snapshot is on
the same zpool (O(1)), send/receive otherwise.
"""
import ipaddress
import math

from manila import exception
from manila.i18n import _
from manila.share import driver
from manila.share import share_types
from manila.share import utils as share_utils
from oslo_log import log as logging

from zfs_common import client as zfs_client
from zfs_common import exception as zfs_exc
from zfs_common import opts as zfs_opts
from zfs_common import rootwrap as zfs_rootwrap
from zfs_common import translation
from zfs_manila import nfs
from zfs_manila import opts
from zfs_manila import peers
from zfs_manila import properties
from zfs_manila import provisioned
from zfs_manila import replication

LOG = logging.getLogger(__name__)
GiB = 1024 ** 3
SHARE_ID_PROPERTY = "org.openstack:manila_share_instance"


def backend_error(e):
    """Map a ZFS layer error to the manila exception an operator should see."""
    if isinstance(e, zfs_exc.InvalidName | zfs_exc.InvalidValue):
        return exception.InvalidInput(reason=str(e))
    return exception.ShareBackendException(msg=str(e))


@translation.translate_errors(backend_error, also=("_update_share_stats",))
class ZFSShareDriver(driver.ShareDriver):
    """NFS shares on ZFS datasets of a local or remote (SSH) ZFS host."""

    VERSION = "1.0.0"

    def __init__(self, *args, **kwargs):
        super().__init__([False], *args, config_opts=[opts.zfs_share_opts,
                                                      zfs_opts.zfs_host_opts], **kwargs)
        conf = self.configuration
        self.backend_name = conf.safe_get("share_backend_name") or "ZFS"
        self.ipv6_implemented = True
        self.zfs = None
        self.nfs = None
        self.roots = {}
        self.replicator = None
        self.peers = None
        self.share_id_property = SHARE_ID_PROPERTY

    # -- setup ----------------------------------------------------------------------------
    def do_setup(self, context):
        conf = self.configuration
        if not conf.zfs_ssh_host:
            zfs_rootwrap.use_service_rootwrap("manila-rootwrap")
        self.zfs = zfs_client.ZFSClient.from_config(conf)
        self.nfs = nfs.HELPERS[conf.zfs_nfs_helper](self.zfs, conf.zfs_nfs_export_options)
        self.roots = {}
        for root in conf.zfs_dataset_roots:
            root = root.strip().rstrip("/")
            try:
                zfs_client.validation.dataset(root)
            except zfs_exc.InvalidName as e:
                raise exception.BadConfigurationException(reason=str(e))
            pool = root.split("/")[0]
            if pool in self.roots:
                raise exception.BadConfigurationException(reason=_(
                    "zfs_dataset_roots names two datasets in zpool %s; use one per zpool")
                    % pool)
            self.roots[pool] = root
        self._export_ips = [conf.zfs_share_export_ip] + (
            [conf.zfs_admin_export_ip] if conf.zfs_admin_export_ip else [])
        self.ip_versions = sorted({ipaddress.ip_address(ip).version
                                   for ip in self._export_ips[:1]})
        self.peers = peers.Peers(self)
        self.replicator = replication.Replicator(self)
        self.provisioned = provisioned.ProvisionedBytes(
            self._count_provisioned, conf.zfs_provisioned_recount_interval)

    def check_for_setup_error(self):
        for root in self.roots.values():
            try:
                if not self.zfs.exists(root):
                    self.zfs.create_filesystem(root, parents=True)
            except zfs_exc.ZFSError as e:
                raise exception.BadConfigurationException(reason=_(
                    "dataset root %(root)s is not usable: %(err)s") % {"root": root,
                                                                       "err": e})

    def get_configured_ip_versions(self):
        return self.ip_versions

    # -- naming ---------------------------------------------------------------------------
    def _pool_of(self, share):
        pool = share_utils.extract_host(share["host"], level="pool")
        if pool not in self.roots:
            raise exception.ShareBackendException(msg=_(
                "share %(id)s is on pool %(pool)s, which this backend does not serve") % {
                    "id": share["id"], "pool": pool})
        return pool

    def _root(self, share):
        return self.roots[self._pool_of(share)]

    def _dataset(self, share):
        return "%s/%s%s" % (self._root(share), self.configuration.zfs_share_name_prefix,
                            share["id"])

    def _snapshot_name(self, snapshot, instance=None):
        """``dataset@<prefix><snapshot id>`` of a snapshot instance.

        Named by the snapshot's ID, which all replicas of a share have in common (instance
        IDs differ per replica), so replicated snapshots keep their names (the prefix is
        the same on every backend of a replication domain). The instance may be on a peer
        backend (a share from a snapshot on another host).
        """
        instance = instance or snapshot.get("share_instance") or snapshot["share"]
        dataset = self.peers.dataset({"id": snapshot["share_instance_id"],
                                      "host": instance["host"]})
        return "%s@%s%s" % (dataset, self.configuration.zfs_snapshot_name_prefix,
                            snapshot["snapshot_id"])

    def get_pool(self, share):
        return share_utils.extract_host(share["host"], level="pool")

    # -- export locations -----------------------------------------------------------------
    def _export_locations(self, dataset, mountpoint=None):
        mountpoint = mountpoint or self.zfs.get_one(dataset, "mountpoint")
        if not mountpoint.startswith("/"):
            raise exception.ShareBackendException(msg=_(
                "dataset %(ds)s has no mountpoint (%(mp)s)") % {"ds": dataset,
                                                                "mp": mountpoint})
        locations = []
        for i, ip in enumerate(self._export_ips):
            host = "[%s]" % ip if ipaddress.ip_address(ip).version == 6 else ip
            locations.append({"path": "%s:%s" % (host, mountpoint),
                              "is_admin_only": i > 0,
                              "metadata": {"preferred": i == 0}})
        return locations

    def _check_proto(self, share):
        if share["share_proto"].upper() != "NFS":
            raise exception.InvalidShare(reason=_(
                "protocol %s is not supported; this backend exports NFS only")
                % share["share_proto"])

    def _size_props(self, share):
        specs = share_types.get_extra_specs_from_share(share)
        return properties.size_properties(specs, share["size"])

    def _properties(self, share, size_gb):
        specs = share_types.get_extra_specs_from_share(share)
        try:
            props = properties.dataset_properties(
                specs, self.configuration.zfs_dataset_creation_options, size_gb)
        except properties.InvalidSpec as e:
            raise exception.InvalidInput(reason=str(e))
        props[SHARE_ID_PROPERTY] = share["id"]
        props["sharenfs"] = "off"
        props["readonly"] = "off"
        return props

    # -- shares ---------------------------------------------------------------------------
    def create_share(self, context, share, share_server=None):
        self._check_proto(share)
        dataset = self._dataset(share)
        props = self._properties(share, share["size"])
        try:
            self.zfs.create_filesystem(dataset, props)
        except zfs_exc.ZFSError as e:
            raise backend_error(e)
        locations = self._locations_or_cleanup(dataset)
        self.provisioned.add(self._root(share), share["size"] * GiB)
        return locations

    def _locations_or_cleanup(self, dataset):
        """Export locations of a new share; on failure the dataset goes again.

        Its root directory is made world-writable (0777), as manila's reference drivers
        do: clients are root-squashed, so a root-owned 0755 directory would take no
        writes from anyone.
        """
        try:
            mountpoint = self.zfs.get_one(dataset, "mountpoint")
            locations = self._export_locations(dataset, mountpoint)
            self.zfs.executor.chmod(mountpoint, 0o777)
            return locations
        except Exception:
            LOG.exception("removing %s: it was created but cannot be exported", dataset)
            self.zfs.retire(dataset)
            raise

    def delete_share(self, context, share, share_server=None):
        dataset = self._dataset(share)
        try:
            try:
                props = self.zfs.get(dataset, ["mountpoint", "refquota",
                                               nfs.STATE_PROPERTY])[dataset]
            except zfs_exc.DatasetNotFound:
                LOG.warning("dataset %s of share %s is already gone", dataset, share["id"])
                return
            self.nfs.remove(dataset, props["mountpoint"], props[nfs.STATE_PROPERTY])
            try:
                self.zfs.retire(dataset)
            except zfs_exc.DatasetBusy:
                LOG.info("%s still busy after unexport; flushing the NFS export caches",
                         dataset)
                self.nfs.release()
                try:
                    self.zfs.retire(dataset)
                except zfs_exc.DatasetBusy as e:
                    raise exception.ShareBackendException(msg=_(
                        "%(ds)s is still busy after its NFS exports were removed and the "
                        "kernel's export caches flushed (%(err)s). If no process uses "
                        "%(mp)s, the kernel NFS server still holds it: seen with Linux 6.1 "
                        "after NFSv4 use, where entries for it stay in "
                        "/proc/net/rpc/nfsd.export/content for a few minutes. The share "
                        "and its data are intact; delete it again later, or raise "
                        "zfs_busy_timeout to wait that out.") % {
                            "ds": dataset, "err": e, "mp": props["mountpoint"]})
        except zfs_exc.ZFSError as e:
            raise backend_error(e)
        if props["refquota"].isdigit():
            self.provisioned.add(self._root(share), -int(props["refquota"]))

    def extend_share(self, share, new_size, share_server=None):
        self._resize(share, new_size)

    def shrink_share(self, share, new_size, share_server=None):
        dataset = self._dataset(share)
        used = self.zfs.get_int(dataset, "referenced")
        if used > new_size * GiB:
            raise exception.ShareShrinkingPossibleDataLoss(share_id=share["id"])
        self._resize(share, new_size)

    def _resize(self, share, new_size):
        dataset = self._dataset(share)
        specs = share_types.get_extra_specs_from_share(share)
        try:
            self.zfs.set(dataset, properties.size_properties(specs, new_size))
        except zfs_exc.SizeBelowUsage:
            raise exception.ShareShrinkingPossibleDataLoss(share_id=share["id"])
        except zfs_exc.ZFSError as e:
            raise backend_error(e)
        self.provisioned.add(self._root(share), (new_size - share["size"]) * GiB)

    def ensure_shares(self, context, shares):
        """Export locations of every share; missing datasets go to error."""
        updates = {}
        for share in shares:
            dataset = self._dataset(share)
            try:
                updates[share["id"]] = {"export_locations": self._export_locations(dataset),
                                        "status": "available",
                                        "reapply_access_rules": True}
            except (zfs_exc.DatasetNotFound, exception.ShareBackendException) as e:
                LOG.error("share %s: %s", share["id"], e)
                updates[share["id"]] = {"status": "error", "reapply_access_rules": False}
        return updates

    def get_backend_info(self, context):
        conf = self.configuration
        return {"version": self.VERSION, "roots": ",".join(sorted(self.roots.values())),
                "export_ips": ",".join(self._export_ips), "nfs_helper": conf.zfs_nfs_helper,
                "options": ",".join(conf.zfs_nfs_export_options)}

    def ensure_share(self, context, share, share_server=None):
        return self._export_locations(self._dataset(share))

    # -- access ---------------------------------------------------------------------------
    def update_access(self, context, share, access_rules, add_rules, delete_rules,
                      update_rules, share_server=None):
        return self._apply_access(share, access_rules)

    def _apply_access(self, share, access_rules):
        """Make ``access_rules`` the exports of ``share``; {access_id: error state}."""
        dataset = self._dataset(share)
        clients, errors = nfs.clients_from_rules(access_rules)
        if not self.nfs.supports_ipv6:
            for rule in access_rules:
                if rule["access_id"] not in errors:
                    client = nfs.client_from_rule(rule)
                    if client.version == 6:
                        errors[rule["access_id"]] = "IPv6 needs zfs_nfs_helper = exportfs"
                        clients.pop(client.network, None)
        for access_id, reason in errors.items():
            LOG.warning("access rule %s of share %s refused: %s", access_id, share["id"],
                        reason)
        try:
            self.nfs.apply(dataset, self.zfs.get_one(dataset, "mountpoint"), clients)
        except zfs_exc.ZFSError as e:
            raise backend_error(e)
        return {access_id: {"state": "error"} for access_id in errors}

    # -- snapshots ------------------------------------------------------------------------
    def create_snapshot(self, context, snapshot, share_server=None):
        name = self._snapshot_name(snapshot)
        try:
            self.zfs.snapshot(name)
        except zfs_exc.ZFSError as e:
            raise backend_error(e)
        return {"provider_location": name}

    def delete_snapshot(self, context, snapshot, share_server=None):
        # deferred: a snapshot that shares were cloned from goes with its last clone
        try:
            self.zfs.destroy(self._snapshot_name(snapshot), defer=True, missing_ok=True)
        except zfs_exc.ZFSError as e:
            raise backend_error(e)

    def revert_to_snapshot(self, context, snapshot, share_access_rules,
                           snapshot_access_rules, share_server=None):
        try:
            self.zfs.rollback(self._snapshot_name(snapshot))
        except zfs_exc.ZFSError as e:
            raise backend_error(e)

    def create_share_from_snapshot(self, context, share, snapshot, share_server=None,
                                   parent_share=None):
        self._check_proto(share)
        instance = snapshot.get("share_instance") or snapshot["share"]
        origin = self.peers.client(instance)
        source = self._snapshot_name(snapshot)
        dataset = self._dataset(share)
        props = self._properties(share, share["size"])
        try:
            if origin is self.zfs and source.split("/")[0] == dataset.split("/")[0]:
                self.zfs.clone(source, dataset, props)
            else:
                # another zpool, here or on a peer's ZFS host
                origin.copy_snapshot(source, self.zfs, dataset, props)
        except zfs_exc.ZFSError as e:
            raise backend_error(e)
        locations = self._locations_or_cleanup(dataset)
        self.provisioned.add(self._root(share), share["size"] * GiB)
        return {"status": "available", "export_locations": locations}

    # -- replication (readable) ------------------------------------------------------------
    def create_replica(self, context, replica_list, new_replica, access_rules,
                       replica_snapshots, share_server=None):
        try:
            return self.replicator.create_replica(replica_list, new_replica, access_rules)
        finally:
            self.provisioned.forget()

    def delete_replica(self, context, replica_list, replica_snapshots, replica,
                       share_server=None):
        try:
            self.replicator.delete_replica(replica_list, replica)
        finally:
            self.provisioned.forget()

    def update_replica_state(self, context, replica_list, replica, access_rules,
                             replica_snapshots, share_server=None):
        return self.replicator.update_replica_state(replica_list, replica, access_rules)

    def promote_replica(self, context, replica_list, replica, access_rules,
                        share_server=None, quiesce_wait_time=None):
        try:
            return self.replicator.promote_replica(replica_list, replica, access_rules)
        finally:
            self.provisioned.forget()

    def create_replicated_snapshot(self, context, replica_list, replica_snapshots,
                                   share_server=None):
        return self.replicator.create_replicated_snapshot(replica_list, replica_snapshots)

    def update_replicated_snapshot(self, context, replica_list, share_replica,
                                   replica_snapshots, replica_snapshot, share_server=None):
        return self.replicator.update_replicated_snapshot(share_replica, replica_snapshot)

    def delete_replicated_snapshot(self, context, replica_list, replica_snapshots,
                                   share_server=None):
        return self.replicator.delete_replicated_snapshot(replica_list, replica_snapshots)

    def revert_to_replicated_snapshot(self, context, active_replica, replica_list,
                                      active_replica_snapshot, replica_snapshots,
                                      share_access_rules, snapshot_access_rules,
                                      share_server=None):
        self.replicator.revert_to_replicated_snapshot(active_replica, active_replica_snapshot)

    # -- manage / unmanage ----------------------------------------------------------------
    def manage_existing(self, share, driver_options):
        """Adopt a dataset named by the share's export path (``host:/mountpoint``).

        The dataset is renamed to this backend's naming, gets a refquota of ``size``
        (driver option) or of its usage rounded up to whole GiB, and sharenfs off.
        """
        self._check_proto(share)
        path = share["export_locations"][0]["path"].rsplit(":", 1)[-1]
        dataset = self._dataset(share)
        try:
            source = self._dataset_by_mountpoint(share, path)
            used = self.zfs.get_int(source, "referenced")
        except zfs_exc.ZFSError as e:
            raise exception.ManageInvalidShare(reason=str(e))
        try:
            size = int(driver_options.get("size") or max(1, math.ceil(used / GiB)))
        except ValueError:
            raise exception.ManageInvalidShare(reason=_("size must be a whole number"))
        if size * GiB < used:
            raise exception.ManageInvalidShare(reason=_(
                "size %(size)s GiB is below the %(used)s bytes the dataset uses") % {
                    "size": size, "used": used})
        props = self._properties(share, size)
        try:
            self.zfs.unmount(source)
            self.zfs.rename(source, dataset)
            self.zfs.mount(dataset)
            self.zfs.set(dataset, props)
        except zfs_exc.ZFSError as e:
            raise exception.ManageInvalidShare(reason=str(e))
        finally:
            self.provisioned.forget(self._root(share))
        return {"size": size, "export_locations": self._export_locations(dataset)}

    def _dataset_by_mountpoint(self, share, mountpoint):
        root = self.roots[self._pool_of(share)]
        pool = root.split("/")[0]
        candidate = mountpoint.strip("/")
        try:
            zfs_client.validation.dataset(candidate)
            if (candidate.split("/")[0] == pool and self.zfs.exists(candidate)
                    and self.zfs.get_one(candidate, "mountpoint") == mountpoint):
                return candidate
        except zfs_exc.ZFSError:
            pass
        for name in self.zfs.list(pool):
            if self.zfs.get_one(name, "mountpoint") == mountpoint:
                return name
        raise exception.ManageInvalidShare(reason=_(
            "no dataset of zpool %(pool)s is mounted at %(mp)s") % {"pool": pool,
                                                                    "mp": mountpoint})

    def unmanage(self, share):
        """Leave the dataset as it is; manila forgets it."""

    def manage_existing_snapshot(self, snapshot, driver_options):
        """Adopt a snapshot named by ``provider_location`` (``dataset@name``)."""
        source = snapshot.get("provider_location") or ""
        target = self._snapshot_name(snapshot)
        if source.split("@")[0] != target.split("@")[0]:
            raise exception.ManageInvalidShareSnapshot(reason=_(
                "%(src)s is not a snapshot of this share's dataset %(ds)s") % {
                    "src": source, "ds": target.split("@")[0]})
        try:
            zfs_client.validation.snapshot(source)
            used = self.zfs.get_int(source, "referenced")
            if source != target:
                self.zfs.rename(source, target)
        except zfs_exc.ZFSError as e:
            raise exception.ManageInvalidShareSnapshot(reason=str(e))
        size = int(driver_options.get("size") or max(1, math.ceil(used / GiB)))
        return {"size": size, "provider_location": target}

    def unmanage_snapshot(self, snapshot):
        """Leave the snapshot as it is; manila forgets it."""

    # -- stats ----------------------------------------------------------------------------
    def _count_provisioned(self, root):
        quotas = self.zfs.get_tree(root, ["refquota"])
        return sum(int(v["refquota"]) for name, v in quotas.items()
                   if name != root and v["refquota"].isdigit())

    def _update_share_stats(self, data=None):
        conf = self.configuration
        pools = []
        for pool, root in sorted(self.roots.items()):
            used, avail = self.zfs.space(pool)
            provisioned_bytes = self.provisioned.total(root)
            pools.append({
                "pool_name": pool,
                "total_capacity_gb": round((used + avail) / GiB, 2),
                "free_capacity_gb": round(avail / GiB, 2),
                "provisioned_capacity_gb": round(provisioned_bytes / GiB, 2),
                "allocated_capacity_gb": round(provisioned_bytes / GiB, 2),
                "reserved_percentage": conf.reserved_share_percentage,
                "reserved_snapshot_percentage": conf.reserved_share_from_snapshot_percentage,
                "reserved_share_extend_percentage": conf.reserved_share_extend_percentage,
                "max_over_subscription_ratio": conf.max_over_subscription_ratio,
                "thin_provisioning": [True, False],
                "compression": [True, False],
                "dedupe": [True, False],
                "qos": False,
                "snapshot_support": True,
                "create_share_from_snapshot_support": True,
                "revert_to_snapshot_support": True,
                "mount_snapshot_support": False,
            })
        super()._update_share_stats({
            "share_backend_name": self.backend_name,
            "vendor_name": "OpenStack HCI drivers",
            "driver_version": self.VERSION,
            "storage_protocol": "NFS",
            "snapshot_support": True,
            "create_share_from_snapshot_support": True,
            "revert_to_snapshot_support": True,
            "replication_type": "readable" if self.replication_domain else None,
            "pools": pools,
        })

    def get_network_allocations_number(self):
        return 0
