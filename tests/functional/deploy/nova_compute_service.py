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
import subprocess

from nova_common import confine
from tests.functional.deploy import as_nova_user

CONTEXTS = ("nova_common.privsep.net_admin", "nova_common.privsep.guest_admin")
proc = as_nova_user.proc


class ComputeAsUser(as_nova_user.AsNovaUser, base.QMPServerTestBase):
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
        daemons = as_nova_user.privsep_daemons()
        self.assertEqual({c: 0 for c in CONTEXTS},
                         {c: daemons.get(c) for c in CONTEXTS}, daemons)
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
