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

import nova.conf

from nova_lxc import privsep as lxc_privsep
from tests.functional.deploy import as_nova_user

CONF = nova.conf.CONF

CONTEXT = "nova_lxc.privsep.lxc_admin"
privsep_daemons = as_nova_user.privsep_daemons


def uid_of(pid):
    return as_nova_user.proc(pid)[0]


class LXCComputeAsUser(as_nova_user.AsNovaUser, base.LXCServerTestBase):
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

