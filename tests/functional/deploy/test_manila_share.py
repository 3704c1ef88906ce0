"""manila-share with zfs_manila (local mode, zfs-fuse) deployed as an operator would.

As root this test makes the ``manila`` system user, installs manila's rootwrap.conf and
this project's filters and sudoers rule (tools/install-privsep-config.sh) and a zfs-fuse
pool; then manila's API, scheduler and share service run in a child process as that
user (storage_manila_service.py), and zfs_common's privsep daemon is started through
``sudo manila-rootwrap /etc/manila/rootwrap.conf privsep-helper ...``. No privsep context
runs in-process. Cleanup removes the user, the files and the pool.
"""
import os
import subprocess
import sys

import testtools
from testtools import content

from tests.common import deployment
from tests.common import zfsfuse

GiB = 1024 ** 3
CONTEXT = "zfs_common.privsep.zfs_pctxt"
CHILD = "tests.functional.deploy.storage_manila_service.ShareServiceAsUser"


def remove_exports(pool_mountpoint, pool_name):
    """After a failure: no export of this test's pool stays on the host."""
    if not os.path.exists("/var/lib/nfs/etab"):
        return
    with open("/var/lib/nfs/etab") as f:
        for line in f:
            path, rest = line.split("\t", 1)
            if path.startswith(pool_mountpoint):
                client = rest.split("(")[0]
                client = "[%s]" % client if ":" in client else client
                subprocess.run(["exportfs", "-u", "%s:%s" % (client, path)], check=False)
    for name in os.listdir("/etc/exports.d") if os.path.isdir("/etc/exports.d") else ():
        if pool_name in name:
            os.unlink(os.path.join("/etc/exports.d", name))


class TestManilaShareAsServiceUser(testtools.TestCase):

    def setUp(self):
        super().setUp()
        deployed = self.useFixture(deployment.ServiceDeployment("manila"))
        self.user, self.rootwrap = deployed.user, deployed.rootwrap
        self.pool = self.useFixture(zfsfuse.FusePool(size=4 * GiB, prefix="dp"))
        # the share directories are the users' (0777); the path to them must be open
        os.chmod(os.path.dirname(self.pool.mountpoint), 0o755)
        self.addCleanup(remove_exports, self.pool.mountpoint, self.pool.name)

    def test_share_lifecycle_as_the_manila_user(self):
        self.assertEqual(["/etc/manila/rootwrap.d/zfs-manila.filters",
                          "/etc/sudoers.d/zfs-manila"], self.rootwrap.installed)
        seen = {}
        code, out = self.user.run(
            [sys.executable, "-m", "testtools.run", CHILD + ".test_share_lifecycle"],
            env={"OS_MANILA_DISABLE_EVENTLET_PATCHING": "false",
                 "HCI_DEPLOY_POOL": self.pool.name,
                 "HCI_DEPLOY_MOUNTPOINT": self.pool.mountpoint},
            watch=lambda: seen.update(deployment.privsep_daemons(CONTEXT)))
        self.addDetail("service-output", content.text_content(out))
        self.assertEqual(0, code, out[-6000:])
        self.assertIn("OK", out.splitlines()[-1])
        # one daemon (one socket; its forks for commands show its command line until they
        # exec), root, started by sudo for the manila user through manila-rootwrap
        # (sudo's own variables, which rootwrap passes on to privsep-helper)
        self.assertEqual(1, len({tuple(argv) for _, argv, _ in seen.values()}), seen)
        for uid, _argv, environ in seen.values():
            self.assertEqual(0, uid)
            self.assertEqual("manila", environ.get("SUDO_USER"), environ)
            self.assertEqual(["/usr/local/bin/manila-rootwrap", "/etc/manila/rootwrap.conf",
                              "privsep-helper", "--privsep_context", CONTEXT],
                             environ.get("SUDO_COMMAND", "").split()[:5], environ)
        # what the service made through the daemon is on the pool, and only that
        self.assertEqual([self.pool.name, self.pool.name + "/manila"],
                         zfsfuse.run("zfs", "list", "-H", "-o", "name", "-t", "all", "-r",
                                     self.pool.name).split())
