"""Finds this distribution's ``nova.virt.<name>`` shims wherever it is installed.

``nova`` and ``nova.virt`` are regular packages, so Python looks for ``nova.virt.<name>``
only in the one directory of the ``nova/virt/`` it imported. The wheel installs the shims
as ``nova/virt/<name>/`` in its own site directory, which is nova's only when both were
installed into the same one; a system nova in ``/usr/lib/python3/dist-packages`` with this
distribution in ``/usr/local``, or nova in a virtualenv with this distribution in another
prefix, would leave ``compute_driver = qmp.QMPDriver`` unloadable.

The wheel also installs ``hci_nova_shims.pth``, which Python's ``site`` module runs when it
adds this site directory to ``sys.path`` (at start-up, or through ``site.addsitedir``). It
calls :func:`install`, which puts a finder at the front of ``sys.meta_path``. The finder
finds nothing itself: when a module directly below ``nova.virt`` is looked for, it appends
this site directory's ``nova/virt`` to ``nova.virt.__path__`` (once) and lets the usual
finders go on, so nova's own modules always come first. Nothing of nova is imported at
start-up (nova-compute's eventlet patching must come before its imports), and a process
that never imports nova pays one string comparison per import.
"""
import os
import sys

PACKAGE = "nova.virt"
# <site directory>/nova/virt, beside this package
SHIM_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "nova", "virt")


def extend(package, directory):
    """Append ``directory`` to ``package.__path__`` unless one entry already is it."""
    path = getattr(package, "__path__", None)
    if path is None:
        return
    real = os.path.realpath(directory)
    if any(os.path.realpath(entry) == real for entry in path):
        return
    path.append(directory)


class ShimPathFinder:
    """Meta path finder that extends ``nova.virt.__path__`` before its modules are found."""

    def __init__(self, directory):
        self.directory = directory
        self._extended = None        # the nova.virt module object last extended

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("nova.virt.") and fullname.count(".") == 2:
            package = sys.modules.get(PACKAGE)
            if package is not None and package is not self._extended:
                extend(package, self.directory)
                self._extended = package
        return None

    def invalidate_caches(self):
        pass


def install(directory=SHIM_DIR):
    """Add the finder for ``directory`` (once per directory); no-op if it does not exist."""
    if not os.path.isdir(directory):
        return
    for finder in sys.meta_path:
        if isinstance(finder, ShimPathFinder) and finder.directory == directory:
            return
    # also when nova.virt is imported already: the finder acts on its next module lookup
    sys.meta_path.insert(0, ShimPathFinder(directory))
