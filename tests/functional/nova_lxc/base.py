"""A nova deployment in one process (nova's functional framework: API, conductor,
scheduler, placement fixture) whose nova-compute runs the LXC driver on real liblxc, with
the busybox root filesystem in its Glance fixture as a tarball and as an ext4 image."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from nova.tests import functional as _nova_functional  # noqa: F401,I001  isort:skip
import base64
import os
import shutil
import sys
import tempfile
import time

import fixtures
from nova import context as nova_context
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import integrated_helpers

from nova_common import instance_dir
from nova_common import privsep as nova_common_privsep
from nova_lxc import container
from nova_lxc import driver  # noqa: F401 - registers [lxc_native] before self.flags()
from nova_lxc import privsep as lxc_privsep
from tests.common import lxc_rootfs


class ContainerReaper(fixtures.Fixture):
    """Kills, each by its own name and lxcpath, any container a test left running (also
    after failures), and removes its files."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def _setUp(self):
        self.addCleanup(self._reap)

    def _reap(self):
        for uuid in instance_dir.list_uuids(self.root) + container.list_running(self.root):
            st = container.state(uuid, self.root)
            if st["state"] != "STOPPED":
                try:
                    container.kill(uuid, self.root, 10)
                except container.ContainerError:
                    os.kill(st["init_pid"], 9)


class LXCServerTestBase(integrated_helpers._IntegratedTestBase):
    ADMIN_API = True
    CAST_AS_CALL = False
    microversion = "latest"

    def _setup_compute_service(self):
        self.instances = self._instances_path()
        self.flags(compute_driver="lxc.LXCDriver", instances_path=self.instances,
                   shutdown_timeout=5, reboot_timeout=5, force_config_drive=False)
        self.flags(apparmor_profile="unconfined", group="lxc_native")  # no AppArmor here
        self.flags(api_paste_config=os.path.join(sys.prefix, "etc", "nova", "api-paste.ini"),
                   group="wsgi")
        self._privsep()
        # nova's harness forbids the host discovery behind os-brick's connector
        # properties (/sys, network interfaces); what cinder would be told is fixed here
        self.useFixture(fixtures.MockPatch(
            "os_brick.initiator.connector.get_connector_properties",
            return_value={"host": "compute", "ip": "127.0.0.1", "multipath": False,
                          "platform": "x86_64", "os_type": "linux"}))
        work = tempfile.mkdtemp(prefix="lxcimg", dir="/tmp")
        self.addCleanup(shutil.rmtree, work, True)
        self.images = {}
        props = {"lxc_halt_signal": lxc_rootfs.HALT_SIGNAL}
        for name, path in (("tar", lxc_rootfs.tarball(work)),
                           ("ext4", lxc_rootfs.ext4_image(work))):
            with open(path, "rb") as f:
                self.images[name] = self.glance.create(
                    nova_context.get_admin_context(),
                    {"name": "busybox-" + name, "disk_format": "raw",
                     "container_format": "bare", "visibility": "public",
                     "status": "active", "properties": props}, data=f)["id"]

        # nova's Glance fixture drops uploaded data: keep it, so snapshots can be booted
        fixture = self.glance

        def update(_api, context, image_id, metadata, data=None, purge_props=False):
            if data is not None:
                fixture._imagedata[image_id] = data.read()
            return fixture.update(context, image_id, metadata, purge_props=purge_props)

        self.stub_out("nova.image.glance.API.update", update)
        return self._start_compute("compute")

    def _instances_path(self):
        path = tempfile.mkdtemp(prefix="lxcn", dir="/tmp")
        self.addCleanup(shutil.rmtree, path, True)
        os.chmod(path, 0o711)
        return path

    def _privsep(self):
        self.useFixture(nova_fixtures.PrivsepFixture())
        # the driver's privileged calls in this (root) process, as nova's own are
        for context in (lxc_privsep.lxc_admin, nova_common_privsep.net_admin):
            context.set_client_mode(False)
            self.addCleanup(context.set_client_mode, True)
        self.useFixture(ContainerReaper(self.instances))

    def _wait_for_image(self, name, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for image in self.glance.images.values():
                if image["name"] == name and image["status"] == "active" \
                        and image["id"] in self.glance._imagedata:
                    return image
            time.sleep(0.2)
        self.fail("image %s was not uploaded" % name)

    def run_in(self, server, command):
        """Exit status of ``sh -c command`` run in the server's container."""
        import lxc
        c = lxc.Container(server["id"], self.instances)
        return c.attach_wait(lxc.attach_run_command, ["/bin/sh", "-c", command]) >> 8

    def cgroup_value(self, server, name):
        """A cgroup value of the running container (read through liblxc: nova's
        fixtures forbid reading /sys)."""
        import lxc
        return lxc.Container(server["id"], self.instances).get_cgroup_item(name).strip()

    def boot(self, image="tar", state="ACTIVE", networks="none", user_data=None):
        server = self._build_server(image_uuid=self.images.get(image, image),
                                    networks=networks)
        if user_data:
            server["user_data"] = base64.b64encode(user_data.encode()).decode()
        server = self.api.post_server({"server": server})
        return self._wait_for_state_change(server, state)

    def console(self, server):
        return self.api.post_server_action(server["id"], {"os-getConsoleOutput": {}}
                                           )["output"]

    def wait_console(self, server, text, timeout=60, since=0):
        deadline = time.monotonic() + timeout
        while True:
            out = self.console(server)
            if text in out[since:]:
                return out
            if time.monotonic() > deadline:
                self.fail("%r not in the console of %s:\n%s" % (text, server["id"], out))
            time.sleep(0.2)

    def state(self, server):
        return container.state(server["id"], self.instances)
