"""zfs_cinder (local mode) set up as cinder-volume runs it, by an unprivileged user.

As root this test makes the ``cinder`` system user, installs cinder's rootwrap.conf and
this project's filters and sudoers rule (tools/install-privsep-config.sh) and a zfs-fuse
pool; then the driver's setup, pool check and stats run in a child process as that user
(storage_cinder_service.py), with zfs_common's privsep daemon started through ``sudo
cinder-rootwrap /etc/cinder/rootwrap.conf privsep-helper ...``.

Not covered here: volumes. Local mode needs kernel OpenZFS on the cinder-volume host
(zvols); this host has only zfs-fuse, and the OpenZFS test guest would need cinder
installed inside it. Volume operations run through cinder's functional framework in the
functional-cinder env (privsep in-process there).
"""
import sys

import testtools
from testtools import content

from tests.common import deployment
from tests.common import zfsfuse

GiB = 1024 ** 3
CONTEXT = "zfs_common.privsep.zfs_pctxt"
CHILD = "tests.functional.deploy.storage_cinder_service.VolumeDriverAsUser"


class TestCinderVolumeDriverAsServiceUser(testtools.TestCase):

    def setUp(self):
        super().setUp()
        deployed = self.useFixture(deployment.ServiceDeployment("cinder"))
        self.user, self.rootwrap = deployed.user, deployed.rootwrap
        self.pool = self.useFixture(zfsfuse.FusePool(size=2 * GiB, prefix="dc"))

    def test_driver_setup_as_the_cinder_user(self):
        seen = {}
        code, out = self.user.run(
            [sys.executable, "-m", "testtools.run", CHILD + ".test_setup_and_stats"],
            env={"HCI_DEPLOY_POOL": self.pool.name},
            watch=lambda: seen.update(deployment.privsep_daemons(CONTEXT)))
        self.addDetail("service-output", content.text_content(out))
        self.assertEqual(0, code, out[-6000:])
        self.assertEqual(1, len({tuple(argv) for _, argv, _ in seen.values()}), seen)
        for uid, _argv, environ in seen.values():
            self.assertEqual(0, uid)
            self.assertEqual("cinder", environ.get("SUDO_USER"), environ)
            self.assertEqual(["/usr/local/bin/cinder-rootwrap", "/etc/cinder/rootwrap.conf",
                              "privsep-helper", "--privsep_context", CONTEXT],
                             environ.get("SUDO_COMMAND", "").split()[:5], environ)
        self.assertEqual([self.pool.name, self.pool.name + "/cinder"],
                         zfsfuse.run("zfs", "list", "-H", "-o", "name", "-r",
                                     self.pool.name).split())
