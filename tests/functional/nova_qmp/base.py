"""A nova deployment in one process (nova's functional framework: API, conductor,
scheduler, placement fixture) whose nova-compute runs the QMP driver with real QEMU under
TCG, and the project's tiny test guest in its Glance fixture as qcow2 and raw images.
Used by the functional tests and by the demo (tools/demo_nova.py)."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from nova.tests import functional as _nova_functional  # noqa: F401,I001  isort:skip
import copy
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from nova import context as nova_context
from nova import objects
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import integrated_helpers
from os_brick import privileged as os_brick_privileged

from nova_common import instance_dir
from nova_common import privsep as nova_common_privsep
from nova_qmp import driver  # noqa: F401 - registers [qmp] before self.flags()
from nova_qmp import qemu
from tests.common import guest_images
from tests.common import nova_functional


class QMPServerTestBase(nova_functional.ServerWaits, integrated_helpers._IntegratedTestBase):
    ADMIN_API = True
    CAST_AS_CALL = False
    microversion = "latest"

    def _setup_compute_service(self):
        self.instances = self._instances_path()
        self.flags(compute_driver="qmp.QMPDriver", instances_path=self.instances,
                   shutdown_timeout=5, reboot_timeout=5, force_config_drive=False)
        self.flags(accelerator="tcg", group="qmp")      # q35, the default machine
        # a serial console port range of this test process's own
        low = 20000 + (os.getpid() % 2000) * 10
        self.flags(enabled=True, port_range="%d:%d" % (low, low + 9), group="serial_console")
        self.flags(api_paste_config=os.path.join(sys.prefix, "etc", "nova", "api-paste.ini"),
                   group="wsgi")
        self.useFixture(nova_fixtures.PrivsepFixture())
        self._privsep()
        nova_functional.fix_connector_properties(self)
        self.useFixture(nova_functional.GuestReaper(self.instances, qemu.read_pid,
                                                    qemu.alive))
        self.guest = guest_images.tiny_guest()
        self.images = {}
        for fmt, path in (("qcow2", self.guest.disk_qcow2), ("raw", self.guest.disk_raw)):
            with open(path, "rb") as f:
                self.images[fmt] = self.glance.create(
                    nova_context.get_admin_context(),
                    {"name": "tiny-" + fmt, "disk_format": fmt, "container_format": "bare",
                     "visibility": "public", "status": "active"}, data=f)["id"]
        nova_functional.keep_uploaded_images(self)
        return self._start_compute("compute")

    def _instances_path(self):
        # short: UNIX socket paths (QMP, VNC) must stay under 108 bytes
        path = tempfile.mkdtemp(prefix="q", dir="/tmp")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def _privsep(self):
        """os-brick's and our privileged calls in this (root) process, as nova's are
        (tests/functional/deploy runs them through sudo nova-rootwrap instead)."""
        for context in (os_brick_privileged.default, nova_common_privsep.net_admin,
                        nova_common_privsep.guest_admin):
            context.set_client_mode(False)
            self.addCleanup(context.set_client_mode, True)

    def boot(self, fmt="qcow2", image=None, state="ACTIVE", config_drive=False,
             networks="none"):
        server = self._build_server(image_uuid=image or self.images[fmt], networks=networks)
        server["config_drive"] = config_drive
        server = self.api.post_server({"server": server})
        # up to 2 minutes: nova's helper waits 5 s, too short on a loaded 2-core machine
        return self._wait_for_state_change(server, state, max_retries=240)

    def tap_ports(self, count):
        """Ports of this test's own bound as ``tap`` VIFs by the fixture's "neutron": new
        ids and MACs, so that tests running at the same time never share a tap name."""
        ports = []
        for template in (self.neutron.port_1, self.neutron.port_2)[:count]:
            port = dict(copy.deepcopy(template), **{
                "id": str(uuid.uuid4()), "binding:vif_type": "tap",
                "mac_address": "fa:16:3e:%02x:%02x:%02x" % tuple(os.urandom(3))})
            self.neutron._ports[port["id"]] = port
            ports.append(port)
        return ports

    def assert_nothing_left(self, server):
        self.assertFalse(os.path.exists(os.path.join(self.instances, server["id"])))

    def qemu_pid(self, server):
        return qemu.read_pid(instance_dir.InstanceDir(server["id"], root=self.instances))

    def assert_private(self, server, path):
        """Only the owner (nova's user) and the server's guest uid may use ``path``."""
        self.assertEqual(0, os.stat(path).st_mode & 0o007, path)      # no "other"
        acl = subprocess.run(["getfacl", "-cpn", path], capture_output=True, text=True,
                             check=True).stdout.split()
        named = {e.split(":")[1] for e in acl if e.startswith("user:") and
                 e.split(":")[1]}
        with open("/proc/%d/status" % self.qemu_pid(server)) as f:
            guest = next(line.split()[1] for line in f if line.startswith("Uid:"))
        self.assertLessEqual(named, {guest, str(os.getuid())}, path)
        self.assertNotIn("group::r", " ".join(acl))

    def qemu_argv(self, server):
        """The command line of the server's running QEMU."""
        with open("/proc/%d/cmdline" % self.qemu_pid(server), "rb") as f:
            return [a.decode() for a in f.read().split(b"\0")[:-1]]

    def remote_console(self, server, protocol, kind):
        """The console URL nova's API hands out (its proxy's, with a token)."""
        return self.api.api_post("/servers/%s/remote-consoles" % server["id"], {
            "remote_console": {"protocol": protocol, "type": kind}}
        ).body["remote_console"]["url"]

    def serial(self, server):
        """A raw TCP connection to the serial console endpoint the driver gives nova's
        serial proxy (after asking for the console through the API, as a user would)."""
        self.assertIn("token=", self.remote_console(server, "serial", "serial"))
        ctx = nova_context.get_admin_context()
        instance = objects.Instance.get_by_uuid(ctx, server["id"])
        endpoint = self.compute.manager.driver.get_serial_console(ctx, instance)
        conn = socket.create_connection((endpoint.host, endpoint.port), timeout=30)
        self.addCleanup(conn.close)
        return conn

    def shell(self, conn, command, expect, timeout=60):
        """Run ``command`` in the guest's console shell; the output up to ``expect``."""
        conn.sendall(command.encode() + b"\n")
        out, deadline = b"", time.monotonic() + timeout
        while expect.encode() not in out:
            if time.monotonic() > deadline:
                self.fail("%r not seen after %r; got %r" % (expect, command, out))
            out += conn.recv(4096)
        return out
