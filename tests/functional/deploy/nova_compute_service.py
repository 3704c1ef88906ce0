"""A server's life through nova's services, run by the nova service user.

Not a test module of its own (stestr does not discover it): test_nova_compute.py runs it
in a child process as the unprivileged ``nova`` user, after installing the project's
filters and sudoers rule. Nothing of ours runs in-process: as nova-compute's own main
does, oslo.privsep is told nova's root helper, so nova_common's two daemons (net_admin,
guest_admin) start through ``sudo nova-rootwrap /etc/nova/rootwrap.conf privsep-helper``.
"""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import copy
import os
import shlex
import subprocess

import fixtures
from nova import utils
from oslo_privsep import daemon as privsep_daemon
from oslo_privsep import priv_context

from nova_common import confine

# nova's test base forbids starting privsep helpers (PrivsepNoHelperFixture): this
# scenario exists to start them, as nova-compute does
REAL_CHANNEL = privsep_daemon.RootwrapClientChannel
CONTEXTS = ("nova_common.privsep.net_admin", "nova_common.privsep.guest_admin")


def proc(pid):
    with open("/proc/%d/status" % pid) as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    return int(status["Uid"].split()[1]), int(status["PPid"]), argv


def privsep_daemons():
    """{context: uid} of the privsep daemons of ours started for this scenario (they
    detach from sudo: found by their command line, which names this test's nova.conf)."""
    found = {}
    conf = os.environ["HCI_DEPLOY_NOVA_CONF"]
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            uid, _ppid, argv = proc(int(name))
        except (OSError, ValueError, KeyError):
            continue
        if "privsep-helper" not in " ".join(argv[:2]) or conf not in argv:
            continue
        for context in CONTEXTS:
            if context in argv:
                found[context] = uid
    return found


class ComputeAsUser(base.QMPServerTestBase):
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

    def test_a_server_with_a_port_and_a_volume(self):
        port = self.neutron.port_1
        self.neutron._ports[port["id"]] = dict(copy.deepcopy(port),
                                               **{"binding:vif_type": "tap"})
        volume_id = "9a3b5c7d-1e2f-4a6b-8c0d-2e4f6a8b0c1d"
        loop = os.environ["HCI_DEPLOY_LOOP"]
        self.cinder.VOLUME_CONNECTION_INFO = dict(self.cinder.VOLUME_CONNECTION_INFO, **{
            volume_id: {"driver_volume_type": "local", "data": {"device_path": loop}}})
        server = self.boot("qcow2", networks=[{"port": port["id"]}])
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("NIC eth0 mac=%s" % port["mac_address"], out)
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": volume_id}})
        self.wait_console(server, "ADDED DISK vdb sectors=32768")

        uid, _ppid, _argv = proc(self.qemu_pid(server))
        self.assertIn(uid, confine.uid_range())
        self.assertNotEqual(os.getuid(), uid)
        self.assertEqual({c: 0 for c in CONTEXTS}, privsep_daemons())
        tap = "tap" + port["id"][:11]
        link = subprocess.run(["ip", "-d", "link", "show", tap], capture_output=True,
                              text=True).stdout
        self.assertIn("user %d" % uid, link)          # the guest's tap, not nova's

        self.api.delete_server_volume(server["id"], volume_id)
        self._wait_for_volume_detach(server["id"], volume_id)
        # stopped and started again: the files the guest made in its first run (its
        # log) are its own, and nova's user starts it again without touching them
        server = self._stop_server(server)
        server = self._start_server(server)
        self.assertIn(proc(self.qemu_pid(server))[0], confine.uid_range())
        self._delete_server(server)
        self.assert_nothing_left(server)
        self.assertFalse(os.path.exists("/sys/class/net/" + tap))
