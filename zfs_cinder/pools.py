"""The pools of a ZFS volume backend: one per configured root dataset.

``zfs_volume_roots`` names one dataset per zpool; each is a cinder pool named after its
zpool, with its own capacity. The single ``zfs_volume_root`` of earlier releases stays
one pool named after the backend, as before, so existing volumes keep their host.
Capacity comes from one ``zfs get used,available`` over every root and its zpool: no
listing of the volumes, so a stats update costs the same with 10 or 500 of them (the
provisioned total is cinder's own ``allocated_capacity_gb``, which the scheduler uses
when a driver reports none).
"""
from cinder import exception
from cinder.i18n import _
from cinder.volume import volume_utils

from zfs_common import exception as zfs_exc
from zfs_common import validation

GiB = 1024 ** 3


def roots_from_config(conf, backend_name):
    """``{pool name: root dataset}``; InvalidConfigurationValue for a bad setting."""
    single = (conf.zfs_volume_root or "").strip().rstrip("/")
    several = [r.strip().rstrip("/") for r in conf.zfs_volume_roots or [] if r.strip()]
    if bool(single) == bool(several):
        raise exception.InvalidConfigurationValue(_(
            "set either zfs_volume_root (one pool named %s) or zfs_volume_roots (one "
            "pool per zpool), not both or neither") % backend_name)
    option, roots = ("zfs_volume_root", [single]) if single else ("zfs_volume_roots",
                                                                   several)
    pools = {}
    for root in roots:
        try:
            validation.dataset(root)
        except zfs_exc.InvalidName as e:
            raise exception.InvalidConfigurationValue(option=option, value=root) from e
        zpool = root.split("/")[0]
        if zpool in {r.split("/")[0] for r in pools.values()}:
            raise exception.InvalidConfigurationValue(_(
                "zfs_volume_roots names two datasets in zpool %s; use one per zpool")
                % zpool)
        pools[backend_name if single else zpool] = root
    return pools


def pool_of(volume):
    return volume_utils.extract_host(volume.host, "pool") if volume.host else None


def capacities(zfs, roots):
    """``{root: (total bytes of its zpool, bytes available to it)}`` in one command."""
    zpools = sorted({root.split("/")[0] for root in roots})
    values = zfs.get(zpools + sorted(set(roots) - set(zpools)), ["used", "available"])
    result = {}
    for root in roots:
        zpool = values[root.split("/")[0]]
        result[root] = (int(zpool["used"]) + int(zpool["available"]),
                        int(values[root]["available"]))
    return result
