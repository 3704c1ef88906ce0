"""A container's life through nova's services with the LXC driver, run by the nova
service user.

Not a test module of its own (stestr does not discover it): test_nova_lxc.py runs it in
a child process as the unprivileged ``nova`` user, after installing the project's filters
and sudoers rule. As nova-compute's own main does, oslo.privsep is told nova's root
helper, so the driver's daemon (context ``nova_lxc.privsep.lxc_admin``) starts through
``sudo nova-rootwrap /etc/nova/rootwrap.conf privsep-helper``; nothing runs in-process.
"""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_lxc import base  # noqa: I001  isort:skip
import os
import shlex

import fixtures
from nova import utils
import nova.conf
from oslo_privsep import daemon as privsep_daemon
from oslo_privsep import priv_context

from nova_lxc import privsep as lxc_privsep

CONF = nova.conf.CONF

# nova's test base forbids starting privsep helpers (PrivsepNoHelperFixture): this
# scenario exists to start them, as nova-compute does
REAL_CHANNEL = privsep_daemon.RootwrapClientChannel
CONTEXT = "nova_lxc.privsep.lxc_admin"


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return int([line for line in f if line.startswith("Uid:")][0].split()[1])


def privsep_daemons():
    """{context: uid} of the privsep daemons started for this scenario (they detach from
    sudo: found by their command line, which names this test's nova.conf)."""
    found = {}
    conf = os.environ["HCI_DEPLOY_NOVA_CONF"]
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0") if a]
            if "privsep-helper" in " ".join(argv[:2]) and conf in argv \
                    and "--privsep_context" in argv:
                found[argv[argv.index("--privsep_context") + 1]] = uid_of(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return found


class LXCComputeAsUser(base.LXCServerTestBase):
    def setUp(self):
        if os.geteuid() == 0 or os.getegid() == 0:
            raise RuntimeError("this scenario runs as the unprivileged service user")
        super().setUp()

    def _instances_path(self):
        # the one of the nova.conf the privileged side reads
        return os.environ["HCI_DEPLOY_INSTANCES"]

    def _privsep(self):
        # what nova/cmd/compute.py does: privsep daemons through nova's root helper
        self.useFixture(fixtures.MonkeyPatch(
            "oslo_privsep.daemon.RootwrapClientChannel", REAL_CHANNEL))
        # the daemons' sockets one directory below /tmp (as the sudoers rule allows)
        self.useFixture(fixtures.MonkeyPatch("tempfile.tempdir", "/tmp"))
        priv_context.init(root_helper=shlex.split(utils.get_root_helper()))
        self.flags(config_file=[os.environ["HCI_DEPLOY_NOVA_CONF"]])

    def test_a_container_spawned_and_destroyed(self):
        self.assertEqual({}, privsep_daemons())
        server = self.boot("tar")
        self.wait_console(server, "HCILXC READY uid=0")
        # the driver's privileged calls went to a daemon, not this process
        self.assertIsNotNone(lxc_privsep.lxc_admin.channel)
        daemons = privsep_daemons()
        self.assertEqual(0, daemons.get(CONTEXT), daemons)
        self.assertEqual({0}, set(daemons.values()), daemons)          # each as root
        st = lxc_privsep.state(server["id"], self.instances)
        self.assertEqual("RUNNING", st["state"])
        uid = uid_of(st["init_pid"])
        self.assertEqual(CONF.lxc_native.id_map_start, uid)     # unprivileged container
        self.assertNotEqual(os.getuid(), uid)

        self._delete_server(server)
        self.assertEqual("STOPPED", lxc_privsep.state(server["id"], self.instances)["state"])
        self.assertFalse(os.path.exists(os.path.join(self.instances, server["id"])))
        self.assertEqual([], [n for n in os.listdir(self.instances) if not n.startswith("_")])

