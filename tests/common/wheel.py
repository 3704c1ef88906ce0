"""Build this distribution's wheel from a copy of the tree, as pip would for an operator."""
import glob
import os
import shutil
import subprocess
import sys

from tests.common import paths

IGNORE = shutil.ignore_patterns(".git", ".tox", ".stestr", "*.egg-info", "build", "dist",
                                "__pycache__")


def build(tmp, shims=()):
    """The path of a wheel built in ``tmp`` (extra shim packages ``shims`` added first).

    Built offline with the running environment's setuptools (``--no-build-isolation``).
    """
    src = os.path.join(tmp, "src")
    shutil.copytree(paths.REPO, src, ignore=IGNORE)
    for name in shims:
        d = os.path.join(src, "shims", "nova", "virt", name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "__init__.py"), "w") as f:
            f.write("DRIVER = %r\n" % name)
    out = os.path.join(tmp, "wheel")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                          "--no-build-isolation", "--no-index", "-w", out, src],
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError("wheel build failed: %s" % res.stderr[-2000:])
    (whl,) = glob.glob(os.path.join(out, "*.whl"))
    return whl
