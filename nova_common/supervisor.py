"""The supervisor of one hypervisor process.

``python -m nova_common.supervisor [--foreground] --uid U --gid G --dir D --log L --
argv...``, started by the privileged launcher as root: as the main process of the
guest's transient systemd unit (``--foreground``), or detached where no systemd runs the
guests (a new session; its first process exits at once, so the launcher returns). It
drops to ``U:G`` with no supplementary groups (guest uids need no passwd entry), changes to
the instance directory ``D``, and runs ``argv`` with stdout and stderr appended to ``L``
(opened after the drop: only what the guest uid may write). It reaps the hypervisor
process the moment it exits (no waiting on PID 1) and logs how it ended.
"""
import argparse
import os
import signal
import sys
import threading
import time

from nova_common import consolelog
from nova_common import serialbridge


def _drop(uid, gid):
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("could not drop to uid %d" % uid)


def _console_logger(directory, max_bytes):
    """A fresh console FIFO in the instance directory with a thread copying it into
    the bounded console log; the hypervisor opens the FIFO for writing as it starts (the
    reader is already there, so that never blocks)."""
    fifo = os.path.join(directory, consolelog.FIFO)
    try:
        os.unlink(fifo)
    except FileNotFoundError:
        pass
    os.mkfifo(fifo, 0o600)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    thread = threading.Thread(target=consolelog.run, daemon=True, args=(
        fd, fifo, os.path.join(directory, consolelog.LOG), max_bytes))
    thread.start()
    return thread


def _serial_bridge(opts):
    """The bridge of a serial port on a UNIX socket (``nova_common.serialbridge``): its
    TCP port bound now, before the hypervisor runs, and written for the driver."""
    listener = None
    if opts.serial_listen:
        low, high = (int(p) for p in opts.serial_ports.split(":"))
        listener, port = serialbridge.listen(opts.serial_listen, range(low, high + 1))
        if listener is None:
            sys.stderr.write("supervisor: no free port in %s for the serial console\n"
                             % opts.serial_ports)
        else:
            serialbridge.write_port(opts.dir, port)
    bridge = serialbridge.Bridge(opts.serial_socket,
                                 os.path.join(opts.dir, consolelog.LOG),
                                 opts.console_max, listener)
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    return bridge, thread


def main(args=None):
    parser = argparse.ArgumentParser(prog="nova_common.supervisor")
    parser.add_argument("--uid", type=int, required=True)
    parser.add_argument("--gid", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--pidfile",
                        help="where to write the hypervisor's pid (readable by the "
                             "instance directory's default ACL: nova's user)")
    parser.add_argument("--console-max", type=int,
                        help="read the serial console FIFO (console.fifo) into "
                             "console.log, rotated at this size")
    parser.add_argument("--serial-socket",
                        help="with --console-max: the serial port is this UNIX socket "
                             "(the hypervisor's); log it instead of the FIFO")
    parser.add_argument("--serial-listen", help="an IP address: serve the serial socket "
                                                "on it over TCP too")
    parser.add_argument("--serial-ports", help="low:high, the TCP ports to try")
    parser.add_argument("--foreground", action="store_true",
                        help="stay the caller's child (a systemd unit's main process)")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    opts = parser.parse_args(args)
    argv = opts.argv[1:] if opts.argv[:1] == ["--"] else opts.argv
    if not argv:
        parser.error("no command")
    if not opts.foreground:
        if os.fork():
            os._exit(0)            # the launcher's child returns at once
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
    bridge = None
    if opts.console_max and opts.serial_socket:
        bridge, logger = _serial_bridge(opts)
    elif opts.console_max:
        logger = _console_logger(opts.dir, opts.console_max)
    else:
        logger = None
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            os.execv(argv[0], argv)
        except OSError as e:          # in the log: why there is no hypervisor
            os.write(2, ("cannot execute %s: %s\n" % (argv[0], e)).encode())
        finally:
            os._exit(127)
    if opts.pidfile:
        tmp = opts.pidfile + ".tmp"
        pfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o660)
        os.write(pfd, b"%d\n" % child)
        os.close(pfd)
        os.rename(tmp, opts.pidfile)
    # forward SIGTERM to the hypervisor; exit when it has exited
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
    while True:
        try:
            _pid, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    if bridge is not None:
        # its round in progress takes the last output; then no reconnecting to the
        # serial socket of this instance's next hypervisor (it may be starting already)
        bridge.stopped = True
    if logger is not None:
        logger.join(1)           # the last output the hypervisor wrote
    how = ("exit status %d" % os.waitstatus_to_exitcode(status)
           if os.WIFEXITED(status) else "signal %d" % os.WTERMSIG(status))
    sys.stderr.write("%s supervisor: %s (pid %d) ended: %s\n"
                     % (time.strftime("%Y-%m-%d %H:%M:%S"), os.path.basename(argv[0]),
                        child, how))
    return 0


if __name__ == "__main__":
    sys.exit(main())
