"""Share type extra specs to ZFS properties."""
from zfs_common.properties import InvalidSpec  # noqa: F401  (the drivers catch it here)
from zfs_common.properties import capability
from zfs_common.properties import from_extra_specs

# properties a share type may set as "zfs:<property>"
TUNABLE = frozenset({
    "compression", "dedup", "recordsize", "atime", "relatime", "sync", "logbias", "copies",
    "checksum", "primarycache", "secondarycache", "xattr", "acltype", "aclinherit",
    "snapdir", "special_small_blocks", "redundant_metadata", "dnodesize",
})


def dataset_properties(extra_specs, defaults, size_gb):
    """ZFS properties for a share of ``size_gb`` of a type with ``extra_specs``.

    The backend's ``defaults``, the standard capabilities (``compression``, ``dedupe``,
    ``thin_provisioning``), then ``zfs:<property>`` specs.
    """
    props = from_extra_specs(extra_specs, TUNABLE, defaults, kind="share types")
    props.update(size_properties(extra_specs, size_gb))
    return props


def size_properties(extra_specs, size_gb):
    """refquota (and refreservation for thick shares) for a size in GiB."""
    size = int(size_gb) * 1024 ** 3
    thin = capability(extra_specs, "thin_provisioning")
    return {"refquota": size, "refreservation": size if thin is False else "none"}
