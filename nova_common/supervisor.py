"""A detached supervisor for one hypervisor process (where no systemd runs the guests).

``python -m nova_common.supervisor --uid U --gid G --dir D --log L -- argv...``, started
by the privileged launcher as root: it detaches (new session; its first process exits at
once, so the launcher returns), drops to ``U:G`` with no supplementary groups, changes to
the instance directory ``D``, and runs ``argv`` with stdout and stderr appended to ``L``
(opened after the drop: only what the guest uid may write). It reaps the hypervisor
process the moment it exits (no waiting on PID 1) and logs how it ended.
"""
import argparse
import os
import signal
import sys
import time


def _drop(uid, gid):
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("could not drop to uid %d" % uid)


def main(args=None):
    parser = argparse.ArgumentParser(prog="nova_common.supervisor")
    parser.add_argument("--uid", type=int, required=True)
    parser.add_argument("--gid", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    opts = parser.parse_args(args)
    argv = opts.argv[1:] if opts.argv[:1] == ["--"] else opts.argv
    if not argv:
        parser.error("no command")
    if os.fork():
        os._exit(0)                # the launcher's child returns at once
    os.setsid()
    _drop(opts.uid, opts.gid)
    os.chdir(opts.dir)
    os.umask(0o007)
    fd = os.open(opts.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o660)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.closerange(3, 65536)
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    # forward SIGTERM to the hypervisor; exit when it has exited
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
    while True:
        try:
            _pid, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    how = ("exit status %d" % os.waitstatus_to_exitcode(status)
           if os.WIFEXITED(status) else "signal %d" % os.WTERMSIG(status))
    sys.stderr.write("%s supervisor: %s (pid %d) ended: %s\n"
                     % (time.strftime("%Y-%m-%d %H:%M:%S"), os.path.basename(argv[0]),
                        child, how))
    return 0


if __name__ == "__main__":
    sys.exit(main())
