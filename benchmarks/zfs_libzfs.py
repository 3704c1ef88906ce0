"""The drivers' ZFS read paths: the ``zfs`` CLI against py-libzfs, on a kernel ZFS host.

Debian's ``python3-libzfs`` (bookworm contrib) links OpenZFS 2.1's libzfs, so this boots the
OpenZFS 2.1 build of the test guest (``HCI_ZFS_SUITE=bookworm``; built and cached on first
use, about 5 minutes), installs the package in it (fetched from the Debian mirror and checked
against the archive's SHA256; the guest has no network of its own), creates ``--count``
datasets (unmounted) under one root and runs benchmarks/zfs_libzfs_guest.py there: exists,
a property read of one dataset, the property read of the whole tree (manila's stats) and
the listing, each by the CLI and by libzfs (in the measuring process, and through a
helper process as a driver would have to use it). Prints medians in ms and the ratios.

    python benchmarks/zfs_libzfs.py [--count 500] [--repeat 5]

Run as root (as the other guest benchmarks); it stops the guest by PID at the end.
"""
import argparse
import base64
import contextlib
import hashlib
import json
import lzma
import os
import sys
import time
import urllib.request

os.environ.setdefault("HCI_ZFS_SUITE", "bookworm")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.common import paths  # noqa: E402
from tests.common import zfsguest  # noqa: E402

PACKAGE = "python3-libzfs"
OPS = ("exists", "get (1 dataset, 4 props)", "list (all names)", "get_tree (all, 4 props)")
MODES = ("cli", "libzfs_in_process", "libzfs_helper")
MIRROR = os.environ.get("HCI_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def fetch_deb(cache):
    """The package's .deb from bookworm contrib, verified against the Packages index."""
    index = lzma.decompress(urllib.request.urlopen(
        MIRROR + "/dists/bookworm/contrib/binary-amd64/Packages.xz", timeout=60).read())
    for stanza in index.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines()
                      if ": " in line and not line.startswith(" "))
        if fields.get("Package") == PACKAGE:
            break
    else:
        raise RuntimeError("%s is not in bookworm contrib" % PACKAGE)
    path = os.path.join(cache, os.path.basename(fields["Filename"]))
    if not os.path.exists(path):
        data = urllib.request.urlopen(MIRROR + "/" + fields["Filename"], timeout=120).read()
        if hashlib.sha256(data).hexdigest() != fields["SHA256"]:
            raise RuntimeError("%s: SHA256 mismatch" % fields["Filename"])
        os.makedirs(cache, exist_ok=True)
        with open(path + ".part", "wb") as f:
            f.write(data)
        os.rename(path + ".part", path)
    return path


def step(text):
    print("==> %s %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


def upload(guest, data, dest):
    guest.run("base64 -d > %s <<'EOF'\n%s\nEOF" % (dest, base64.b64encode(data).decode()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds one operation's measurement may take")
    args = parser.parse_args()
    deb = fetch_deb(os.path.join(paths.CACHE, "debs", "extra"))
    step("booting the OpenZFS 2.1 test guest")
    guest = zfsguest.ZfsGuest(memory_mb=2048)
    with contextlib.ExitStack() as stack:
        guest.start()
        stack.callback(guest.stop)
        with open(deb, "rb") as f:
            upload(guest, f.read(), "/root/libzfs.deb")
        guest.run("dpkg -i /root/libzfs.deb >/dev/null", timeout=120)
        with open(os.path.join(REPO, "benchmarks", "zfs_libzfs_guest.py"), "rb") as f:
            upload(guest, f.read(), "/root/zfs_libzfs_guest.py")
        versions = guest.run("zfs version | head -2 | tr '\\n' ' '; "
                             "dpkg-query -W -f='${Version}' %s" % PACKAGE).out
        guest.run("zpool create -f bench %s && zfs create bench/shares" % guest.take_disk())
        step("creating %d datasets" % args.count)
        # unmounted (canmount=off), which halves the time of each create in the TCG
        # guest; the read paths measured read no mount state
        guest.run("for i in $(seq 1 %d); do zfs create -o canmount=off -o quota=1G "
                  "bench/shares/ds$i; done" % args.count, timeout=3600)
        step("measuring (median of %d)" % args.repeat)
        rows = {}
        for op in OPS:
            for mode in MODES:
                # the guest's timeout ends a measurement that takes too long (by PID)
                res = guest.run("timeout %d python3 /root/zfs_libzfs_guest.py bench/shares "
                                "%d '%s' %s" % (args.timeout, args.repeat, op, mode),
                                timeout=args.timeout + 60, check=False)
                ms = (json.loads(res.out.strip().splitlines()[-1])["ms"] if res.rc == 0
                      else None)
                rows.setdefault(op, {})[mode] = ms
                step("%s, %s: %s" % (op, mode, "%.1f ms" % ms if ms is not None else
                                     "not done in %d s (rc %d)" % (args.timeout, res.rc)))
    print("OpenZFS and py-libzfs: %s" % versions.strip())
    print("%d datasets (median ms of %d)" % (args.count, args.repeat))
    print("%-26s %9s %11s %13s %8s %9s" % ("operation", "CLI", "libzfs-in",
                                           "libzfs-helper", "CLI/in", "CLI/help"))
    def ms(v):
        return "%.1f" % v if v is not None else ">%d000" % args.timeout

    def ratio(cli, lib):
        return "%.2fx" % (cli / lib) if cli is not None and lib is not None else "-"

    for op, r in rows.items():
        print("%-26s %9s %11s %13s %8s %9s" % (
            op, ms(r["cli"]), ms(r["libzfs_in_process"]), ms(r["libzfs_helper"]),
            ratio(r["cli"], r["libzfs_in_process"]), ratio(r["cli"], r["libzfs_helper"])))


if __name__ == "__main__":
    main()
