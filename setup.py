"""Packaging: the driver packages plus the nova.virt shims.

nova only loads compute drivers from its own namespace (``nova.virt.<name>``), so each Nova
driver ships a tiny shim package ``shims/nova/virt/<name>/__init__.py`` that re-exports its
driver class. The shims are packaged as PEP 420 namespace portions: the wheel carries
``nova/virt/<name>/`` but never ``nova/__init__.py`` or ``nova/virt/__init__.py``, so
installing it next to nova adds the shim and uninstalling removes only the shim.
"""
import os

import setuptools

DRIVER_PACKAGES = ["zfs_common", "zfs_cinder", "zfs_manila", "nova_common", "nova_qmp",
                   "nova_cloudhypervisor", "nova_lxc"]
SHIM_ROOT = os.path.join("shims", "nova", "virt")


def shim_packages():
    """``nova.virt.<name>`` for every shim directory holding an ``__init__.py``."""
    if not os.path.isdir(SHIM_ROOT):
        return []
    return sorted("nova.virt." + name for name in os.listdir(SHIM_ROOT)
                  if os.path.isfile(os.path.join(SHIM_ROOT, name, "__init__.py")))


packages = setuptools.find_packages(include=[p + s for p in DRIVER_PACKAGES for s in ("", ".*")])
package_dir = {}
for shim in shim_packages():
    # map each shim package on its own: "nova" and "nova.virt" are never packages of ours
    packages.append(shim)
    package_dir[shim] = os.path.join("shims", *shim.split("."))

setuptools.setup(packages=packages, package_dir=package_dir)
