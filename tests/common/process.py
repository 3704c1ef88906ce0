"""Helpers for processes the tests start."""
import ctypes
import signal


def die_with_parent():
    """Runs in a child before exec: it gets SIGKILL if the test process dies.

    Pass as ``preexec_fn`` so a test killed mid-run leaves no QEMU or daemon behind.
    """
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
