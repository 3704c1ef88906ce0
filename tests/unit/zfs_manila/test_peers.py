"""How the share driver reaches the backends of other share instances."""
import functools
from unittest import mock

from manila import exception
from manila.share import configuration
from manila.share import driver as share_driver
from manila.share import manager  # noqa: F401 - registers manila's own options
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from tests.unit.zfs_common.fakes import RecordingExecutor
from zfs_common import client as zfs_client
from zfs_common import executor as executor_mod
from zfs_common import opts as zfs_opts
from zfs_manila import driver
from zfs_manila import opts

OWN = "zfs_here"


def instance(backend, pool="tank", host="hostb", instance_id="i1"):
    return {"id": instance_id, "host": "%s@%s#%s" % (host, backend, pool)}


class TestPeers(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(config_fixture.Config(cfg.CONF))
        self.section(OWN, zfs_dataset_roots=["tank/manila"])
        self.conf.config(enabled_share_backends=[OWN])
        self.drv = driver.ZFSShareDriver(configuration=configuration.Configuration(
            share_driver.share_opts, config_group=OWN))
        with mock.patch.object(zfs_client.ZFSClient, "from_config",
                               return_value=zfs_client.ZFSClient(RecordingExecutor())):
            self.drv.do_setup(None)

    def section(self, group, **options):
        self.conf.register_opts(share_driver.share_opts + opts.zfs_share_opts
                                + zfs_opts.zfs_host_opts, group=group)
        self.conf.config(group=group, driver_handles_share_servers=False,
                         zfs_share_export_ip="192.0.2.1", **options)

    def test_own_instances_use_this_backends_client(self):
        self.assertIs(self.drv.zfs, self.drv.peers.client(instance(OWN, host="hosta")))
        self.assertEqual("tank/manila/share-i1", self.drv.peers.dataset(instance(OWN)))

    def test_peer_with_a_remote_zfs_host_is_reached_at_that_host(self):
        self.section("zfs_b", zfs_dataset_roots=["pool2/shares"], zfs_ssh_host="192.0.2.20",
                     zfs_share_name_prefix="s-")
        peer = instance("zfs_b", pool="pool2")
        client = self.drv.peers.client(peer)
        self.assertIsInstance(client.executor, executor_mod.SSHExecutor)
        self.assertEqual("192.0.2.20", client.executor.host)
        self.assertEqual("pool2/shares/s-i1", self.drv.peers.dataset(peer))
        self.assertIs(client, self.drv.peers.client(peer))          # built once

    def test_local_peer_of_another_host_is_reached_at_its_peer_address(self):
        # its own service runs ZFS locally; from here it is an SSH host, never our ZFS
        self.section("zfs_c", zfs_dataset_roots=["tank/m"], zfs_peer_ssh_host="192.0.2.30",
                     zfs_ssh_user="zfsrepl")
        client = self.drv.peers.client(instance("zfs_c"))
        self.assertIsInstance(client.executor, executor_mod.SSHExecutor)
        self.assertEqual(("192.0.2.30", "zfsrepl"), (client.executor.host,
                                                      client.executor.user))

    def test_local_peer_without_an_address_is_refused(self):
        self.section("zfs_d", zfs_dataset_roots=["tank/m"])
        e = self.assertRaises(exception.ShareBackendException, self.drv.peers.client,
                              instance("zfs_d"))
        self.assertIn("zfs_peer_ssh_host", str(e))

    def test_second_backend_of_this_host_is_local(self):
        self.section("zfs_e", zfs_dataset_roots=["fast/m"])
        self.conf.config(enabled_share_backends=[OWN, "zfs_e"])
        client = self.drv.peers.client(instance("zfs_e", pool="fast"))
        self.assertIsInstance(client.executor, executor_mod.LocalExecutor)
        self.assertIsNot(self.drv.zfs, client)

    def test_unconfigured_peer_or_pool_is_refused(self):
        self.assertRaises(exception.ShareBackendException, self.drv.peers.client,
                          instance("nowhere"))
        self.section("zfs_b", zfs_dataset_roots=["pool2/shares"], zfs_ssh_host="192.0.2.20")
        self.assertRaises(exception.ShareBackendException, self.drv.peers.dataset,
                          instance("zfs_b", pool="tank"))

    def test_share_from_a_snapshot_on_a_peer_is_sent_from_the_peers_host(self):
        self.section("zfs_b", zfs_dataset_roots=["pool2/shares"], zfs_ssh_host="192.0.2.20")
        peer = mock.Mock(spec=zfs_client.ZFSClient)
        peer.copy_snapshot.side_effect = functools.partial(zfs_client.ZFSClient.copy_snapshot,
                                                           peer)
        self.drv.peers._peer("zfs_b").client = peer
        self.drv.zfs.executor.respond = lambda argv: (
            (0, "tank/manila/share-s2\tmountpoint\t/tank/manila/share-s2\n", "")
            if "mountpoint" in argv else None)
        snapshot = {"id": "si", "snapshot_id": "n1", "share_instance_id": "i1",
                    "share_instance": instance("zfs_b", pool="pool2")}
        share = {"id": "s2", "host": "hosta@%s#tank" % OWN, "size": 1,
                 "share_proto": "NFS", "share_type_id": "t"}
        with mock.patch.object(driver.share_types, "get_extra_specs_from_share",
                               return_value={}):
            self.drv.create_share_from_snapshot(None, share, snapshot)
        peer.send.assert_called_once_with("pool2/shares/share-i1@snapshot-n1", self.drv.zfs,
                                          "tank/manila/share-s2")
        self.assertFalse([c for c in self.drv.zfs.executor.calls if c[:2] == ["zfs", "clone"]])
