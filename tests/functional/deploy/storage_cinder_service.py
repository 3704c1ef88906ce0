"""zfs_cinder's setup and stats as cinder-volume runs them, by the cinder service user.

Not a test module of its own: test_cinder_volume.py runs it in a child process as the
unprivileged ``cinder`` user. Only the driver's setup, its pool check (which creates the
volume root dataset) and a stats update run: the host has zfs-fuse only, without zvols,
so no volume can be created here (see test_cinder_volume.py). zfs_common's privsep
daemon is started through ``sudo cinder-rootwrap /etc/cinder/rootwrap.conf
privsep-helper ...``; nothing runs in-process as root.
"""
import os

from cinder import context
from cinder.volume import configuration
from cinder.volume import driver as volume_driver
from oslo_config import cfg
import testtools

from zfs_cinder import driver as zfs_driver
from zfs_common import privsep

CONF = cfg.CONF
BACKEND = "zfs1"


class VolumeDriverAsUser(testtools.TestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() == 0 or os.getegid() == 0:
            raise RuntimeError("this runs as the unprivileged service user")
        CONF([], project="cinder", default_config_files=[])
        CONF.set_override("rootwrap_config", "/etc/cinder/rootwrap.conf")
        CONF.register_opts(volume_driver.volume_opts + zfs_driver.opts.zfs_volume_opts
                           + zfs_driver.zfs_opts.zfs_host_opts, group=BACKEND)
        CONF.set_override("zfs_volume_root", os.environ["HCI_DEPLOY_POOL"] + "/cinder",
                          group=BACKEND)
        CONF.set_override("volume_backend_name", "ZFS_FUSE", group=BACKEND)
        self.driver = zfs_driver.ZFSVolumeDriver(
            configuration=configuration.Configuration(volume_driver.volume_opts,
                                                      config_group=BACKEND),
            host="hcihost@" + BACKEND)

    def test_setup_and_stats(self):
        self.assertTrue(privsep.zfs_pctxt.client_mode)
        self.driver.do_setup(context.get_admin_context())
        self.driver.check_for_setup_error()
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual("ZFS_FUSE", stats["volume_backend_name"])
        # one pool per volume root, each with its own capacity (from one zfs get)
        (pool,) = stats["pools"]
        self.assertGreater(pool["total_capacity_gb"], 0)
        root = os.environ["HCI_DEPLOY_POOL"] + "/cinder"
        self.assertEqual("filesystem", self.driver.zfs.get_one(root, "type"))
        self.assertNotEqual(0, os.getuid())
