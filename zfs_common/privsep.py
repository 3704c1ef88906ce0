"""The privileged side of local ZFS commands (oslo.privsep).

Only ``zfs``, ``zpool``, ``exportfs``, ``udevadm`` (waiting for zvol device links) and
``ssh`` (the transport of a pipeline to a remote ZFS host) can run through it, always as
an argument vector, never through a shell. Results come back as plain tuples so no
exception has to cross the privsep channel.
"""
import os
import re
import tempfile

from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

from zfs_common import process

ALLOWED_COMMANDS = frozenset({"zfs", "zpool", "exportfs", "udevadm", "ssh"})
# the only files it writes: per-share NFS export lists
ALLOWED_FILE = re.compile(r"^/etc/exports\.d/zfs-manila-[A-Za-z0-9_.:-]+\.exports$")

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


def check_argv(argv):
    if not argv or argv[0] not in ALLOWED_COMMANDS or not all(
            isinstance(a, str) for a in argv):
        raise ValueError("command not allowed through zfs_common privsep: %r" % (argv,))


@zfs_pctxt.entrypoint
def execute(argv, process_input=None, timeout=None):
    check_argv(argv)
    return process.run(argv, process_input, timeout)


@zfs_pctxt.entrypoint
def pipe(producer, consumer, timeout=None):
    check_argv(producer)
    check_argv(consumer)
    return process.run_pipe(producer, consumer, timeout)


@zfs_pctxt.entrypoint
def write_file(path, content):
    """Replace ``path`` atomically (write a temporary file, then rename it)."""
    check_file(path)
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
    """Set the mode of a dataset's root directory (e.g. a new share's, to 0777)."""
    if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
        raise ValueError("not an absolute path: %r" % (path,))
    os.chmod(path, int(mode) & 0o7777)
