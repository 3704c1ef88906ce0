"""Running commands without a shell: one command, or two joined by a pipe.

Used unprivileged (SSH to a remote ZFS host) and inside the privsep daemon (local ZFS).
"""
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
    """
    with subprocess.Popen(producer, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as src:
        with subprocess.Popen(consumer, stdin=src.stdout, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) as dst:
            src.stdout.close()     # the consumer holds the only reading end now
            try:
                _, dst_err = dst.communicate(timeout=timeout)
                src_err = src.stderr.read()
                src.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                src.kill()
                dst.kill()
                return None, "timed out after %ss" % timeout
    err = (src_err + dst_err).decode(errors="replace")
    return (src.returncode or dst.returncode), err
