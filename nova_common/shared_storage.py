"""Whether two hosts share ``instances_path``, found as nova's libvirt driver finds it: one
host makes a probe file, the other looks for it.

A mixin of ``BaseDriver``: nova asks before it destroys an instance evacuated from this
host (``check_instance_shared_storage_*``: on shared storage only this host's part is
removed, never the disks the instance now runs from elsewhere) and when it evacuates
onto this host (``instance_on_disk``: the disks are used as they are). The live
migration checks use the same probes.
"""
import os
import tempfile

import nova.conf
from oslo_log import log as logging

from nova_common import instance_dir

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
PROBE_PREFIX = "hci-shared-probe-"


def make_probe(directory):
    """A new probe file in ``directory``; returns its name."""
    fd, path = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=directory)
    os.close(fd)
    return os.path.basename(path)


def _probe_path(directory, name):
    """The probe ``name`` (from another host) in ``directory``; None if it is not a
    probe's name."""
    if not isinstance(name, str) or not name.startswith(PROBE_PREFIX) or "/" in name \
            or name in (".", ".."):
        return None
    return os.path.join(directory, name)


def probe_exists(directory, name):
    path = _probe_path(directory, name)
    return path is not None and os.path.exists(path)


def remove_probe(directory, name):
    path = _probe_path(directory, name)
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class SharedStorage:
    """nova's shared storage checks over the instance directories."""

    def check_instance_shared_storage_local(self, context, instance):
        idir = instance_dir.InstanceDir(instance.uuid)
        if not idir.exists():
            return None
        return {"uuid": instance.uuid, "filename": make_probe(idir.path)}

    def check_instance_shared_storage_remote(self, context, data):
        try:
            idir = instance_dir.InstanceDir(data["uuid"])
        except (KeyError, TypeError, ValueError):
            return False
        shared = probe_exists(idir.path, data.get("filename"))
        LOG.debug("instance directory %s shared with the asking host: %s", idir.path,
                  shared)
        return shared

    def check_instance_shared_storage_cleanup(self, context, data):
        try:
            remove_probe(instance_dir.InstanceDir(data["uuid"]).path, data.get("filename"))
        except (KeyError, TypeError, ValueError):
            pass

    def instance_on_disk(self, instance):
        """The instance's disks are here though it ran elsewhere: a shared
        ``instances_path`` (which needs ``[hci_guests]host_state_path``)."""
        idir = instance_dir.InstanceDir(instance.uuid)
        return idir.separate and idir.exists() and os.access(idir.path, os.W_OK)
