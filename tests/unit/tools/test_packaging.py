"""The wheel: nova.virt shims (never nova's own __init__) with their .pth hook, the README
as long description, and requirements that leave an installed service alone."""
import email
import os
import zipfile

import fixtures
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
import testtools

from tests.common import paths
from tests.common import wheel

# each service extra: the series it must accept any point release of, and the next one
SERIES = {"nova": ("nova", 34), "cinder": ("cinder", 29), "manila": ("manila", 23)}


class TestShimPackaging(testtools.TestCase):
    def build(self, shims=()):
        tmp = self.useFixture(fixtures.TempDir()).path
        with zipfile.ZipFile(wheel.build(tmp, shims=shims)) as z:
            names = set(z.namelist())
            (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
            return (names, email.message_from_string(z.read(meta).decode("utf-8")),
                    z.read("hci_nova_shims.pth"))

    def test_wheel(self):
        names, meta, pth = self.build(shims=["demo"])
        self.check_shims(names, pth)
        self.check_long_description(meta)
        self.check_requirements(meta.get_all("Requires-Dist"))

    def check_shims(self, names, pth):
        self.assertIn("nova/virt/demo/__init__.py", names)
        self.assertNotIn("nova/__init__.py", names)
        self.assertNotIn("nova/virt/__init__.py", names)
        # the demo shim and the project's own (shims/nova/virt/*), nothing else of nova
        self.assertEqual({"nova/virt/demo/__init__.py", "nova/virt/qmp/__init__.py",
                          "nova/virt/liblxc/__init__.py", "nova/virt/lxc/__init__.py",
                          "nova/virt/cloudhypervisor/__init__.py"},
                         {n for n in names if n.startswith("nova/")})
        for pkg in ("zfs_common", "zfs_cinder", "zfs_manila", "nova_common", "nova_qmp",
                    "nova_cloudhypervisor", "nova_lxc", "hci_nova_shims"):
            self.assertIn(pkg + "/__init__.py", names)
        self.assertFalse([n for n in names if n.startswith(("tests/", "tools/"))])
        # site runs the line at the top of the site directory
        self.assertEqual([b"import hci_nova_shims; hci_nova_shims.install()"],
                         pth.splitlines())

    def check_long_description(self, meta):
        self.assertEqual("text/markdown", meta["Description-Content-Type"])
        with open(os.path.join(paths.REPO, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        self.assertEqual(readme.strip(), meta.get_payload().strip())

    def check_requirements(self, requires):
        reqs = [Requirement(r) for r in requires]
        # no exact pins anywhere: a point release of a dependency must still satisfy them
        self.assertEqual([], [str(r) for r in reqs
                              if any(s.operator in ("==", "===") for s in r.specifier)])
        by_extra = {}
        for r in reqs:
            for extra in ("nova", "cinder", "manila"):
                if r.marker and r.marker.evaluate({"extra": extra}):
                    by_extra.setdefault(extra, {})[canonicalize_name(r.name)] = r.specifier
        for extra, (service, major) in SERIES.items():
            spec = by_extra[extra][service]
            for good in ("%d.0.0" % major, "%d.0.1" % major, "%d.3.2" % major):
                self.assertIn(good, spec, (extra, str(spec)))
            for bad in ("%d.0.0" % (major + 1), "%d.9.0" % (major - 1)):
                self.assertNotIn(bad, spec, (extra, str(spec)))
        # qemu.qmp is alpha: bounded to the tested release (tox installs it; see setup.cfg)
        qmp = by_extra["nova"]["qemu-qmp"]
        self.assertIn("0.0.6", qmp)
        self.assertNotIn("0.0.7", qmp)
        self.assertNotIn("0.1.0", qmp)
        self.assertNotIn("0.0.5", qmp)
