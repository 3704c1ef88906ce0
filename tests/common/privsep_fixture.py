"""oslo.privsep in tests: the privileged functions run in the (root) test process."""
import fixtures

from zfs_common import privsep


class PrivsepInProcess(fixtures.Fixture):
    """What nova's PrivsepFixture does: no daemon, the entrypoints run in-process."""

    def _setUp(self):
        privsep.zfs_pctxt.set_client_mode(False)
        self.addCleanup(privsep.zfs_pctxt.set_client_mode, True)
