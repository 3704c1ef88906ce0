"""The one directory per process where OpenSSH's ControlMaster sockets live.

Every ``SSHExecutor`` of a process shares one private (0700) directory under the
temporary directory, named ``zfs-ssh-<pid>-*``. It is made on first use (again in a
forked child, which must not share its parent's masters), and removed with its sockets
when the last executor using it closes and at interpreter exit, after each executor has
told its master connection to exit. Directories left by processes that were killed
(SIGKILL runs no exit handler) are removed by the next process that makes its own.
"""
import atexit
import os
import re
import shutil
import tempfile
import threading
import weakref

from oslo_log import log as logging

LOG = logging.getLogger(__name__)
PREFIX = "zfs-ssh-"
_OWNED = re.compile(r"^%s(\d+)-" % PREFIX)

_lock = threading.Lock()
_state = {"pid": None, "path": None, "users": weakref.WeakSet()}
_atexit_registered = []


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(parent):
    """Remove this user's directories of processes that no longer exist."""
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for name in entries:
        match = _OWNED.match(name)
        path = os.path.join(parent, name)
        if not match or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
        except OSError:
            continue
        LOG.debug("removing %s, left by process %s", path, match.group(1))
        shutil.rmtree(path, ignore_errors=True)


def acquire(user):
    """The directory of this process, made if needed; ``user`` (an executor) uses it."""
    with _lock:
        if _state["pid"] != os.getpid() or _state["path"] is None:
            # a forked child gets its own, and forgets the parent's users
            parent = tempfile.gettempdir()
            _sweep(parent)
            _state.update(pid=os.getpid(), users=weakref.WeakSet(),
                          path=tempfile.mkdtemp(prefix="%s%d-" % (PREFIX, os.getpid()),
                                                dir=parent))
            if not _atexit_registered:
                atexit.register(close_all)
                _atexit_registered.append(True)
        _state["users"].add(user)
        return _state["path"]


def release(user):
    """``user`` is done; the last one out removes the directory."""
    with _lock:
        if _state["pid"] != os.getpid():
            return
        _state["users"].discard(user)
        if not len(_state["users"]) and _state["path"]:
            shutil.rmtree(_state["path"], ignore_errors=True)
            _state["path"] = None


def close_all():
    """At exit: every executor of this process closes its master; the directory goes."""
    if _state["pid"] != os.getpid():
        return
    for user in list(_state["users"]):
        try:
            user.close()
        except Exception:    # noqa: BLE001 - exiting: close what can be closed
            LOG.debug("closing %r at exit failed", user, exc_info=True)
    with _lock:
        if _state["path"]:
            shutil.rmtree(_state["path"], ignore_errors=True)
            _state["path"] = None
