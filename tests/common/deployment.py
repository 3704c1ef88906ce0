"""Deploying a service as an operator would, for deployment tests (run as root).

Small pieces shared by the tests in tests/functional/deploy/: a system user for the
service, the service's /etc layout with its own rootwrap.conf, this project's filters
and sudoers rule installed by ``tools/install-privsep-config.sh``, the test venv
reachable for that user, and running a command as the user. Everything is undone in
cleanup; one deployment test runs per machine at a time (a lock), since they share /etc.
"""
import configparser
import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import fixtures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = "openstack-hci-drivers deployment test"
LOCK = "/run/lock/openstack-hci-drivers-deploy.lock"
VENV_BIN = os.path.dirname(sys.executable)


class MachineLock(fixtures.Fixture):
    """Only one deployment test per machine changes /etc at a time."""

    def _setUp(self):
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.addCleanup(fcntl.flock, fd, fcntl.LOCK_UN)


class ServiceUser(fixtures.Fixture):
    """A system user and group ``name`` (as distribution packages create), removed in
    cleanup. A user of that name that this fixture did not make is an error."""

    def __init__(self, name):
        super().__init__()
        self.name = name

    def _setUp(self):
        try:
            existing = pwd.getpwnam(self.name)
        except KeyError:
            existing = None
        if existing and existing.pw_gecos != MARKER:
            raise RuntimeError("a user %r exists that this test did not create" % self.name)
        self.home = tempfile.mkdtemp(prefix="hci-%s-home-" % self.name)
        self.addCleanup(shutil.rmtree, self.home, ignore_errors=True)
        if not existing:     # else: left behind by a killed run of this test
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--home-dir", self.home, "--shell", "/usr/sbin/nologin",
                            "--comment", MARKER, self.name], check=True)
        self.addCleanup(subprocess.run, ["userdel", self.name], check=True)
        entry = pwd.getpwnam(self.name)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        os.chown(self.home, self.uid, self.gid)

    def run(self, argv, env=None, timeout=900, watch=None):
        """Run ``argv`` as this user in its home; returns (exit code, output).

        ``watch`` (if given) is called about twice a second while it runs. The command
        gets a session of its own, so a timeout stops it and what it started through its
        process group (a daemon that detached is stopped by its socket closing).
        """
        base = {"PATH": VENV_BIN + ":/usr/local/bin:/usr/bin:/bin", "HOME": self.home,
                "LANG": "C.UTF-8", "PYTHONPATH": REPO}
        proc = subprocess.Popen(argv, user=self.uid, group=self.gid, extra_groups=[],
                                cwd=self.home, env=dict(base, **(env or {})),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                out, _ = proc.communicate(timeout=0.5)
                return proc.returncode, out.decode(errors="replace")
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    os.killpg(proc.pid, signal.SIGKILL)
                    out, _ = proc.communicate()
                    return None, out.decode(errors="replace")
            if watch:
                watch()


def privsep_daemons(context):
    """{pid: (uid, argv, environment)} of the privsep daemons of ``context`` (the
    environment of a root process is readable by root only)."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0") if a]
            if context not in argv or not any(a.endswith("/privsep-helper")
                                              for a in argv[:2]):
                continue
            with open("/proc/%s/environ" % name, "rb") as f:
                environ = dict(e.decode().split("=", 1) for e in f.read().split(b"\0")
                               if b"=" in e)
            found[int(name)] = (os.stat("/proc/" + name).st_uid, argv, environ)
        except OSError:
            continue
    return found


class ReachableBy(fixtures.Fixture):
    """Let other users traverse (not list) the directories above ``path`` (the test venv
    lives under a 0700 .tox); the old modes come back in cleanup."""

    def __init__(self, path):
        super().__init__()
        self.path = os.path.abspath(path)

    def _setUp(self):
        path = self.path
        while path != "/":
            mode = os.stat(path).st_mode & 0o7777
            if not mode & 0o001:
                os.chmod(path, mode | 0o001)
                self.addCleanup(os.chmod, path, mode)
            path = os.path.dirname(path)


class OwnFile(fixtures.Fixture):
    """A file or symlink this test puts in a system location, removed in cleanup.

    One that exists already and was not made by a deployment test is an error.
    """

    def __init__(self, path, content=None, link_to=None, mode=0o644):
        super().__init__()
        self.path, self.content, self.link_to, self.mode = path, content, link_to, mode

    def _setUp(self):
        if os.path.islink(self.path) or os.path.exists(self.path):
            ours = (os.path.islink(self.path) and os.readlink(self.path) == self.link_to) or (
                not os.path.islink(self.path) and MARKER in open(self.path).read())
            if not ours:
                raise RuntimeError("%s exists and is not this test's" % self.path)
            os.unlink(self.path)
        self.addCleanup(lambda: os.path.lexists(self.path) and os.unlink(self.path))
        if self.link_to:
            os.symlink(self.link_to, self.path)
        else:
            with open(self.path, "w") as f:
                f.write(self.content)
            os.chmod(self.path, self.mode)


class OwnDirectory(fixtures.Fixture):
    """``path`` made if missing (and then removed with its content in cleanup)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def _setUp(self):
        if not os.path.isdir(self.path):
            os.makedirs(self.path, 0o755)
            self.addCleanup(shutil.rmtree, self.path, ignore_errors=True)


class ServiceRootwrap(fixtures.Fixture):
    """/etc/<service> with the service's own rootwrap.conf (as its package installs it,
    with the test venv's bin among exec_dirs, as devstack does for venvs),
    ``<service>-rootwrap`` on sudo's secure_path, and this project's filters and
    sudoers rule installed by tools/install-privsep-config.sh."""

    def __init__(self, service):
        super().__init__()
        self.service = service

    def _setUp(self):
        service = self.service
        etc = "/etc/" + service
        self.useFixture(OwnDirectory(etc))
        sample = configparser.ConfigParser(interpolation=None)
        sample.read(os.path.join(sys.prefix, "etc", service, "rootwrap.conf"))
        sample["DEFAULT"]["filters_path"] = etc + "/rootwrap.d"
        sample["DEFAULT"]["exec_dirs"] = VENV_BIN + "," + sample["DEFAULT"]["exec_dirs"]
        text = "# %s\n" % MARKER
        with tempfile.TemporaryFile("w+") as f:
            sample.write(f)
            f.seek(0)
            text += f.read()
        self.useFixture(OwnFile(etc + "/rootwrap.conf", text))
        self.rootwrap = "/usr/local/bin/%s-rootwrap" % service
        self.useFixture(OwnFile(self.rootwrap,
                                link_to=os.path.join(VENV_BIN, service + "-rootwrap")))
        installer = os.path.join(REPO, "tools", "install-privsep-config.sh")
        self.addCleanup(subprocess.run, [installer, "--remove", service], check=True)
        out = subprocess.run([installer, service, self.rootwrap], check=True,
                             capture_output=True, text=True).stdout
        self.installed = out.split()


class ServiceDeployment(fixtures.Fixture):
    """A service deployed as its package would be, for a scenario run by its user: the
    machine lock, the service user, the interpreter and the repository reachable by it,
    and its rootwrap with this project's filters and sudoers rule (``.user``,
    ``.rootwrap``)."""

    def __init__(self, service):
        super().__init__()
        self.service = service

    def _setUp(self):
        self.useFixture(MachineLock())
        self.user = self.useFixture(ServiceUser(self.service))
        self.useFixture(ReachableBy(sys.prefix))
        # the venv's python links to an interpreter that may live in root's home
        self.useFixture(ReachableBy(sys.base_prefix))
        self.useFixture(ReachableBy(REPO))
        self.rootwrap = self.useFixture(ServiceRootwrap(self.service))
