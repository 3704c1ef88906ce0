"""Volume or share type extra specs to ZFS properties (shared by both drivers).

A type sets ZFS properties with ``zfs:<property>`` keys, limited to the properties the
driver lists as tunable, plus the standard ``compression`` and ``dedupe`` capabilities.
"""
from oslo_utils import strutils

from zfs_common import validation

PREFIX = "zfs:"


class InvalidSpec(ValueError):
    pass


def capability(specs, key):
    """The boolean of a capability extra spec ('<is> True', 'True', 'false'), or None."""
    value = specs.get(key)
    if value is None:
        return None
    return strutils.bool_from_string(str(value).split()[-1], strict=False)


def from_extra_specs(extra_specs, tunable, defaults=None, kind="types"):
    """ZFS properties from ``extra_specs``; later sources win.

    The backend's ``defaults``, then the ``compression`` and ``dedupe`` capabilities, then
    ``zfs:<property>`` specs, each one in ``tunable`` and its value validated.
    """
    props = dict(defaults or {})
    compression = capability(extra_specs, "compression")
    if compression is False:
        props["compression"] = "off"
    elif compression and props.get("compression", "off") == "off":
        props["compression"] = "on"
    dedupe = capability(extra_specs, "dedupe")
    if dedupe is not None:
        props["dedup"] = "on" if dedupe else "off"
    for key, value in extra_specs.items():
        if not key.startswith(PREFIX):
            continue
        prop = key[len(PREFIX):]
        if prop not in tunable:
            raise InvalidSpec("extra spec %s: %s is not a property %s may set (allowed: %s)"
                              % (key, prop, kind, ", ".join(sorted(tunable))))
        try:
            props[prop] = validation.property_value(prop, value)
        except ValueError as e:
            raise InvalidSpec("extra spec %s: %s" % (key, e))
    return props
