"""Where a share instance of another backend lives: its ZFS host and its dataset.

Replication and shares from snapshots reach the backends of other share instances. As
with manila's in-tree ZFS driver, every backend of a replication domain has a section of
its own name in each manila-share host's configuration (backend names are unique in the
domain); this driver reads the peer's ``zfs_dataset_roots`` and name prefixes from it and
reaches the peer's ZFS host by:

- the peer's ``zfs_ssh_host`` when its ZFS host is remote to its own service (any host
  with the key reaches it the same way);
- else, when the peer is enabled on this manila-share host too (a second local backend),
  the local executor;
- else the peer's ``zfs_peer_ssh_host``: the address other hosts use to reach a ZFS host
  that is local to its own service, with the peer section's ``zfs_ssh_*`` credentials.

A peer that none of these reaches is refused with a ``ShareBackendException`` naming the
option, never taken for this host's own ZFS.
"""
from manila import exception
from manila.i18n import _
from manila.share import configuration
from manila.share import driver as share_driver
from manila.share import utils as share_utils
from oslo_config import cfg

from zfs_common import client as zfs_client
from zfs_common import opts as zfs_opts
from zfs_manila import opts

CONF = cfg.CONF


class Peer:
    """One peer backend: its ZFS client and how it names datasets."""

    def __init__(self, client, conf):
        self.client = client
        self.roots = {r.strip().split("/")[0]: r.strip().rstrip("/")
                      for r in conf.zfs_dataset_roots}
        self.share_prefix = conf.zfs_share_name_prefix

    def dataset(self, instance):
        pool = share_utils.extract_host(instance["host"], level="pool")
        if pool not in self.roots:
            raise exception.ShareBackendException(msg=_(
                "share instance %(id)s is on pool %(pool)s, which its backend's "
                "zfs_dataset_roots do not name") % {"id": instance["id"], "pool": pool})
        return "%s/%s%s" % (self.roots[pool], self.share_prefix, instance["id"])


def peer_client(backend, conf):
    """The ZFS client reaching peer ``backend`` from this host (see the module doc)."""
    if conf.zfs_ssh_host:
        return zfs_client.ZFSClient.from_config(conf)
    if backend in (CONF.enabled_share_backends or []):
        return zfs_client.ZFSClient.from_config(conf)      # local here too
    if conf.zfs_peer_ssh_host:
        return zfs_client.ZFSClient.over_ssh(conf, conf.zfs_peer_ssh_host)
    raise exception.ShareBackendException(msg=_(
        "backend %s has its ZFS on its own manila-share host and is not enabled here: set "
        "zfs_peer_ssh_host in its section so that this host can reach it") % backend)


class Peers:
    """The peer backends a driver instance reaches, built once each."""

    def __init__(self, drv):
        self.drv = drv
        self._peers = {}

    def _own(self, instance):
        backend = share_utils.extract_host(instance["host"], level="backend_name")
        return backend is None or backend == self.drv.configuration.config_group, backend

    def _peer(self, backend):
        if backend not in self._peers:
            conf = configuration.Configuration(share_driver.share_opts, config_group=backend)
            conf.append_config_values(opts.zfs_share_opts)
            conf.append_config_values(zfs_opts.zfs_host_opts)
            try:
                roots = conf.zfs_dataset_roots
            except cfg.Error as e:
                raise exception.ShareBackendException(msg=_(
                    "backend %(b)s is not configured on this host: %(e)s")
                    % {"b": backend, "e": e})
            if not roots:
                raise exception.ShareBackendException(msg=_(
                    "backend %s is not configured on this host (no zfs_dataset_roots in "
                    "its section)") % backend)
            self._peers[backend] = Peer(peer_client(backend, conf), conf)
        return self._peers[backend]

    def client(self, instance):
        """The ZFS client of the backend hosting ``instance`` (this one or a peer)."""
        own, backend = self._own(instance)
        return self.drv.zfs if own else self._peer(backend).client

    def dataset(self, instance):
        """The dataset of share instance ``instance`` on its own backend."""
        own, backend = self._own(instance)
        return self.drv._dataset(instance) if own else self._peer(backend).dataset(instance)

    def close(self):
        for peer in self._peers.values():
            peer.client.close()
        self._peers.clear()
