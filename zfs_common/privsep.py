"""The privileged side of local ZFS commands (oslo.privsep).

Every entry point validates its arguments itself (``zfs_common.allowlist``): only
``zfs`` and ``exportfs`` subcommands with known flags and checked names, and ``udevadm
settle`` for a zvol's device link, run here, always as an argument vector, never through
a shell. ``ssh`` never runs here: a pipeline between this host and a remote ZFS host
runs its SSH half unprivileged, as the service user, and meets the local half at a FIFO
(``stream``). Results come back as plain tuples so no exception has to cross the
privsep channel.
"""
import errno
import os
import re
import select
import stat
import tempfile
import time

from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

from zfs_common import allowlist
from zfs_common import process

# the only files it writes: per-share NFS export lists
ALLOWED_FILE = re.compile(r"^/etc/exports\.d/zfs-manila-[A-Za-z0-9_.:-]+\.exports$")
# the FIFOs it streams through: made by the unprivileged side in a private directory
FIFO = re.compile(r"^(/[A-Za-z0-9_.-]+)*/zfs-pipe-[A-Za-z0-9_]+/stream$")
FIFO_OPEN_TIMEOUT = 30.0

zfs_pctxt = priv_context.PrivContext(
    "zfs_common",
    cfg_section="zfs_common_privileged",
    pypath=__name__ + ".zfs_pctxt",
    capabilities=[caps.CAP_SYS_ADMIN, caps.CAP_DAC_OVERRIDE, caps.CAP_DAC_READ_SEARCH,
                  caps.CAP_FOWNER, caps.CAP_CHOWN],
)


def check_file(path):
    if not isinstance(path, str) or not ALLOWED_FILE.match(path):
        raise ValueError("file not allowed through zfs_common privsep: %r" % (path,))


@zfs_pctxt.entrypoint
def execute(argv, process_input=None, timeout=None):
    allowlist.check(argv)
    if process_input is not None:
        raise allowlist.Refused("no command run through zfs_common privsep takes input")
    return process.run(list(argv), None, timeout)


@zfs_pctxt.entrypoint
def pipe(producer, consumer, timeout=None):
    """``zfs send ... | zfs receive ...`` on this host."""
    allowlist.check_pipe(producer, consumer)
    return process.run_pipe(list(producer), list(consumer), timeout)


def _open_fifo(path, writing, timeout):
    if (not isinstance(path, str) or not FIFO.match(path) or ".." in path.split("/")
            or not stat.S_ISFIFO(os.lstat(path).st_mode)):
        raise allowlist.Refused("not a zfs_common stream FIFO: %r" % (path,))
    flags = (os.O_WRONLY if writing else os.O_RDONLY) | os.O_NONBLOCK | os.O_NOFOLLOW
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, flags)
            break
        except OSError as e:   # ENXIO: a writer's open until the reader has come
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise allowlist.Refused("not a FIFO: %r" % (path,))
        if not writing:
            # a reader must not see end-of-file before the writer has come
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(timeout * 1000):
                raise TimeoutError("no writer came to %s within %ss" % (path, timeout))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


@zfs_pctxt.entrypoint
def stream(argv, fifo, timeout=None):
    """Run ``zfs send`` into, or ``zfs receive`` from, the FIFO ``fifo``.

    Returns (exit code or None on timeout, stderr).
    """
    allowlist.check(argv)
    if list(argv[:2]) not in (["zfs", "send"], ["zfs", "receive"]):
        raise allowlist.Refused("only zfs send and zfs receive stream: %r" % (argv,))
    sending = argv[1] == "send"
    fd = _open_fifo(fifo, sending, min(timeout or FIFO_OPEN_TIMEOUT, FIFO_OPEN_TIMEOUT))
    try:
        if sending:
            return process.run_with_fds(list(argv), stdout=fd, timeout=timeout)
        return process.run_with_fds(list(argv), stdin=fd, timeout=timeout)
    finally:
        os.close(fd)


@zfs_pctxt.entrypoint
def write_file(path, content):
    """Replace ``path`` atomically (write a temporary file, then rename it)."""
    check_file(path)
    if not isinstance(content, str):
        raise ValueError("content must be text")
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@zfs_pctxt.entrypoint
def remove_file(path):
    check_file(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@zfs_pctxt.entrypoint
def chmod(path, mode):
    """Set the permission bits (no set-id or sticky bits) of a mounted dataset's root.

    Only a directory that is a mount point and is reached without symbolic links.
    """
    if (not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/")
            or os.path.realpath(path) != os.path.normpath(path)
            or not os.path.isdir(path) or not os.path.ismount(path)):
        raise allowlist.Refused("not a mounted dataset's directory: %r" % (path,))
    if not isinstance(mode, int) or mode & ~0o777:
        raise allowlist.Refused("mode %r: permission bits only" % (mode,))
    os.chmod(path, mode)
