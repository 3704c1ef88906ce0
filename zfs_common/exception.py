"""Typed errors of the ZFS layer.

Drivers translate these into their service's exceptions (cinder's, manila's); the ZFS
layer itself stays free of any service import.
"""


class ZFSError(Exception):
    """A ZFS operation failed. ``stderr`` and ``exit_code`` come from the command."""

    def __init__(self, message, cmd=None, stderr="", exit_code=None):
        super().__init__(message)
        self.cmd = cmd
        self.stderr = stderr
        self.exit_code = exit_code


class InvalidName(ZFSError, ValueError):
    """A dataset, snapshot or pool name that must never reach a command line."""


class InvalidValue(ZFSError, ValueError):
    """A property name or value that must never reach a command line."""


class DatasetNotFound(ZFSError):
    """The dataset, snapshot or pool does not exist."""


class DatasetExists(ZFSError):
    """The dataset or snapshot exists already."""


class DatasetBusy(ZFSError):
    """The dataset is in use (mounted and open, exported, held)."""


class HasDependents(ZFSError):
    """The dataset has children, snapshots or clones that depend on it."""


class NotAClone(ZFSError):
    """``zfs promote`` of a dataset that is no clone (any more)."""


class NoSpace(ZFSError):
    """The pool (or a quota) has not enough space for the operation."""


class SizeBelowUsage(ZFSError):
    """A new size (quota, volsize) is below what the dataset already uses."""


class CommandTimeout(ZFSError):
    """The command did not finish in time; it was killed."""


class ConnectionFailed(ZFSError):
    """The remote ZFS host could not be reached (SSH failed)."""


# stderr fragments of zfs/zpool (OpenZFS 2.1 to 2.3, zfs-fuse) -> error class; checked in
# order, so the more specific fragments come first.
STDERR_MAP = (
    ("has dependent clones", HasDependents),
    ("has children", HasDependents),
    ("use '-r' to destroy", HasDependents),
    ("use '-R' to destroy", HasDependents),
    ("not a cloned filesystem", NotAClone),
    ("less than current used", SizeBelowUsage),
    ("size is less than", SizeBelowUsage),
    ("dataset does not exist", DatasetNotFound),
    ("could not find any snapshots", DatasetNotFound),
    ("no such pool", DatasetNotFound),
    ("dataset already exists", DatasetExists),
    ("already exists", DatasetExists),
    ("out of space", NoSpace),
    ("not enough space", NoSpace),
    ("insufficient space", NoSpace),
    ("size is greater than available space", NoSpace),
    ("is busy", DatasetBusy),
    ("device or resource busy", DatasetBusy),
    ("dataset is busy", DatasetBusy),
)


def from_command(cmd, stderr, exit_code):
    """The most specific error for a failed zfs/zpool command."""
    text = stderr.lower()
    for fragment, cls in STDERR_MAP:
        if fragment in text:
            return cls(stderr.strip(), cmd=cmd, stderr=stderr, exit_code=exit_code)
    return ZFSError(stderr.strip() or "command failed with exit code %s" % exit_code,
                    cmd=cmd, stderr=stderr, exit_code=exit_code)
