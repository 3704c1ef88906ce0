"""Share type extra specs to ZFS properties."""
from oslo_utils import strutils

from zfs_common import validation

# properties a share type may set as "zfs:<property>"
TUNABLE = frozenset({
    "compression", "dedup", "recordsize", "atime", "relatime", "sync", "logbias", "copies",
    "checksum", "primarycache", "secondarycache", "xattr", "acltype", "aclinherit",
    "snapdir", "special_small_blocks", "redundant_metadata", "dnodesize",
})
PREFIX = "zfs:"


class InvalidSpec(ValueError):
    pass


def _capability(specs, key):
    """The boolean of a capability extra spec ('<is> True', 'True', 'false'), or None."""
    value = specs.get(key)
    if value is None:
        return None
    return strutils.bool_from_string(str(value).split()[-1], strict=False)


def dataset_properties(extra_specs, defaults, size_gb):
    """ZFS properties for a share of ``size_gb`` of a type with ``extra_specs``.

    Later sources win: the backend's ``defaults``, the standard capabilities
    (``compression``, ``dedupe``, ``thin_provisioning``), then ``zfs:<property>`` specs.
    """
    props = dict(defaults or {})
    compression = _capability(extra_specs, "compression")
    if compression is False:
        props["compression"] = "off"
    elif compression and props.get("compression", "off") == "off":
        props["compression"] = "on"
    dedupe = _capability(extra_specs, "dedupe")
    if dedupe is not None:
        props["dedup"] = "on" if dedupe else "off"
    for key, value in extra_specs.items():
        if not key.startswith(PREFIX):
            continue
        prop = key[len(PREFIX):]
        if prop not in TUNABLE:
            raise InvalidSpec("extra spec %s: %s is not a property share types may set "
                              "(allowed: %s)" % (key, prop, ", ".join(sorted(TUNABLE))))
        try:
            props[prop] = validation.property_value(prop, value)
        except ValueError as e:
            raise InvalidSpec("extra spec %s: %s" % (key, e))
    props.update(size_properties(extra_specs, size_gb))
    return props


def size_properties(extra_specs, size_gb):
    """refquota (and refreservation for thick shares) for a size in GiB."""
    size = int(size_gb) * 1024 ** 3
    thin = _capability(extra_specs, "thin_provisioning")
    return {"refquota": size, "refreservation": size if thin is False else "none"}
