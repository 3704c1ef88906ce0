"""hci_nova_shims on minimal real package trees: a regular ``nova/virt`` in one directory,
shims in another, in a child interpreter that has nothing else on its path (``-I -S``)."""
import json
import os
import subprocess
import sys

import fixtures
import testtools

import hci_nova_shims

CHILD = r"""
import importlib.util, json, sys
hook_file, nova_dir, shim_dir, before, installs = sys.argv[1:6]
spec = importlib.util.spec_from_file_location("hci_nova_shims", hook_file)
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)
sys.path.insert(0, nova_dir)
if before == "before":
    import nova.virt
for _ in range(int(installs)):
    hook.install(shim_dir)
try:
    import nova.virt.demo
    demo = nova.virt.demo.WHO
except ImportError:
    demo = None
import nova.virt
print(json.dumps({"demo": demo, "path": list(nova.virt.__path__),
                  "finders": sum(isinstance(f, hook.ShimPathFinder) for f in sys.meta_path)}))
"""


class TestShimPathFinder(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.nova_dir = os.path.join(self.tmp, "services")
        self.nova_virt = self.package("services", "nova", "virt", init=True)
        self.package("services", "nova", init=True)
        self.shim_virt = os.path.join(self.tmp, "project", "nova", "virt")

    def package(self, *parts, init=False, who=None):
        d = os.path.join(self.tmp, *parts)
        os.makedirs(d, exist_ok=True)
        if init or who:
            with open(os.path.join(d, "__init__.py"), "w") as f:
                f.write("WHO = %r\n" % who if who else "")
        return d

    def run_child(self, shim_virt, before=False, installs=1):
        res = subprocess.run([sys.executable, "-I", "-S", "-c", CHILD, hci_nova_shims.__file__,
                              self.nova_dir, shim_virt, "before" if before else "after",
                              str(installs)],
                             capture_output=True, text=True, timeout=60, cwd=self.tmp)
        self.assertEqual(0, res.returncode, res.stderr)
        return json.loads(res.stdout)

    def test_shim_in_another_directory(self):
        self.package("project", "nova", "virt", "demo", who="shim")
        got = self.run_child(self.shim_virt, installs=2)
        self.assertEqual("shim", got["demo"])
        self.assertEqual([self.nova_virt, self.shim_virt], got["path"])   # nova's first
        self.assertEqual(1, got["finders"])

    def test_nova_virt_imported_before_install(self):
        self.package("project", "nova", "virt", "demo", who="shim")
        got = self.run_child(self.shim_virt, before=True)
        self.assertEqual("shim", got["demo"])
        self.assertEqual([self.nova_virt, self.shim_virt], got["path"])

    def test_nova_modules_come_first(self):
        self.package("services", "nova", "virt", "demo", who="nova")
        self.package("project", "nova", "virt", "demo", who="shim")
        self.assertEqual("nova", self.run_child(self.shim_virt)["demo"])

    def test_same_directory_as_nova_added_once(self):
        self.package("services", "nova", "virt", "demo", who="shim")
        link = os.path.join(self.tmp, "link")
        os.symlink(self.nova_dir, link)
        for shim_virt in (self.nova_virt, os.path.join(link, "nova", "virt")):
            got = self.run_child(shim_virt)
            self.assertEqual("shim", got["demo"])
            self.assertEqual([self.nova_virt], got["path"])

    def test_missing_directory_installs_nothing(self):
        got = self.run_child(self.shim_virt)
        self.assertEqual({"demo": None, "path": [self.nova_virt], "finders": 0}, got)
