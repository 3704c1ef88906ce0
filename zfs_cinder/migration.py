"""Driver-assisted migration of a volume to another ZFS backend, on this ZFS host or
another one.

Every pool reports a ``location_info`` naming how to reach its ZFS host and its root
dataset: ``ZFSVolumeDriver:ssh://<address>:<port>/<root>`` for a ZFS host reached over
SSH (the backend's ``zfs_ssh_host``, or for a local ZFS host its ``zfs_peer_ssh_host``,
the address other hosts use), ``ZFSVolumeDriver:local://<cinder host>/<root>`` for a
local ZFS host that no other host reaches. The source backend moves an available volume
there: within one zpool of one ZFS host by ``zfs rename`` (nothing copied), else by
``zfs send`` of a snapshot into ``zfs receive`` on the destination, with its own SSH
credentials for the destination host. Anything else (an attached volume, another driver,
an unreachable location) returns False and cinder copies the volume itself.
"""
import dataclasses
import urllib.parse
import uuid

from cinder import exception
from cinder.i18n import _
from oslo_config import cfg
from oslo_log import log as logging

from zfs_common import client as zfs_client
from zfs_common import exception as zfs_exc
from zfs_common import validation

CONF = cfg.CONF
LOG = logging.getLogger(__name__)
PREFIX = "ZFSVolumeDriver:"
SNAPSHOT_PREFIX = "migrate-"
GiB = 1024 ** 3


@dataclasses.dataclass(frozen=True)
class Location:
    scheme: str              # "ssh" or "local"
    address: str             # SSH address, or the cinder host of a local ZFS host
    port: int
    root: str

    def same_zfs_host(self, other):
        return (self.scheme, self.address, self.port) == (other.scheme, other.address,
                                                          other.port)


def _url_host(address):
    return "[%s]" % address if ":" in address else address


def own_location(conf, root):
    """This backend's location of pool root ``root``."""
    address = conf.zfs_ssh_host or conf.zfs_peer_ssh_host
    if address:
        return Location("ssh", address, int(conf.zfs_ssh_port), root)
    return Location("local", CONF.host, 0, root)


def location_info(location):
    if location.scheme == "ssh":
        return "%sssh://%s:%d/%s" % (PREFIX, _url_host(location.address), location.port,
                                     location.root)
    return "%slocal://%s/%s" % (PREFIX, location.address, location.root)


def parse(info):
    """The Location in a pool's ``location_info``; None when it is not one of ours."""
    if not isinstance(info, str) or not info.startswith(PREFIX):
        return None
    try:
        url = urllib.parse.urlsplit(info[len(PREFIX):])
        root = validation.dataset(url.path.lstrip("/"))
        if url.scheme == "ssh":
            return Location("ssh", url.hostname, url.port or 22, root)
        if url.scheme == "local" and url.netloc:
            return Location("local", url.netloc, 0, root)
    except (ValueError, zfs_exc.InvalidName):
        pass
    return None


def _client_for(drv, here, there):
    """The ZFS client reaching ``there`` from this backend; None if none can."""
    if here.same_zfs_host(there):
        return drv.zfs
    if there.scheme == "local":
        if there.address == CONF.host and here.scheme == "local":
            return drv.zfs          # another backend of this cinder host's local ZFS
        return None
    return zfs_client.ZFSClient.over_ssh(drv.configuration, there.address, there.port)


def migrate(drv, volume, host, props, sparse):
    """Move available ``volume`` to the pool ``host`` describes. (moved, model update).

    ``props``: the ZFS properties the volume's type sets (set again on the destination);
    ``sparse``: whether it is thin (a thick one gets its refreservation back there).
    """
    refuse = (False, None)
    if volume.status not in ("available", "retyping") or volume.volume_attachment:
        return refuse
    there = parse((host.get("capabilities") or {}).get("location_info"))
    if there is None:
        return refuse
    src_root = drv._root(volume)
    here = own_location(drv.configuration, src_root)
    source = "%s/%s" % (src_root, volume.name)
    target = "%s/%s" % (there.root, volume.name)
    if here.same_zfs_host(there) and src_root == there.root:
        raise exception.VolumeBackendAPIException(data=_(
            "volume %(id)s is already in %(root)s on this ZFS host") % {
                "id": volume.id, "root": src_root})
    dest = _client_for(drv, here, there)
    if dest is None:
        LOG.info("volume %s: %s is not reachable from this backend; cinder copies it",
                 volume.id, location_info(there))
        return refuse
    try:
        if dest is drv.zfs and source.split("/")[0] == target.split("/")[0]:
            drv.zfs.rename(source, target)
            LOG.info("volume %s renamed to %s (same zpool)", volume.id, target)
            return True, None
        _send(drv, dest, source, target, props, sparse)
        LOG.info("volume %s sent to %s", volume.id, location_info(there))
    finally:
        if dest is not drv.zfs:
            dest.close()
    drv.zfs.retire(source)
    return True, None


def _send(drv, dest, source, target, props, sparse):
    """``source`` streamed into ``target`` on ``dest``; on failure nothing of it stays
    there and the source is untouched."""
    snap = "%s@%s%s" % (source, SNAPSHOT_PREFIX, uuid.uuid4().hex[:12])
    if dest.exists(target):
        raise exception.VolumeBackendAPIException(data=_(
            "%s already exists on the destination ZFS host") % target)
    changes = dict(props)
    if not sparse:
        changes["refreservation"] = "auto"
    drv.zfs.snapshot(snap)
    try:
        drv.zfs.copy_snapshot(snap, dest, target, changes)
    finally:
        drv.zfs.destroy(snap, missing_ok=True)
