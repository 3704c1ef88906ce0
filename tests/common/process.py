"""Helpers for processes the tests start."""
import atexit
import ctypes
import signal
import subprocess
import threading


def die_with_parent():
    """Runs in a child before exec: it gets SIGKILL if the test process dies.

    Pass as ``preexec_fn`` so a test killed mid-run leaves no QEMU or daemon behind.
    """
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def stop(proc, timeout=10):
    """Stop a child by PID: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_shared = {}
_shared_lock = threading.Lock()


def shared(name, start, stop_method="stop"):
    """One object per test process (a daemon, a guest), started on first use by
    ``start()`` and stopped at exit by its ``stop_method``."""
    with _shared_lock:
        if name not in _shared:
            obj = start()
            atexit.register(getattr(obj, stop_method))
            _shared[name] = obj
        return _shared[name]
