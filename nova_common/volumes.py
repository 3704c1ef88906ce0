"""Cinder volume connections on the compute host, through os-brick.

``connect()`` turns a connection_info from cinder (``local``, ``iscsi``, ``nvmeof``, ...:
whatever protocol os-brick knows) into a block device or file path on this host, and
``disconnect()`` undoes it. The hypervisor driver then gives that path to its guest.
"""
import os
import stat

from nova import exception
from nova import utils
import nova.conf
from nova.i18n import _
from os_brick import exception as brick_exception
from os_brick.initiator import connector
from oslo_concurrency import processutils

from nova_common import privsep

CONF = nova.conf.CONF


def connector_properties():
    """What cinder needs to export a volume to this host (``get_volume_connector``)."""
    return connector.get_connector_properties(
        utils.get_root_helper(), CONF.my_block_storage_ip, False, enforce_multipath=False,
        host=CONF.host)


def _connector(connection_info):
    protocol = connection_info.get("driver_volume_type", "")
    try:
        return connector.InitiatorConnector.factory(
            protocol.upper(), utils.get_root_helper(), use_multipath=False,
            device_scan_attempts=5)
    except (ValueError, brick_exception.InvalidConnectorProtocol):
        raise exception.VolumeDriverNotFound(driver_type=protocol)


def connect(connection_info):
    """Attach the volume to this host; returns (path, device_info for ``disconnect``)."""
    data = connection_info["data"]
    try:
        device = _connector(connection_info).connect_volume(data)
    except brick_exception.BrickException as e:
        raise exception.VolumeAttachFailed(volume_id=data.get("volume_id"), reason=str(e))
    path = device.get("path")
    if not path or not os.path.exists(path):
        raise exception.VolumeAttachFailed(
            volume_id=data.get("volume_id"),
            reason=_("the connection gave no usable device (%s)") % path)
    return path, device


def disconnect(connection_info, device_info=None):
    _connector(connection_info).disconnect_volume(connection_info["data"], device_info)


def extend(connection_info, path):
    """Let the host see a volume's new size (e.g. an iSCSI rescan) and return it; None for
    a file (it grows when the hypervisor resizes it)."""
    if not is_block_device(path):
        return None
    try:
        return _connector(connection_info).extend_volume(connection_info["data"])
    except (NotImplementedError, brick_exception.BrickException):
        return None


def is_block_device(path):
    return stat.S_ISBLK(os.stat(path).st_mode)


def grant(path, uid):
    """The guest uid ``uid`` may read and write the connected volume at ``path``: a
    device ACL set by the privileged side for block devices, a file ACL (nova owns the
    file) otherwise."""
    if not uid:
        return
    if is_block_device(path):
        privsep.grant_device(path, uid)
    else:
        processutils.execute("setfacl", "-m", "u:%d:rw,m::rw" % uid, path)


def revoke(path, uid):
    """Take back what ``grant`` gave (a path that is gone already is fine)."""
    if not uid or not os.path.exists(path):
        return
    if is_block_device(path):
        privsep.revoke_device(path, uid)
    else:
        processutils.execute("setfacl", "-x", "u:%d" % uid, path)
