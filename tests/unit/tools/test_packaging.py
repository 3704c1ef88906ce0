"""The wheel ships nova.virt shims as namespace portions, never nova's own __init__."""
import glob
import os
import shutil
import subprocess
import sys
import zipfile

import fixtures
import testtools

from tests.common import paths


class TestShimPackaging(testtools.TestCase):
    def build_wheel(self, shims=()):
        tmp = self.useFixture(fixtures.TempDir()).path
        src = os.path.join(tmp, "src")
        shutil.copytree(paths.REPO, src, ignore=shutil.ignore_patterns(
            ".git", ".tox", ".stestr", "*.egg-info", "build", "dist", "__pycache__"))
        for name in shims:
            d = os.path.join(src, "shims", "nova", "virt", name)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "__init__.py"), "w") as f:
                f.write("DRIVER = %r\n" % name)
        out = os.path.join(tmp, "wheel")
        res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                              "--no-build-isolation", "-w", out, src],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(0, res.returncode, res.stderr)
        (whl,) = glob.glob(os.path.join(out, "*.whl"))
        with zipfile.ZipFile(whl) as z:
            return set(z.namelist())

    def test_shim_is_a_namespace_portion(self):
        names = self.build_wheel(shims=["demo"])
        self.assertIn("nova/virt/demo/__init__.py", names)
        self.assertNotIn("nova/__init__.py", names)
        self.assertNotIn("nova/virt/__init__.py", names)
        # the demo shim and the project's own (shims/nova/virt/*), nothing else of nova
        self.assertEqual({"nova/virt/demo/__init__.py", "nova/virt/qmp/__init__.py",
                          "nova/virt/liblxc/__init__.py"},
                         {n for n in names if n.startswith("nova/")})
        for pkg in ("zfs_common", "zfs_cinder", "zfs_manila", "nova_common", "nova_qmp",
                    "nova_cloudhypervisor", "nova_lxc"):
            self.assertIn(pkg + "/__init__.py", names)
        self.assertFalse([n for n in names if n.startswith(("tests/", "tools/"))])
