"""zfs_cinder's volume-to-image upload from a remote ZFS host: the zvol's send stream
(what the driver does) against reading the whole device with dd over SSH (what it did).

Boots the kernel-OpenZFS test guest, creates a sparse volume of ``--size-gib`` through
the driver, writes ``--data-mib`` of random data onto it in 64 MiB pieces spread evenly
over the volume, then times both ways of bringing the volume into a local raw file (what
cinder's ``upload_volume`` then converts and sends to Glance, identical in both cases):

- ``dd over SSH``: ``dd if=/dev/zvol/...`` on the ZFS host piped over SSH into a local
  sparse ``dd`` (``zfs_common.executor.copy_bytes``); it reads and carries every byte.
- ``send stream``: ``copy_volume_to_image`` itself (snapshot, ``zfs send`` over SSH,
  written out sparse by ``zfs_common.sendstream``), with Glance's part replaced by a
  check of the file.

Both files are compared (SHA-256) and their allocated sizes printed.

    python benchmarks/cinder_zfs_upload.py [--size-gib 4] [--data-mib 256] [--repeat 1]

Run as root (as the other guest benchmarks); it stops the guest by PID at the end.
"""
import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from cinder import context  # noqa: E402
from cinder import objects  # noqa: E402
from cinder.tests.unit import fake_volume  # noqa: E402
from cinder.volume import configuration  # noqa: E402
from cinder.volume import driver as cinder_driver  # noqa: E402
from oslo_config import cfg  # noqa: E402

from tests.common import zfsguest  # noqa: E402
from zfs_cinder import driver as zfs_driver  # noqa: E402
from zfs_common import executor as zfs_executor  # noqa: E402

objects.register_all()
GiB, MiB = 1024 ** 3, 1024 ** 2
PIECE = 64 * MiB


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def allocated(path):
    return os.stat(path).st_blocks * 512


def make_driver(guest):
    group = "zfsupload"
    conf = cfg.CONF
    conf.register_opts(cinder_driver.volume_opts, group=group)
    drv = zfs_driver.ZFSVolumeDriver(
        configuration=configuration.Configuration(cinder_driver.volume_opts,
                                                  config_group=group),
        host="bench@" + group)
    for name, value in dict(
            zfs_volume_root="bench/cinder", zfs_ssh_host="127.0.0.1",
            zfs_ssh_port=guest.ports["ssh"], zfs_ssh_private_key=guest.ssh_key,
            zfs_ssh_known_hosts_file="/dev/null", zfs_ssh_strict_host_key_checking="no",
            target_helper="fake", zfs_command_timeout=600).items():
        conf.set_override(name, value, group=group)
    drv.do_setup(context.get_admin_context())
    drv.check_for_setup_error()
    return drv


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gib", type=int, default=4)
    parser.add_argument("--data-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workdir", default=os.path.join(REPO, ".tox", "bench-upload"),
                        help="where the local image files go (needs --size-gib of "
                             "space in the worst case)")
    args = parser.parse_args()
    pieces = max(1, args.data_mib * MiB // PIECE)
    os.makedirs(args.workdir, exist_ok=True)
    cfg.CONF.set_override("image_conversion_dir", args.workdir)
    guest = zfsguest.ZfsGuest(scratch_size=(args.size_gib + 4) * GiB, memory_mb=2048)
    zfs_driver.volume_types.get_volume_type_extra_specs = lambda _id: {}
    with contextlib.ExitStack() as stack:
        guest.start()
        stack.callback(guest.stop)
        guest.run("zpool create -f -o ashift=12 -O snapdev=hidden -O compression=off "
                  "bench %s" % guest.take_disk())
        drv = make_driver(guest)
        stack.callback(drv.zfs.close)
        ctx = context.get_admin_context()
        vol = fake_volume.fake_volume_obj(ctx, id=str(uuid.uuid4()), size=args.size_gib,
                                          volume_type_id=None, host="bench@x#x")
        drv.create_volume(vol)
        device = "/dev/zvol/bench/cinder/%s" % vol.name
        guest.wait_for_path(device, timeout=30)
        stride = args.size_gib * GiB // PIECE // pieces
        guest.run("head -c %d /dev/urandom > /tmp/chunk; for i in $(seq 0 %d); do "
                  "dd if=/tmp/chunk of=%s bs=1M seek=$((i * %d)) conv=notrunc "
                  "status=none; done; sync" % (PIECE, pieces - 1, device, stride * 64),
                  timeout=3600)
        rows = []
        for _ in range(args.repeat):
            with tempfile.NamedTemporaryFile(dir=args.workdir) as old:
                t0 = time.perf_counter()
                zfs_executor.copy_bytes(drv.zfs.executor, device, None, old.name,
                                        timeout=24 * 3600)
                t_old = time.perf_counter() - t0
                old_sum, old_alloc = sha256(old.name), allocated(old.name)
            seen = {}

            def upload(context, image_service, image_meta, path, volume, seen=seen, **kw):
                seen.update(sum=sha256(path), alloc=allocated(path))
            zfs_driver.volume_utils.upload_volume = upload
            t0 = time.perf_counter()
            drv.copy_volume_to_image(ctx, vol, None, {"id": "bench"})
            t_new = time.perf_counter() - t0
            if seen["sum"] != old_sum:
                raise SystemExit("the two images differ: %s against %s"
                                 % (seen["sum"], old_sum))
            rows.append((t_old, old_alloc, t_new, seen["alloc"]))
            print("dd over SSH %.1fs (%d MiB allocated here), send stream %.1fs "
                  "(%d MiB allocated here)" % (t_old, old_alloc // MiB, t_new,
                                              seen["alloc"] // MiB),
                  file=sys.stderr, flush=True)
        drv.delete_volume(vol)
    print("\n%d GiB sparse volume, %d MiB of random data in %d pieces of 64 MiB spread "
          "over it; images identical (SHA-256).\n" % (args.size_gib, pieces * 64, pieces))
    print("| way | seconds | allocated in the local file | speed-up |")
    print("|---|---|---|---|")
    for t_old, a_old, t_new, a_new in rows:
        print("| dd over SSH (before) | %.1f | %d MiB | |" % (t_old, a_old // MiB))
        print("| send stream (after) | %.1f | %d MiB | %.1fx |" % (t_new, a_new // MiB,
                                                                 t_old / t_new))


if __name__ == "__main__":
    main()
