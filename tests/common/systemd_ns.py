"""A real systemd as PID 1 of new PID, mount and cgroup namespaces (as container
runtimes run it), for tests of guest supervision under systemd on machines whose PID 1
is not systemd.

It sees only this fixture's units (``SYSTEMD_UNIT_PATH``: a target and the stub targets
every service depends on), a cgroup2 hierarchy of its own, and private /run, /tmp,
/var/tmp, /var/log and /var/lib/systemd: it starts nothing of the host's (no tmpfiles,
no udev). Cleanup kills its PID 1 by PID (every process of the namespace goes with it),
then removes its cgroups and mounts.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time

import fixtures

STUBS = ("sysinit", "basic", "shutdown", "sockets", "paths", "timers", "slices",
         "local-fs", "swap", "umount")
BOOT = textwrap.dedent("""\
    set -e
    mount --make-rprivate /
    for d in /run /tmp /var/tmp /var/log /var/lib/systemd; do
        mount -t tmpfs -o mode=755 tmpfs "$d"
    done
    chmod 1777 /tmp /var/tmp
    mkdir -p /run/hci-units /run/lock
    cp "$UNITS"/* /run/hci-units/
    umount -l /sys/fs/cgroup
    mount -t cgroup2 none /sys/fs/cgroup
    export SYSTEMD_UNIT_PATH=/run/hci-units
    exec /lib/systemd/systemd --system --unit=hci-test.target --log-target=console
    """)


class SystemdNamespace(fixtures.Fixture):
    def _setUp(self):
        # not under /tmp or /run: the namespace gets its own of those
        self.work = tempfile.mkdtemp(prefix="hci-systemd-", dir="/var/lib")
        self.addCleanup(shutil.rmtree, self.work, True)
        units = os.path.join(self.work, "units")
        os.mkdir(units)
        for name in STUBS + ("hci-test",):
            with open(os.path.join(units, name + ".target"), "w") as f:
                f.write("[Unit]\nDescription=%s\nDefaultDependencies=no\n" % name)
        # a cgroup2 hierarchy, and a cgroup of the namespace's own in it
        self.cgroot = os.path.join(self.work, "cgroup2")
        os.mkdir(self.cgroot)
        subprocess.run(["mount", "-t", "cgroup2", "none", self.cgroot], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.cgroot], check=False)
        self.cgroup = os.path.join(self.cgroot, os.path.basename(self.work))
        os.mkdir(self.cgroup)
        self.addCleanup(self._remove_cgroups)
        self.log = open(os.path.join(self.work, "systemd.log"), "wb")
        self.addCleanup(self.log.close)
        procs = os.path.join(self.cgroup, "cgroup.procs")
        self.proc = subprocess.Popen(
            ["sh", "-c", 'echo $$ > "$1" && exec unshare --pid --mount --cgroup --fork '
             '--mount-proc sh -c "$2"', "sh", procs, BOOT],
            env={"UNITS": units, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.addCleanup(self._stop)
        self.pid = self._wait_for_pid1()
        self._wait_running()

    def _wait_for_pid1(self, timeout=30):
        """The host PID of the namespace's PID 1 (unshare's child)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in os.listdir("/proc"):
                if not name.isdigit():
                    continue
                try:
                    with open("/proc/%s/stat" % name) as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    with open("/proc/%s/cmdline" % name, "rb") as f:
                        argv = f.read().split(b"\0")
                except (OSError, ValueError, IndexError):
                    continue
                if ppid == self.proc.pid and argv[0].endswith(b"systemd"):
                    return int(name)
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("systemd did not start: %s" % self._log_text())

    def _wait_running(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            if out in ("running", "degraded"):
                return
            time.sleep(0.2)
        raise RuntimeError("systemd is not running: %s" % self._log_text())

    def _log_text(self):
        with open(os.path.join(self.work, "systemd.log"), "rb") as f:
            return f.read()[-4000:].decode(errors="replace")

    def run(self, *argv, check=True, timeout=60):
        """``argv`` inside the namespaces (as root)."""
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p", "-C", "--",
                               *argv], capture_output=True, text=True, check=check,
                              timeout=timeout)

    def alive(self, pid):
        """Whether the namespace's process ``pid`` exists (and is not a zombie)."""
        out = self.run("cat", "/proc/%d/stat" % pid, check=False).stdout
        return bool(out) and out.rsplit(")", 1)[1].split()[0] not in ("Z", "X")

    def _stop(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)   # the namespace's PID 1: all go
            except ProcessLookupError:
                pass
            self.proc.wait(30)

    def _remove_cgroups(self):
        deadline = time.monotonic() + 30
        while os.path.isdir(self.cgroup) and time.monotonic() < deadline:
            for root, dirs, _files in os.walk(self.cgroup, topdown=False):
                for d in dirs:
                    try:
                        os.rmdir(os.path.join(root, d))
                    except OSError:
                        pass
            try:
                os.rmdir(self.cgroup)
            except OSError:
                time.sleep(0.2)
