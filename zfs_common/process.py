"""Running commands without a shell: one command, or two joined by a pipe.

Used unprivileged (SSH to a remote ZFS host) and inside the privsep daemon (local ZFS).
Every command runs with ``LC_ALL=C``, so the stderr texts ``zfs_common.exception``
classifies are the untranslated ones.
"""
import os
import subprocess
import tempfile
import threading

from oslo_concurrency import processutils

C_LOCALE = {"LC_ALL": "C"}


def _env():
    env = dict(os.environ)
    env.update(C_LOCALE)
    return env


def run(argv, process_input=None, timeout=None):
    """Run argv; returns (exit code, or None on timeout, stdout, stderr)."""
    procs = []
    try:
        out, err = processutils.execute(*argv, process_input=process_input,
                                        check_exit_code=False, timeout=timeout,
                                        env_variables=_env(), on_execute=procs.append)
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.wait()
        return None, "", "timed out after %ss" % timeout
    return procs[0].returncode, out, err


def run_with_fds(argv, stdin=None, stdout=None, timeout=None):
    """Run argv with the given file descriptors; returns (exit code or None, stderr)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin is None else stdin,
                            stdout=subprocess.DEVNULL if stdout is None else stdout,
                            stderr=subprocess.PIPE, env=_env())
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None, "timed out after %ss" % timeout
    return proc.returncode, err.decode(errors="replace")


def start_pipe(producer, consumer):
    """Start ``producer | consumer`` as two processes joined by a pipe (no shell).

    The pipe is made here with blocking ends: under eventlet, Popen's own pipes are
    non-blocking in the child too, and ``zfs receive`` then stops reading early.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, True)
    os.set_blocking(write_end, True)
    try:
        src = subprocess.Popen(producer, stdin=subprocess.DEVNULL, stdout=write_end,
                               stderr=subprocess.PIPE, env=_env())
        try:
            dst = subprocess.Popen(consumer, stdin=read_end, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env=_env())
        except BaseException:
            src.kill()
            src.wait()
            raise
    finally:
        os.close(read_end)     # the children hold the only ends now
        os.close(write_end)
    return src, dst


def kill_pipe(procs):
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.communicate()


def finish_pipe(procs, timeout=None):
    """Wait for a started pipe: (exit code of the first that failed or 0, None on
    timeout, stderr of both)."""
    src, dst = procs
    try:
        _, dst_err = dst.communicate(timeout=timeout)
        _, src_err = src.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_pipe(procs)
        return None, "timed out after %ss" % timeout
    err = (src_err + dst_err).decode(errors="replace")
    return (src.returncode or dst.returncode), err


def run_pipe(producer, consumer, timeout=None):
    """Run ``producer | consumer``; returns what ``finish_pipe`` does."""
    return finish_pipe(start_pipe(producer, consumer), timeout)


def run_reading(argv, consume, timeout=None):
    """Run argv and hand its stdout to ``consume(read)`` as it comes.

    Returns (exit code or None on timeout, what ``consume`` returned, stderr). If
    ``consume`` raises, the command is killed first (and on a timeout, the timeout is
    what is reported).
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, env=_env())
        expired = threading.Event()

        def expire():
            expired.set()
            proc.kill()

        timer = threading.Timer(timeout, expire) if timeout else None
        if timer:
            timer.start()
        result = None
        try:
            result = consume(proc.stdout.read)
            while proc.stdout.read(1 << 20):
                pass
        except BaseException:
            proc.kill()
            if not expired.is_set():
                raise
        finally:
            if timer:
                timer.cancel()
            proc.stdout.close()
            proc.wait()
        if expired.is_set():
            return None, None, "timed out after %ss" % timeout
        err.seek(0)
        return proc.returncode, result, err.read().decode(errors="replace")
