"""The project's test guest images (see tools/guest/build-tiny-guest.sh).

``tiny_guest()`` returns the built artifacts, building them on first use; the builder is
keyed by its inputs, so a cached build costs one hash.
"""
import dataclasses
import functools
import json
import os
import subprocess

from tests.common import paths


@dataclasses.dataclass(frozen=True)
class TinyGuest:
    """Paths of one build of the tiny guest and the console markers it prints."""

    root: str
    manifest: dict

    def path(self, key):
        return os.path.join(self.root, self.manifest[key])

    @property
    def kernel(self):
        return self.path("kernel")

    @property
    def initrd(self):
        return self.path("initrd")

    @property
    def disk_raw(self):
        return self.path("disk_raw")

    @property
    def disk_qcow2(self):
        return self.path("disk_qcow2")

    @property
    def rootfs_tar(self):
        return self.path("rootfs_tar")

    @property
    def cmdline(self):
        return self.manifest["cmdline"]

    def marker(self, name):
        return self.manifest["markers"][name]


def build(builder, timeout):
    """Run a builder of tools/guest (a cache hit costs one hash): (directory, manifest)."""
    script = os.path.join(paths.TOOLS, "guest", builder)
    out = subprocess.run([script, paths.CACHE], check=True, capture_output=True, text=True,
                         timeout=timeout).stdout.strip().splitlines()[-1]
    with open(os.path.join(out, "manifest.json")) as f:
        return out, json.load(f)


@functools.cache
def tiny_guest():
    """Build (or find in the cache) the tiny guest and return its artifacts."""
    return TinyGuest(*build("build-tiny-guest.sh", timeout=900))
