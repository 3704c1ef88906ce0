"""Test fixture: an executable named like the real binary that runs the stand-in, and the
check that no request it received violated the spec."""
import glob
import os
import subprocess
import sys
import sysconfig

import fixtures

from tests.common import paths

SYSTEM_PYTHON = "/usr/bin/python3"


class StandInBinary(fixtures.Fixture):
    """``self.path``: a ``cloud-hypervisor`` executable (a stand-in, see the package doc)
    for ``[cloudhypervisor]binary``. At cleanup, fails if any stand-in that wrote its
    socket under one of ``watch_dirs`` recorded a spec violation."""

    def __init__(self, watch_dirs=(), guest_gid=1900000000):
        super().__init__()
        self.watch_dirs = list(watch_dirs)
        self.guest_gid = guest_gid

    def _setUp(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(tmp, "cloud-hypervisor")
        # It runs as a guest uid (the launcher starts it), so under the system's Python
        # (this one may live under root's 0700 home) with this environment's packages
        # (the same Python minor version) and without the system's (-S).
        interpreter = SYSTEM_PYTHON if os.path.exists(SYSTEM_PYTHON) else sys.executable
        packages = sysconfig.get_paths()["purelib"]
        with open(self.path, "w") as f:
            f.write("#!%s -S\nimport os, site, sys\n"
                    "print('stand-in pid', os.getpid(), flush=True)\n"
                    "sys.path[:0] = [%r, %r]\nsite.addsitedir(%r)\n"
                    "from tests.common.ch_standin import __main__ as m\n"
                    "sys.exit(m.main())\n" % (interpreter, paths.REPO, packages, packages))
        os.chmod(self.path, 0o755)
        # its directory (TMPDIR may be a test's private one) and this environment's
        # packages (e.g. in tox's 0700 .tox) must be reachable
        os.chmod(tmp, 0o755)
        self._reachable(tmp)
        self._reachable(packages)
        self.addCleanup(self.check_violations)

    def _reachable(self, path):
        """The guest group may traverse to ``path`` (e.g. tox's 0700 .tox)."""
        path = os.path.abspath(path)
        while path != "/":
            if not os.stat(path).st_mode & 0o001:
                subprocess.run(["setfacl", "-m", "g:%d:x" % self.guest_gid, path],
                               check=True)
            path = os.path.dirname(path)

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
