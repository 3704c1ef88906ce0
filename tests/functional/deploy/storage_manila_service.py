"""The share lifecycle of tests/functional/zfs_manila, run by the manila service user.

Not a test module of its own (stestr does not discover it): test_manila_share.py runs
it in a child process as the unprivileged ``manila`` user, after installing the
project's filters and sudoers rule. Here nothing runs in-process as root: zfs_common's
privsep daemon is started by oslo.privsep through ``sudo manila-rootwrap
/etc/manila/rootwrap.conf privsep-helper ...``, and every ZFS, exportfs and file change
of the lifecycle goes through it; the checks read ZFS through that daemon too.
"""
import os
import tempfile
import types

from manila.tests.integrated import integrated_helpers

from tests.functional.zfs_manila import test_share_lifecycle
from zfs_common import client as zfs_client
from zfs_common import executor
from zfs_common import privsep


def privsep_daemons():
    """[(pid, uid, argv)] of the zfs_common privsep daemons on this machine."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                uid = int([line for line in f if line.startswith("Uid:")][0].split()[2])
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0") if a]
        except (OSError, IndexError, ValueError):
            continue
        if "zfs_common.privsep.zfs_pctxt" in argv and any(
                a.endswith("/privsep-helper") for a in argv[:2]):
            found.append((int(name), uid, argv))
    return found


class ShareServiceAsUser(test_share_lifecycle.TestShareLifecycle):

    def setUp(self):
        if os.geteuid() == 0 or os.getegid() == 0:
            raise RuntimeError("this lifecycle runs as the unprivileged service user")
        self.pool = types.SimpleNamespace(name=os.environ["HCI_DEPLOY_POOL"],
                                          mountpoint=os.environ["HCI_DEPLOY_MOUNTPOINT"])
        self.zfs = zfs_client.ZFSClient(executor.LocalExecutor())
        integrated_helpers._IntegratedTestBase.setUp(self)
        self.api.project_id = "openstack"
        self.headers = {"X-OpenStack-Manila-API-Version": test_share_lifecycle.API_VERSION}
        self.wait_for_backend()

    def _get_flags(self):
        f = super()._get_flags()
        f["rootwrap_config"] = "/etc/manila/rootwrap.conf"   # manila's test config: ""
        return f

    # the checks read ZFS through the same privsep daemon (no zfs CLI as this user)
    def zfs_get(self, name, prop):
        return self.zfs.get_one(name, prop)

    def datasets(self):
        return self.zfs.list(self.pool.name + "/manila", types=("all",))

    def test_share_lifecycle(self):
        self.assertTrue(privsep.zfs_pctxt.client_mode)
        super().test_share_lifecycle()
        # the daemon detaches from sudo (test_manila_share.py checks how it started):
        # here, that it runs as root for this process (its socket was in this test's
        # nested temporary directory; oslo.privsep removes it once connected)
        tmp = tempfile.gettempdir()
        daemons = [d for d in privsep_daemons()
                   if d[2][-1].startswith(tmp + "/")]
        self.assertEqual(1, len(daemons), privsep_daemons())
        pid, uid, argv = daemons[0]
        self.assertEqual(0, uid)
        self.assertNotEqual(0, os.getuid())
