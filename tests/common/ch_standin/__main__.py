"""``python -m tests.common.ch_standin --api-socket path=... [--event-monitor path=...]
[--log-file ...] [--seccomp ...] [--no-shutdown] [-v]``: the stand-in VMM process."""
import argparse
import fcntl
import os
import signal
import sys
import tempfile
import time

from tests.common.ch_standin import http
from tests.common.ch_standin import vmm as vmm_mod


def _path(value):
    """``path=/x`` or a bare path (fd= is not simulated)."""
    for part in value.split(","):
        if part.startswith("path="):
            return part[5:]
        if "=" not in part:
            return part
    raise SystemExit("only path= is supported: %r" % value)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cloud-hypervisor (stand-in)")
    parser.add_argument("--api-socket", required=True)
    parser.add_argument("--event-monitor")
    parser.add_argument("--log-file")
    parser.add_argument("--seccomp", default="true")
    parser.add_argument("--no-shutdown", action="store_true")
    parser.add_argument("-v", action="count", default=0)
    parser.add_argument("--version", action="version", version="cloud-hypervisor v53.0-standin")
    args = parser.parse_args(argv)
    sock = _path(args.api_socket)
    logf = open(args.log_file, "a") if args.log_file else sys.stderr

    def log(msg):
        logf.write("%.3f %s\n" % (time.time(), msg))
        logf.flush()

    # v53: an exclusive lock on <path>.lock, then a stale socket is removed
    lock = open(sock + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("Error: API socket in use")
        return 1
    if os.path.exists(sock):
        os.unlink(sock)
    workdir = tempfile.mkdtemp(prefix="chs", dir=os.path.dirname(sock))
    vmm = vmm_mod.VMM(workdir, _path(args.event_monitor) if args.event_monitor else None,
                      log, no_shutdown=args.no_shutdown)
    server = http.Server(sock, vmm.handle, log)

    def watch(guest):
        def exited():
            server.extra.pop(guest.pidfd, None)
            if vmm.guest is guest:
                log("guest exited")
                vmm.guest_exited()
                server.stopping = vmm.exit_requested
        server.extra[guest.pidfd] = exited

    vmm.on_guest_start = watch
    original = vmm.handle

    def handle(req):
        resp = original(req)
        if vmm.exit_requested:
            server.stopping = True
        # a guest that stopped: drop its watch
        for fd in list(server.extra):
            if vmm.guest is None or fd != vmm.guest.pidfd:
                server.extra.pop(fd)
        return resp

    server.handle = handle
    signal.signal(signal.SIGTERM, lambda *a: setattr(server, "stopping", True))
    log("stand-in VMM listening on %s" % sock)
    try:
        server.run()
    finally:
        vmm.close()
        server.close()
        if vmm.violations:
            with open(sock + ".violations", "a") as f:
                f.write("\n".join(vmm.violations) + "\n")
        os.unlink(sock + ".lock")
        lock.close()
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
        log("stand-in VMM exits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
