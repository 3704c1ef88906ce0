"""Checks for every name and value before it reaches a zfs/zpool command line.

Stricter than ZFS itself on purpose: no spaces, nothing that starts with ``-`` (it would
read as an option), no shell or SSH metacharacters, bounded lengths.
"""
import re

from zfs_common import exception

MAX_NAME = 255           # ZFS_MAX_DATASET_NAME_LEN - 1
MAX_USER_VALUE = 8191    # ZAP_MAXVALUELEN for user properties, less the NUL

_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_POOL = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")
_RESERVED_POOL_PREFIXES = ("mirror", "raidz", "draid", "spare")
_RESERVED_POOLS = ("log", "cache", "special", "dedup")
_NATIVE_PROP = re.compile(r"^[a-z][a-z0-9_@]*$")
_USER_PROP = re.compile(r"^[a-z0-9_.-]+:[a-z0-9_.:-]+$")
_VALUE = re.compile(r"^[^\x00-\x1f\x7f]*$")
# native values are words, numbers, paths and option lists: no spaces or punctuation
_NATIVE_VALUE = re.compile(r"^[A-Za-z0-9_.,:/@+=-]*$")
_OPTION_VALUED = ("sharenfs", "sharesmb")


def _fail(cls, what, value, why):
    raise cls("invalid %s %r: %s" % (what, value, why))


def pool(name):
    """A pool name; returns it."""
    if not isinstance(name, str) or not _POOL.match(name) or len(name) > MAX_NAME:
        _fail(exception.InvalidName, "pool name", name,
              "letters, digits, '_', '-', '.', ':' only, starting with a letter")
    if (name.startswith(_RESERVED_POOL_PREFIXES) or name in _RESERVED_POOLS
            or re.match(r"^c[0-9]", name)):
        _fail(exception.InvalidName, "pool name", name, "reserved by ZFS")
    return name


def dataset(name):
    """A filesystem or volume name ``pool/a/b``; returns it."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        _fail(exception.InvalidName, "dataset name", name, "empty or too long")
    parts = name.split("/")
    pool(parts[0])
    for part in parts[1:]:
        if not _COMPONENT.match(part):
            _fail(exception.InvalidName, "dataset name", name,
                  "each component is letters, digits, '_', '-', '.', ':' only")
    return name


def snapshot_name(name):
    """The part after ``@`` of a snapshot; returns it."""
    if not isinstance(name, str) or not _COMPONENT.match(name) or len(name) > MAX_NAME:
        _fail(exception.InvalidName, "snapshot name", name,
              "letters, digits, '_', '-', '.', ':' only")
    return name


def snapshot(name):
    """A full snapshot name ``pool/a@snap``; returns it."""
    if not isinstance(name, str) or name.count("@") != 1 or len(name) > MAX_NAME:
        _fail(exception.InvalidName, "snapshot", name, "expected dataset@snapshot")
    ds, snap = name.split("@")
    dataset(ds)
    snapshot_name(snap)
    return name


def dataset_or_snapshot(name):
    return snapshot(name) if isinstance(name, str) and "@" in name else dataset(name)


def property_name(name):
    """A native (``compression``) or user (``org.openstack:id``) property name."""
    if not isinstance(name, str) or len(name) > 256 or not (
            _NATIVE_PROP.match(name) or _USER_PROP.match(name)):
        _fail(exception.InvalidValue, "property name", name,
              "lowercase native name or module:name user property")
    return name


def property_value(name, value):
    """A property value as the command line will carry it; returns it as a string."""
    if isinstance(value, bool):
        value = "on" if value else "off"
    value = str(value)
    if len(value) > MAX_USER_VALUE or not _VALUE.match(value) or value.startswith("-"):
        _fail(exception.InvalidValue, "value for %s" % name, value,
              "no control characters, no leading '-', at most %d characters"
              % MAX_USER_VALUE)
    if ":" not in name and not _NATIVE_VALUE.match(value):
        _fail(exception.InvalidValue, "value for %s" % name, value,
              "native values are letters, digits and _ . , : / @ + = - only")
    if "=" in value and ":" not in name and name not in _OPTION_VALUED:
        # native values never contain '='; share options do (rw=..., sec=...)
        _fail(exception.InvalidValue, "value for %s" % name, value, "'=' not allowed")
    return value


def properties(props):
    """``-o name=value`` arguments for a dict of properties, every one checked."""
    args = []
    for name, value in sorted((props or {}).items()):
        args += ["-o", "%s=%s" % (property_name(name), property_value(name, value))]
    return args
