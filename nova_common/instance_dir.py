"""Per-instance directories: ``<instances_path>/<uuid>/`` (0700), files inside 0600.

Everything a hypervisor process needs or leaves behind (disks, sockets, console log,
pidfile, launch metadata) lives there, so destroy removes one directory and a restarted
nova-compute rediscovers instances by listing them.
"""
import json
import os
import shutil

import nova.conf
from oslo_utils import uuidutils

CONF = nova.conf.CONF
META = "instance.json"


class InstanceDir:
    def __init__(self, uuid, root=None, suffix=""):
        if not uuidutils.is_uuid_like(uuid):
            raise ValueError("not an instance UUID: %r" % (uuid,))
        self.uuid = uuid
        # a suffix names a copy kept aside (e.g. "_resize"); list_uuids() skips those
        self.path = os.path.join(root or CONF.instances_path, uuid + suffix)

    def file(self, name):
        return os.path.join(self.path, name)

    def exists(self):
        return os.path.isdir(self.path)

    def create(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        os.chmod(self.path, 0o700)
        return self

    def write_meta(self, data):
        tmp = self.file(META + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.rename(tmp, self.file(META))

    def read_meta(self):
        try:
            with open(self.file(META)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def list_uuids(root=None):
    """UUIDs of the instance directories under ``root`` that hold launch metadata."""
    root = root or CONF.instances_path
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if uuidutils.is_uuid_like(n)
                  and os.path.exists(os.path.join(root, n, META)))
