"""Unit tests, mirroring the package layout.

nova, cinder and manila each register global options of the same names (``state_path``,
...), so one process cannot import two of them. The tests of each service's drivers run
in a process of their own: ``HCI_UNIT_SERVICE`` selects them (tox's py3 env runs all):

- unset: the packages tied to no service (tools, zfs_common, ...)
- ``cinder`` / ``manila`` / ``nova``: that service's driver packages.
"""
import os

SERVICE_PACKAGES = {
    "cinder": {"zfs_cinder"},
    "manila": {"zfs_manila"},
    "nova": {"nova_common", "nova_qmp", "nova_cloudhypervisor", "nova_lxc"},
}


def load_tests(loader, standard_tests, pattern):
    here = os.path.dirname(__file__)
    service = os.environ.get("HCI_UNIT_SERVICE", "")
    if service and service not in SERVICE_PACKAGES:
        raise ValueError("HCI_UNIT_SERVICE must be one of %s" % ", ".join(SERVICE_PACKAGES))
    tied = set().union(*SERVICE_PACKAGES.values())
    top = os.path.dirname(os.path.dirname(here))
    for name in sorted(os.listdir(here)):
        path = os.path.join(here, name)
        if not os.path.isfile(os.path.join(path, "__init__.py")):
            continue
        wanted = name in SERVICE_PACKAGES[service] if service else name not in tied
        if wanted:
            standard_tests.addTests(loader.discover(path, pattern=pattern or "test*.py",
                                                    top_level_dir=top))
    return standard_tests
