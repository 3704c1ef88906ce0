"""Options of the ZFS share driver (in the backend's section of manila.conf)."""
from oslo_config import cfg

from zfs_common import opts as zfs_opts

zfs_share_opts = [
    cfg.ListOpt(
        "zfs_dataset_roots", required=True,
        help="Datasets under which shares are created, one per zpool, e.g. "
             "'tank/manila'. Each becomes a manila pool named after its zpool."),
    cfg.HostAddressOpt(
        "zfs_share_export_ip", required=True,
        help="IPv4 or IPv6 address clients mount shares from (the export location)."),
    cfg.HostAddressOpt(
        "zfs_admin_export_ip",
        help="Address for an admin-only export location (e.g. a storage network)."),
    cfg.StrOpt("zfs_share_name_prefix", default="share-",
               help="Prefix of share dataset names (followed by the share instance ID)."),
    cfg.StrOpt("zfs_snapshot_name_prefix", default="snapshot-",
               help="Prefix of snapshot names (followed by the snapshot's ID). Keep it the "
                    "same on every backend of a replication domain: replicated snapshots "
                    "keep their names."),
    cfg.DictOpt(
        "zfs_dataset_creation_options", default={},
        help="ZFS properties set on every new share dataset, e.g. "
             "'compression:lz4,atime:off'. Share type extra specs override them."),
    cfg.StrOpt(
        "zfs_nfs_helper", default="exportfs", choices=["exportfs", "sharenfs"],
        help="How NFS exports are made: 'exportfs' (the driver keeps a file per share in "
             "/etc/exports.d and changes the kernel export table client by client; IPv4 "
             "and IPv6) or 'sharenfs' (the dataset's sharenfs property, one atomic update "
             "per share; IPv4 only, since ZFS's sharenfs parser splits IPv6 addresses)."),
    cfg.ListOpt(
        "zfs_nfs_export_options", default=["sync", "no_subtree_check", "sec=sys"],
        help="NFS export options added to every client's rw/ro and root_squash."),
    cfg.IntOpt(
        "zfs_provisioned_recount_interval", default=600, min=0,
        help="Seconds between full recounts of the provisioned capacity (the sum of all "
             "shares' refquotas) reported to the scheduler. In between, the driver keeps "
             "the sum up to date from its own operations, so a stats update costs the "
             "same with 10 or 10,000 shares; the recount picks up changes made outside "
             "manila. 0 recounts at every stats update."),
    cfg.StrOpt("zfs_replica_snapshot_prefix", default="replica-",
               help="Prefix of the snapshots that carry replication updates."),
]


def list_opts():
    return [("DEFAULT", zfs_share_opts + zfs_opts.zfs_host_opts)]
