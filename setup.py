"""Packaging: the driver packages plus the nova.virt shims.

nova only loads compute drivers from its own namespace (``nova.virt.<name>``), so each Nova
driver ships a tiny shim package ``shims/nova/virt/<name>/__init__.py`` that re-exports its
driver class. The wheel carries ``nova/virt/<name>/`` but never ``nova/__init__.py`` or
``nova/virt/__init__.py``: installed into nova's own site directory it adds the shim beside
nova's drivers, and uninstalling removes only the shim.

nova and nova.virt are regular packages, so a shim in any other site directory (nova from
the distribution, this project in /usr/local or another prefix) is not found by itself.
For that the wheel also carries the ``hci_nova_shims`` package and ``hci_nova_shims.pth``
at the top of the site directory, whose import line adds ``<that site directory>/nova/virt``
to ``nova.virt.__path__`` when nova.virt's modules are first looked for (see
``shims/hci_nova_shims/__init__.py``).
"""
import os

import setuptools
from setuptools.command.build_py import build_py

DRIVER_PACKAGES = ["zfs_common", "zfs_cinder", "zfs_manila", "nova_common", "nova_qmp",
                   "nova_cloudhypervisor", "nova_lxc"]
SHIM_ROOT = os.path.join("shims", "nova", "virt")
HOOK_PACKAGE = "hci_nova_shims"
# site runs a .pth line that starts with "import"; one line, stdlib only, nothing of nova
PTH_NAME = HOOK_PACKAGE + ".pth"
PTH_LINE = "import %s; %s.install()\n" % (HOOK_PACKAGE, HOOK_PACKAGE)


def shim_packages():
    """``nova.virt.<name>`` for every shim directory holding an ``__init__.py``."""
    if not os.path.isdir(SHIM_ROOT):
        return []
    return sorted("nova.virt." + name for name in os.listdir(SHIM_ROOT)
                  if os.path.isfile(os.path.join(SHIM_ROOT, name, "__init__.py")))


class BuildPyWithPth(build_py):
    """build_py that also writes the shim hook's .pth file at the top of the build."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, PTH_NAME)
        self.mkpath(self.build_lib)
        with open(target, "w") as f:
            f.write(PTH_LINE)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib,
                                                                     PTH_NAME)]


packages = setuptools.find_packages(include=[p + s for p in DRIVER_PACKAGES for s in ("", ".*")])
package_dir = {HOOK_PACKAGE: os.path.join("shims", HOOK_PACKAGE)}
packages.append(HOOK_PACKAGE)
for shim in shim_packages():
    # map each shim package on its own: "nova" and "nova.virt" are never packages of ours
    packages.append(shim)
    package_dir[shim] = os.path.join("shims", *shim.split("."))

setuptools.setup(packages=packages, package_dir=package_dir,
                 cmdclass={"build_py": BuildPyWithPth})
