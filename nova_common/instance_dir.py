"""Per-instance directories: ``<instances_path>/<uuid>/`` (0700), files inside 0600.

The disks of an instance (its root, config drive, rescue and local disks, a suspended
guest's state) live there. Everything else a hypervisor process needs or leaves behind
(the instance record: ``nova_common.record``, sockets, pidfile, console log, keys) is
this host's and lives in the instance's host directory: the same directory, or
``<[hci_guests]host_state_path>/<uuid>/`` when that is set, as it must be where
``instances_path`` is shared between hosts (NFS), so that each host keeps its own
runtime files and lists only the instances it runs, as libvirt keeps its domain state
outside the instance directory. Destroy removes both; a restarted nova-compute
rediscovers its instances by listing the records.
"""
import os
import shutil

import nova.conf
from oslo_utils import uuidutils

from nova_common import opts

CONF = nova.conf.CONF
opts.register(CONF)
META = "instance.json"     # nova_common.record.FILE
# files every compute driver keeps in the directory
ROOT_DISK = "disk"
CONFIG_DRIVE = "disk.config"
RESCUE_DISK = "disk.rescue"
CONSOLE_LOG = "console.log"
STATE_FILE = "suspended.state"     # guest state while suspended
# names that stay with the disks (shared with another host on a shared instances_path)
_WITH_DISKS = ("disk", STATE_FILE)


def host_root():
    """Where this host's instance files are: ``host_state_path`` or ``instances_path``."""
    return CONF.hci_guests.host_state_path or CONF.instances_path


def separate_host_state():
    return bool(CONF.hci_guests.host_state_path) and os.path.realpath(
        CONF.hci_guests.host_state_path) != os.path.realpath(CONF.instances_path)


class InstanceDir:
    def __init__(self, uuid, root=None, suffix="", state_root=None):
        if not uuidutils.is_uuid_like(uuid):
            raise ValueError("not an instance UUID: %r" % (uuid,))
        self.uuid = uuid
        # a suffix names a copy kept aside (e.g. "_resize"); list_uuids() skips those
        self.path = os.path.join(root or CONF.instances_path, uuid + suffix)
        # ``root`` alone (a test looking at one tree): the host's files there too
        state_root = state_root or root or host_root()
        self.host_path = os.path.join(state_root, uuid + suffix)

    @property
    def separate(self):
        """Whether the host's files are in a directory of their own."""
        return os.path.realpath(self.host_path) != os.path.realpath(self.path)

    def file(self, name):
        if name.startswith(_WITH_DISKS):
            return os.path.join(self.path, name)
        return os.path.join(self.host_path, name)

    def exists(self):
        return os.path.isdir(self.path)

    def host_exists(self):
        return os.path.isdir(self.host_path)

    def create(self):
        for path in (self.path, self.host_path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chmod(path, 0o700)
        return self

    def create_host(self):
        """Only this host's directory (the disks are there: a shared instances_path)."""
        os.makedirs(os.path.dirname(self.host_path), exist_ok=True)
        os.makedirs(self.host_path, mode=0o700)
        return self

    def remove(self):
        shutil.rmtree(self.host_path, ignore_errors=True)
        shutil.rmtree(self.path, ignore_errors=True)

    def remove_host(self):
        """This host's files only (a shared instances_path keeps the disks)."""
        if self.separate:
            shutil.rmtree(self.host_path, ignore_errors=True)

    def rename(self, other):
        """Move both directories to those of ``other`` (an InstanceDir)."""
        if self.separate:
            os.rename(self.host_path, other.host_path)
        os.rename(self.path, other.path)


def list_uuids(root=None):
    """UUIDs of the instances with a record on this host (under ``root``: one tree)."""
    root = root or host_root()
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if uuidutils.is_uuid_like(n)
                  and os.path.exists(os.path.join(root, n, META)))
