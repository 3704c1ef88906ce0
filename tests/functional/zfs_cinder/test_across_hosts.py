"""zfs_cinder's driver-assisted migration between ZFS backends: to another kernel-OpenZFS
test guest (send/receive from host to host) and to another root in the same zpool of one
ZFS host (a rename), each destination described only by the location_info its own
driver reports, as cinder hands it over."""
import uuid

from cinder import context
from cinder import objects
from cinder.tests.unit import fake_volume
from cinder.volume import configuration
from cinder.volume import driver as cinder_driver
import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from tests.common import zfsguest
from zfs_cinder import driver

objects.register_all()
MiB = 1024 ** 2


class TestMigrationAcrossZfsHosts(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(900, gentle=True))
        self.ctx = context.get_admin_context()
        self.conf = self.useFixture(config_fixture.Config(cfg.CONF))
        self.useFixture(fixtures.MockPatchObject(
            driver.volume_types, "get_volume_type_extra_specs",
            lambda _id: {"zfs:compression": "lz4"}))
        self.guests = {"a": zfsguest.shared_guest(), "b": zfsguest.second_guest()}
        self.pools = {k: self.useFixture(zfsguest.ZfsPool(g, prefix="cm" + k)).name
                      for k, g in self.guests.items()}
        self.drivers = {}

    def backend(self, name, guest, root):
        self.conf.register_opts(cinder_driver.volume_opts, group=name)
        drv = driver.ZFSVolumeDriver(configuration=configuration.Configuration(
            cinder_driver.volume_opts, config_group=name), host="host-%s@%s" % (name, name))
        g = self.guests[guest]
        self.conf.config(
            group=name, zfs_volume_root=root, zfs_ssh_host="127.0.0.1",
            zfs_ssh_port=g.ports["ssh"], zfs_ssh_private_key=g.ssh_key,
            zfs_ssh_known_hosts_file="/dev/null", zfs_ssh_strict_host_key_checking="no",
            target_helper="fake", target_ip_address="127.0.0.1", volume_backend_name=name)
        drv.do_setup(self.ctx)
        drv.check_for_setup_error()
        return drv

    def volume(self, backend):
        vol = fake_volume.fake_volume_obj(
            self.ctx, id=str(uuid.uuid4()), size=1, status="available",
            host="host-%s@%s#%s" % (backend, backend, backend),
            volume_type_id="7e1e2a53-5f2c-4a8e-9c44-1d2f3b4a5c6d")
        vol.volume_attachment = objects.VolumeAttachmentList()
        return vol

    def target(self, backend, drv):
        (pool,) = drv.get_volume_stats(refresh=True)["pools"]
        return {"host": "host-%s@%s#%s" % (backend, backend, pool["pool_name"]),
                "capabilities": pool}

    def zvol_digest(self, guest, name):
        g = self.guests[guest]
        g.wait_for_path("/dev/zvol/" + name)
        return g.run("head -c %d /dev/zvol/%s | md5sum" % (16 * MiB, name)).out

    def listing(self, guest, root):
        return self.guests[guest].run("zfs list -H -o name -t all -r %s" % root).out.split()

    def test_to_another_zfs_host_and_within_a_zpool(self):
        root_a, root_b = self.pools["a"] + "/cinder", self.pools["b"] + "/cinder"
        a = self.backend("zfsa", "a", root_a)
        b = self.backend("zfsb", "b", root_b)
        vol = self.volume("zfsa")
        a.create_volume(vol)
        src = "%s/%s" % (root_a, vol.name)
        self.guests["a"].wait_for_path("/dev/zvol/" + src)
        self.guests["a"].run("yes migrate | head -c %d | dd of=/dev/zvol/%s bs=1M "
                             "conv=fsync status=none" % (16 * MiB, src))
        before = self.zvol_digest("a", src)

        # host A's driver streams it to host B's ZFS host
        self.assertEqual((True, None), a.migrate_volume(self.ctx, vol,
                                                        self.target("zfsb", b)))
        dst = "%s/%s" % (root_b, vol.name)
        self.assertEqual(before, self.zvol_digest("b", dst))
        self.assertEqual([root_a], self.listing("a", root_a))          # source gone
        self.assertEqual([root_b, dst], self.listing("b", root_b))     # no snapshot
        props = self.guests["b"].run("zfs get -H -o value compression,%s %s" % (
            driver.VOLUME_ID_PROPERTY, dst)).out.split()
        self.assertEqual(["lz4", vol.id], props)

        # cinder now has it on B; a second backend in B's zpool takes it by a rename
        vol.host = "host-zfsb@zfsb#zfsb"
        root_b2 = self.pools["b"] + "/cinder2"
        b2 = self.backend("zfsb2", "b", root_b2)
        self.assertEqual((True, None), b.migrate_volume(self.ctx, vol,
                                                        self.target("zfsb2", b2)))
        dst2 = "%s/%s" % (root_b2, vol.name)
        self.assertEqual(before, self.zvol_digest("b", dst2))
        self.assertEqual([root_b], self.listing("b", root_b))
        vol.host = "host-zfsb2@zfsb2#zfsb2"
        b2.delete_volume(vol)
        self.assertEqual([root_b2], self.listing("b", root_b2))
