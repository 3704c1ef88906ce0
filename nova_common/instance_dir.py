"""Per-instance directories: ``<instances_path>/<uuid>/`` (0700), files inside 0600.

Everything a hypervisor process needs or leaves behind (disks, sockets, console log,
pidfile, the instance record: ``nova_common.record``) lives there, so destroy removes one
directory and a restarted nova-compute rediscovers instances by listing them.
"""
import os
import shutil

import nova.conf
from oslo_utils import uuidutils

CONF = nova.conf.CONF
META = "instance.json"     # nova_common.record.FILE
# files every compute driver keeps in the directory
ROOT_DISK = "disk"
CONFIG_DRIVE = "disk.config"
RESCUE_DISK = "disk.rescue"
CONSOLE_LOG = "console.log"
STATE_FILE = "suspended.state"     # guest state while suspended


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
