"""A driver on a recording executor, with cinder's configuration and objects."""
from unittest import mock

from cinder import context
from cinder import objects
from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume
from cinder.volume import configuration
from cinder.volume import driver as cinder_driver
import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from tests.unit.zfs_common.fakes import RecordingExecutor
from zfs_cinder import driver
from zfs_common import client as zfs_client

objects.register_all()
GiB = 1024 ** 3
NOT_FOUND = (1, "", "cannot open 'x': dataset does not exist")
VOL_ID = "11111111-2222-3333-4444-555555555555"
SNAP_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


class DriverTestCase(testtools.TestCase):
    group = "zfs_unit"

    def setUp(self):
        super().setUp()
        self.conf_fixture = self.useFixture(config_fixture.Config(cfg.CONF))
        self.conf_fixture.config(host="cinderhost")
        self.ctx = context.get_admin_context()
        self.specs = {}
        self.useFixture(fixtures.MockPatchObject(
            driver.volume_types, "get_volume_type_extra_specs", lambda _id: self.specs))
        self.drv = self.make_driver()

    def make_driver(self, **overrides):
        cfg.CONF.register_opts(cinder_driver.volume_opts, group=self.group)
        conf = configuration.Configuration(cinder_driver.volume_opts, config_group=self.group)
        drv = driver.ZFSVolumeDriver(configuration=conf, host="cinderhost@zfs")
        options = dict(zfs_volume_root="tank/cinder", target_helper="fake",
                       target_ip_address="192.0.2.10", volume_backend_name="zfs")
        options.update(overrides)
        self.conf_fixture.config(group=self.group, **options)
        with mock.patch.object(zfs_client.ZFSClient, "from_config",
                               return_value=zfs_client.ZFSClient(RecordingExecutor())):
            drv.do_setup(self.ctx)
        self.ex = drv.zfs.executor
        return drv

    def answer(self, *results):
        self.ex.results.extend(results)

    def volume(self, **kw):
        kw.setdefault("id", VOL_ID)
        kw.setdefault("size", 1)
        kw.setdefault("volume_type_id", "7e1e2a53-5f2c-4a8e-9c44-1d2f3b4a5c6d")
        kw.setdefault("host", "cinderhost@zfs#zfs")
        return fake_volume.fake_volume_obj(self.ctx, **kw)

    def snapshot(self, volume=None, **kw):
        volume = volume or self.volume()
        kw.setdefault("id", SNAP_ID)
        kw.setdefault("volume_size", volume.size)
        return fake_snapshot.fake_snapshot_obj(self.ctx, volume=volume, volume_id=volume.id,
                                               **kw)
