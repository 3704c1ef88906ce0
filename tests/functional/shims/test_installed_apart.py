"""nova loads the QMP driver through the nova.virt shim when this distribution is installed
in another directory than nova.

This env's own site-packages is "nova's environment" (real nova, from the tox deps; the
project is not installed in it: ``skip_install``). The wheel is built from the tree and
installed apart from it, offline, the two ways an operator would:

- ``pip install --prefix``: another prefix, whose site-packages is another site directory
  of the service's Python (as Debian's /usr/local/lib/python3/dist-packages beside a
  system nova in /usr/lib/python3/dist-packages);
- ``pip install --target`` on PYTHONPATH (ahead of nova), which Python reads no .pth file
  from, made a site directory with the README's one-line ``site.addsitedir`` .pth file.

The child is a fresh virtualenv's Python whose site-packages holds only .pth lines that add
nova's site directory and then the project's as site directories, so Python's own start-up
(``site``) reads them and the project's ``hci_nova_shims.pth``. It loads the driver as
nova-compute does: ``nova.virt.driver.load_compute_driver`` with ``qmp.QMPDriver``.
"""
import glob
import json
import os
import subprocess
import sys
import sysconfig
import venv

import fixtures
import testtools

from tests.common import wheel

LOAD = r"""
import json
from nova.virt import driver, virtapi
drv = driver.load_compute_driver(virtapi.VirtAPI(), "qmp.QMPDriver")
import nova, nova.virt.qmp, nova_qmp.driver
print(json.dumps({
    "type": type(drv).__module__ + "." + type(drv).__qualname__,
    "is_compute_driver": isinstance(drv, driver.ComputeDriver),
    "nova": nova.__file__, "shim": nova.virt.qmp.__file__,
    "nova_qmp": nova_qmp.driver.__file__,
    "nova_virt_path": list(nova.virt.__path__),
}))
"""
ADD_SITE = "import site; site.addsitedir(%r)\n"


class TestInstalledApartFromNova(testtools.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._tmp = fixtures.TempDir()
        cls._tmp.setUp()
        cls.whl = wheel.build(cls._tmp.path)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanUp()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.nova_site = sysconfig.get_paths()["purelib"]
        # the precondition: nova is here and this distribution is not
        self.assertTrue(os.path.isfile(os.path.join(self.nova_site, "nova", "__init__.py")))
        self.assertFalse(glob.glob(os.path.join(self.nova_site, "openstack_hci_drivers*")))
        self.assertFalse(os.path.exists(os.path.join(self.nova_site, "nova", "virt", "qmp")))

    def pip_install(self, *args):
        res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                              "--no-warn-script-location", *args],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(0, res.returncode, res.stderr)

    def load(self, directory, first=False):
        """LOAD's output in a new venv whose site directories are nova's, then ``directory``
        (which is also on PYTHONPATH, ahead of both, if ``first``)."""
        root = os.path.join(self.tmp, "venv")
        venv.create(root, with_pip=False)
        site_packages = sysconfig.get_paths(vars={"base": root, "platbase": root})["purelib"]
        # site reads .pth files in name order: nova's environment, then the project's
        for name, line in (("00-nova-env.pth", ADD_SITE % self.nova_site),
                           ("50-hci-drivers-dir.pth", ADD_SITE % directory)):
            with open(os.path.join(site_packages, name), "w") as f:
                f.write(line)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        if first:
            env["PYTHONPATH"] = directory
        res = subprocess.run([os.path.join(root, "bin", "python"), "-c", LOAD],
                             capture_output=True, text=True, timeout=300, env=env,
                             cwd=self.tmp)        # not the tree: nothing of it importable
        self.assertEqual(0, res.returncode, res.stderr[-3000:])
        return json.loads(res.stdout.splitlines()[-1])

    def check_loaded(self, got, directory):
        self.assertEqual("nova_qmp.driver.QMPDriver", got["type"])
        self.assertTrue(got["is_compute_driver"])
        self.assertEqual(os.path.join(self.nova_site, "nova", "__init__.py"), got["nova"])
        self.assertEqual(os.path.join(directory, "nova", "virt", "qmp", "__init__.py"),
                         got["shim"])
        self.assertEqual(os.path.join(directory, "nova_qmp", "driver.py"), got["nova_qmp"])
        # nova's own drivers stay first
        self.assertEqual([os.path.join(self.nova_site, "nova", "virt"),
                          os.path.join(directory, "nova", "virt")], got["nova_virt_path"])

    def test_other_prefix(self):
        prefix = os.path.join(self.tmp, "prefix")
        # the nova extra resolves against the nova already installed (offline: nothing
        # else could be installed), so only this distribution lands in the prefix
        self.pip_install("--prefix", prefix, self.whl + "[nova]")
        site_dir = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})["purelib"]
        self.assertEqual(["openstack_hci_drivers-0.1.0.dist-info"],
                         [os.path.basename(p)
                          for p in glob.glob(os.path.join(site_dir, "*.dist-info"))])
        self.assertFalse(os.path.exists(os.path.join(site_dir, "nova", "__init__.py")))
        self.check_loaded(self.load(site_dir), site_dir)

    def test_target_directory_first_on_path(self):
        target = os.path.join(self.tmp, "target")
        self.pip_install("--no-deps", "--target", target, self.whl)
        self.check_loaded(self.load(target, first=True), target)
