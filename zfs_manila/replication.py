"""Readable replication of shares: ``zfs send | zfs receive`` between replicas.

Each replica is a dataset named by its own instance ID on its own backend (possibly
another ZFS host). Every sync takes a snapshot ``<prefix><replica id>-<time>`` on the
active replica and sends it incrementally (with the snapshots in between, so manila's
snapshots travel too) from the last one both sides hold; older sync snapshots are pruned
on both sides. Replicas are read-only datasets exported read-only.
"""
import datetime

from manila import exception
from manila.i18n import _
from oslo_log import log as logging

from zfs_common import exception as zfs_exc
from zfs_manila import nfs

LOG = logging.getLogger(__name__)
ACTIVE = "active"
IN_SYNC = "in_sync"
OUT_OF_SYNC = "out_of_sync"


def active_replica(replica_list):
    for replica in replica_list:
        if replica["replica_state"] == ACTIVE:
            return replica
    raise exception.ReplicationException(reason=_("no active replica in %s")
                                         % [r["id"] for r in replica_list])


def read_only(rules):
    return [dict(rule, access_level="ro") for rule in rules]


class Replicator:
    """The replication half of the share driver, for a driver instance."""

    def __init__(self, drv):
        self.drv = drv
        self.prefix = drv.configuration.zfs_replica_snapshot_prefix

    # -- where each replica lives -------------------------------------------------------
    def client_for(self, replica):
        """The ZFS client of the backend hosting ``replica`` (this one or a peer)."""
        return self.drv.peers.client(replica)

    def dataset_for(self, replica):
        return self.drv.peers.dataset(replica)

    # -- sync -----------------------------------------------------------------------------
    def _tag(self, replica):
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%f")
        return "%s%s-%s" % (self.prefix, replica["id"], stamp)

    def _own_tags(self, snapshots, replica):
        mark = "@%s%s-" % (self.prefix, replica["id"])
        return [s for s in snapshots if mark in s]

    def sync(self, active, replica, tag_owner=None):
        """Bring ``replica`` (on this backend) up to date with ``active``.

        The new sync snapshot is named for ``replica``, or for ``tag_owner`` when a
        promotion hands the common base over to the old active replica.
        """
        src, src_ds = self.client_for(active), self.dataset_for(active)
        dst, dst_ds = self.drv.zfs, self.drv._dataset(replica)
        tag = "%s@%s" % (src_ds, self._tag(tag_owner or replica))
        src.snapshot(tag)
        src_snaps = src.snapshots(src_ds)
        dst_snaps = dst.snapshots(dst_ds) if dst.exists(dst_ds) else []
        common = [s for s in self._own_tags(dst_snaps, replica)
                  if "%s@%s" % (src_ds, s.split("@")[1]) in src_snaps]
        if common:
            base = "%s@%s" % (src_ds, common[-1].split("@")[1])
            src.send(tag, dst, dst_ds, base=base, force=True, intermediates=True)
        else:
            # first sync, or the active replica changed under us: seed from scratch
            if dst.exists(dst_ds):
                dst.retire(dst_ds)
            first = src_snaps[0]
            src.send(first, dst, dst_ds)
            if first != tag:
                src.send(tag, dst, dst_ds, base=first, force=True, intermediates=True)
        self._prune(src, src_ds, replica, keep=tag)
        # sync snapshots named for the active replica itself date from its time as a
        # replica (a promotion without a last sync keeps them): no sync needs them now
        # (but the one just taken, when a promotion names it for the old active)
        self._prune(src, src_ds, active, keep=tag)
        self._prune_replica(dst, dst_ds, keep=tag.split("@")[1])
        return tag

    def _prune(self, client, dataset, replica, keep):
        for snap in self._own_tags(client.snapshots(dataset), replica):
            if snap != keep:
                client.destroy(snap, defer=True, missing_ok=True)

    def _prune_replica(self, client, dataset, keep):
        """On a replica every sync snapshot but the latest one it got can go."""
        for snap in client.snapshots(dataset):
            name = snap.split("@")[1]
            if name.startswith(self.prefix) and name != keep:
                client.destroy(snap, defer=True, missing_ok=True)

    def _finish_replica(self, replica, access_rules):
        dataset = self.drv._dataset(replica)
        props = {"readonly": "on", "sharenfs": "off",
                 **nfs_state_reset(), **self.drv._size_props(replica)}
        props[self.drv.share_id_property] = replica["id"]
        self.drv.zfs.set(dataset, props)
        self.drv._apply_access(replica, read_only(access_rules))
        return self.drv._export_locations(dataset)

    # -- the driver interface -------------------------------------------------------------
    def create_replica(self, replica_list, new_replica, access_rules):
        active = active_replica(replica_list)
        try:
            self.sync(active, new_replica)
            locations = self._finish_replica(new_replica, access_rules)
        except zfs_exc.ZFSError as e:
            self.drv.zfs.destroy(self.drv._dataset(new_replica), recursive=True,
                                 missing_ok=True)
            raise exception.ReplicationException(reason=str(e))
        return {"export_locations": locations, "replica_state": IN_SYNC,
                "access_rules_status": "active"}

    def delete_replica(self, replica_list, replica):
        dataset = self.drv._dataset(replica)
        if self.drv.zfs.exists(dataset):
            self.drv.nfs.remove(dataset, self.drv.zfs.get_one(dataset, "mountpoint"))
            self.drv.zfs.retire(dataset)
        try:
            active = active_replica(replica_list)
            self._prune(self.client_for(active), self.dataset_for(active), replica, keep=None)
        except (exception.ReplicationException, zfs_exc.ZFSError) as e:
            LOG.warning("sync snapshots of replica %s stay on the active replica: %s",
                        replica["id"], e)

    def update_replica_state(self, replica_list, replica, access_rules):
        if replica["replica_state"] == ACTIVE:
            return None
        try:
            self.sync(active_replica(replica_list), replica)
            self.drv.zfs.set(self.drv._dataset(replica), {"readonly": "on"})
        except (zfs_exc.ZFSError, exception.ReplicationException) as e:
            LOG.warning("replica %s is out of sync: %s", replica["id"], e)
            return OUT_OF_SYNC
        return IN_SYNC

    def promote_replica(self, replica_list, replica, access_rules):
        old = active_replica(replica_list)
        dataset = self.drv._dataset(replica)
        try:
            # a last sync, tagged for the old active so that it follows incrementally
            self.sync(old, replica, tag_owner=old)
            self.client_for(old).set(self.dataset_for(old), {"readonly": "on"})
        except (zfs_exc.ZFSError, exception.ShareBackendException) as e:
            LOG.warning("old active replica %s unreachable, promoting %s without a last "
                        "sync: %s", old["id"], replica["id"], e)
        self.drv.zfs.set(dataset, {"readonly": "off"})
        self.drv._apply_access(replica, access_rules)
        updates = []
        for r in replica_list:
            if r["id"] == replica["id"]:
                updates.append({"id": r["id"], "replica_state": ACTIVE,
                                "access_rules_status": "active",
                                "export_locations": self.drv._export_locations(dataset)})
            elif r["id"] == old["id"]:
                updates.append({"id": r["id"], "replica_state": IN_SYNC,
                                "access_rules_status": "out_of_sync"})
            else:
                updates.append({"id": r["id"], "replica_state": OUT_OF_SYNC})
        return updates

    # -- snapshots of replicated shares ---------------------------------------------------
    def create_replicated_snapshot(self, replica_list, replica_snapshots):
        active = active_replica(replica_list)
        updates = []
        for snap in replica_snapshots:
            if snap["share_instance_id"] == active["id"]:
                name = self.drv._snapshot_name(snap, instance=active)
                self.client_for(active).snapshot(name)
                updates.append({"id": snap["id"], "status": "available",
                                "provider_location": name})
            else:   # arrives with the replica's next sync
                updates.append({"id": snap["id"], "status": "creating"})
        return updates

    def update_replicated_snapshot(self, replica, replica_snapshot):
        name = self.drv._snapshot_name(replica_snapshot, instance=replica)
        exists = self.drv.zfs.exists(name)
        if replica_snapshot["status"] == "deleting":
            if exists:
                self.drv.zfs.destroy(name, defer=True)
            raise exception.SnapshotResourceNotFound(name=name)
        return {"status": "available", "provider_location": name} if exists else None

    def delete_replicated_snapshot(self, replica_list, replica_snapshots):
        updates = []
        replicas = {r["id"]: r for r in replica_list}
        for snap in replica_snapshots:
            replica = replicas[snap["share_instance_id"]]
            try:
                name = self.drv._snapshot_name(snap, instance=replica)
                self.client_for(replica).destroy(name, defer=True, missing_ok=True)
                updates.append({"id": snap["id"], "status": "deleted"})
            except zfs_exc.ZFSError as e:
                LOG.warning("snapshot %s of replica %s: %s", snap["id"], replica["id"], e)
                updates.append({"id": snap["id"], "status": "deleting"})
        return updates

    def revert_to_replicated_snapshot(self, active, active_snapshot):
        # sync snapshots newer than the target go too; replicas re-seed on their next sync
        self.client_for(active).rollback(self.drv._snapshot_name(active_snapshot,
                                                                 instance=active),
                                         destroy_newer=True)


def nfs_state_reset():
    """A replica must not inherit the active replica's record of exported clients."""
    return {nfs.STATE_PROPERTY: "{}"}
