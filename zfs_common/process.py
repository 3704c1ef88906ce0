"""Running commands without a shell: one command, or two joined by a pipe.

Used unprivileged (SSH to a remote ZFS host) and inside the privsep daemon (local ZFS).
"""
import os
import subprocess

from oslo_concurrency import processutils


def run(argv, process_input=None, timeout=None):
    """Run argv; returns (exit code, or None on timeout, stdout, stderr)."""
    procs = []
    try:
        out, err = processutils.execute(*argv, process_input=process_input,
                                        check_exit_code=False, timeout=timeout,
                                        on_execute=procs.append)
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.wait()
        return None, "", "timed out after %ss" % timeout
    return procs[0].returncode, out, err


def run_pipe(producer, consumer, timeout=None):
    """Run ``producer | consumer`` as two processes joined by a pipe (no shell).

    Returns (exit code of the first that failed or 0, None on timeout, stderr of both).
    The pipe is made here with blocking ends: under eventlet, Popen's own pipes are
    non-blocking in the child too, and ``zfs receive`` then stops reading early.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, True)
    os.set_blocking(write_end, True)
    try:
        src = subprocess.Popen(producer, stdin=subprocess.DEVNULL, stdout=write_end,
                               stderr=subprocess.PIPE)
        try:
            dst = subprocess.Popen(consumer, stdin=read_end, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        except BaseException:
            src.kill()
            src.wait()
            raise
    finally:
        os.close(read_end)     # the children hold the only ends now
        os.close(write_end)
    try:
        _, dst_err = dst.communicate(timeout=timeout)
        _, src_err = src.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for proc in (src, dst):
            proc.kill()
            proc.wait()
        return None, "timed out after %ss" % timeout
    err = (src_err + dst_err).decode(errors="replace")
    return (src.returncode or dst.returncode), err
