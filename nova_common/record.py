"""The versioned instance record: ``<instance dir>/instance.json``.

One typed model of what the compute driver keeps about an instance between nova-compute
restarts: its name and size, the hypervisor's launch spec (hypervisor-specific data, built
once at spawn), the interfaces and volumes plugged on this host, the console endpoints,
and whether it is rescued. Writes are atomic and durable (temporary file, fsync, rename,
fsync of the directory). Records of the first, unversioned format are migrated on read.
"""
import dataclasses
import json
import os

SCHEMA_VERSION = 2
FILE = "instance.json"


class CorruptRecord(Exception):
    """The record of one instance cannot be read; the message says why."""

    def __init__(self, path, reason):
        super().__init__("instance record %s is unusable: %s" % (path, reason))
        self.path = path
        self.reason = reason


@dataclasses.dataclass
class Record:
    name: str
    vcpus: int
    memory_mb: int
    spec: dict                                   # the hypervisor's launch spec
    vifs: dict = dataclasses.field(default_factory=dict)      # port id -> plug data
    volumes: dict = dataclasses.field(default_factory=dict)   # volume id -> connection
    consoles: dict = dataclasses.field(default_factory=dict)  # kind -> TCP port
    rescued: bool = False
    uid: int = 0                   # the guest process's uid (0: not confined yet)
    version: int = SCHEMA_VERSION

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data, path, upgrade=None):
        if not isinstance(data, dict):
            raise CorruptRecord(path, "not a JSON object")
        version = data.get("version", 1)
        if version == 1:
            if upgrade is None:
                raise CorruptRecord(path, "a version 1 record and no migration")
            data = upgrade(dict(data))
        elif version != SCHEMA_VERSION:
            raise CorruptRecord(path, "schema version %r is not %d (written by a newer "
                                "driver?)" % (version, SCHEMA_VERSION))
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            record = cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as e:
            raise CorruptRecord(path, "missing fields (%s)" % e)
        for field, kind in (("name", str), ("vcpus", int), ("memory_mb", int),
                            ("spec", dict), ("vifs", dict), ("volumes", dict),
                            ("consoles", dict), ("rescued", bool), ("uid", int)):
            if not isinstance(getattr(record, field), kind):
                raise CorruptRecord(path, "%s is not a %s" % (field, kind.__name__))
        return record


def read(directory, upgrade=None):
    """The record in ``directory``; None if there is none; ``CorruptRecord`` if it cannot
    be used. ``upgrade(dict) -> dict`` turns a version 1 record into version 2 fields."""
    path = os.path.join(directory, FILE)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise CorruptRecord(path, "not JSON (%s; %d bytes)" % (e, len(raw)))
    return Record.from_json(data, path, upgrade)


def write(directory, record):
    """Atomically replace the record in ``directory`` (0600), durably."""
    path = os.path.join(directory, FILE)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record.to_json(), f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
