"""Options of the ZFS volume driver (in the backend's section of cinder.conf)."""
from oslo_config import cfg

from zfs_common import opts as zfs_opts

zfs_volume_opts = [
    cfg.StrOpt(
        "zfs_volume_root",
        help="Dataset under which volumes are created as zvols, e.g. 'tank/cinder': "
             "one pool, named after the backend (this or zfs_volume_roots is required). "
             "It is created (with its parents) if its zpool exists."),
    cfg.ListOpt(
        "zfs_volume_roots", default=[],
        help="Instead of zfs_volume_root: datasets under which volumes are created, one "
             "per zpool, e.g. 'tank/cinder,fast/cinder'. Each is a pool of this backend, "
             "named after its zpool, with its own capacity (created like "
             "zfs_volume_root)."),
    cfg.BoolOpt(
        "zfs_sparse_volumes", default=True,
        help="Create volumes sparse (no reservation; thin provisioning) unless the volume "
             "type asks for thick ones ('provisioning:type=thick'). False makes thick the "
             "default."),
    cfg.DictOpt(
        "zfs_volume_properties", default={},
        help="ZFS properties set on every new zvol, e.g. 'compression:lz4,volblocksize:16K'. "
             "Volume type extra specs 'zfs:<property>' override them."),
    cfg.BoolOpt(
        "zfs_local_attach", default=True,
        help="Attach volumes to a connector on the ZFS host itself with a 'local' "
             "connection (the /dev/zvol device) instead of exporting them."),
    cfg.ListOpt(
        "zfs_local_attach_hosts", default=[],
        help="Connector host names that run on the ZFS host and get local connections. "
             "Empty: with a local ZFS host, this service's 'host' and this machine's "
             "host name; with an SSH ZFS host, none."),
    cfg.FloatOpt(
        "zfs_zvol_wait_timeout", default=15.0, min=0,
        help="Seconds to wait for a zvol's /dev/zvol link (udev creates it after the zvol) "
             "before attaching or exporting it."),
]


def list_opts():
    return [("DEFAULT", zfs_volume_opts + zfs_opts.zfs_host_opts)]
