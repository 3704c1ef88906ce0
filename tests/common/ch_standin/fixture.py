"""Test fixture: an executable named like the real binary that runs the stand-in, and the
check that no request it received violated the spec."""
import glob
import os
import sys

import fixtures

from tests.common import paths


class StandInBinary(fixtures.Fixture):
    """``self.path``: a ``cloud-hypervisor`` executable (a stand-in, see the package doc)
    for ``[cloudhypervisor]binary``. At cleanup, fails if any stand-in that wrote its
    socket under one of ``watch_dirs`` recorded a spec violation."""

    def __init__(self, watch_dirs=()):
        super().__init__()
        self.watch_dirs = list(watch_dirs)

    def _setUp(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(tmp, "cloud-hypervisor")
        with open(self.path, "w") as f:
            f.write("#!%s\nimport os, sys\nprint('stand-in pid', os.getpid(), flush=True)\n"
                    "sys.path.insert(0, %r)\n"
                    "from tests.common.ch_standin import __main__ as m\n"
                    "sys.exit(m.main())\n" % (sys.executable, paths.REPO))
        os.chmod(self.path, 0o755)
        self.addCleanup(self.check_violations)

    def violations(self):
        found = []
        for root in self.watch_dirs:
            for name in glob.glob(os.path.join(root, "**", "*.violations"), recursive=True):
                with open(name) as f:
                    found.append(f.read())
        return found

    def check_violations(self):
        found = self.violations()
        if found:
            raise AssertionError("the stand-in saw requests that violate the spec:\n%s"
                                 % "\n".join(found))
