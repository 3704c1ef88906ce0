"""What the compute scenarios run by the unprivileged ``nova`` user share (the QMP and the
LXC driver's): privsep daemons started through nova's root helper, as nova-compute's own
main does, and a look at which of them run, and as whom."""
import os
import shlex

import fixtures
from nova import utils
from oslo_privsep import daemon as privsep_daemon
from oslo_privsep import priv_context

# nova's test base forbids starting privsep helpers (PrivsepNoHelperFixture): these
# scenarios exist to start them, as nova-compute does
REAL_CHANNEL = privsep_daemon.RootwrapClientChannel


def proc(pid):
    """(uid, parent pid, argv) of a process."""
    with open("/proc/%d/status" % pid) as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    return int(status["Uid"].split()[1]), int(status["PPid"]), argv


def privsep_daemons():
    """{context: uid} of the privsep daemons started for this scenario (they detach from
    sudo: found by their command line, which names this test's nova.conf)."""
    found = {}
    conf = os.environ["HCI_DEPLOY_NOVA_CONF"]
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            uid, _ppid, argv = proc(int(name))
        except (OSError, ValueError, KeyError):
            continue
        if "privsep-helper" in " ".join(argv[:2]) and conf in argv \
                and "--privsep_context" in argv:
            found[argv[argv.index("--privsep_context") + 1]] = uid
    return found


class AsNovaUser:
    """Mixin for a driver's nova functional test base, run as the nova service user."""

    def setUp(self):
        if os.geteuid() == 0 or os.getegid() == 0:
            raise RuntimeError("this scenario runs as the unprivileged service user")
        super().setUp()

    def _instances_path(self):
        # the one the privileged side's nova.conf names (it checks paths against it)
        return os.environ["HCI_DEPLOY_INSTANCES"]

    def _privsep(self):
        # what nova/cmd/compute.py does: privsep daemons through nova's root helper
        self.useFixture(fixtures.MonkeyPatch(
            "oslo_privsep.daemon.RootwrapClientChannel", REAL_CHANNEL))
        # the daemons' sockets where nova-compute's go (one directory below /tmp, as
        # the sudoers rule allows), not in the test framework's nested temporary dirs
        self.useFixture(fixtures.MonkeyPatch("tempfile.tempdir", "/tmp"))
        priv_context.init(root_helper=shlex.split(utils.get_root_helper()))
        # and nova's configuration files given to them, as nova-compute's are
        self.flags(config_file=[os.environ["HCI_DEPLOY_NOVA_CONF"]])
