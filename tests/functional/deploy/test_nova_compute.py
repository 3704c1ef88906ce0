"""nova-compute with nova_qmp deployed as an operator would.

As root this test makes the ``nova`` system user, installs nova's rootwrap.conf and this
project's filters and sudoers rule (tools/install-privsep-config.sh) and a loop device
for a volume; then nova's API, conductor, scheduler and compute run in a child process as
that user (nova_compute_service.py), whose privsep daemons start through ``sudo
nova-rootwrap /etc/nova/rootwrap.conf privsep-helper ...``. No privsep context of ours
runs in-process. Cleanup removes the user, the files, the loop device, and any guest a
failure left (by its pidfile).
"""
import os
import shutil
import signal
import sys
import tempfile

import testtools
from testtools import content

from tests.common import deployment
from tests.common import loop as loop_dev

CHILD = "tests.functional.deploy.nova_compute_service.ComputeAsUser"


class TestNovaComputeAsServiceUser(testtools.TestCase):
    def setUp(self):
        super().setUp()
        deployed = self.useFixture(deployment.ServiceDeployment("nova"))
        self.user, self.rootwrap = deployed.user, deployed.rootwrap
        backing = tempfile.NamedTemporaryFile(prefix="hci-deploy-vol-")
        self.addCleanup(backing.close)
        backing.truncate(16 * 1024 ** 2)
        self.loop = loop_dev.loop_device(self, backing.name)
        # nova.conf as the privsep daemons read it: the instances path they check
        self.instances = tempfile.mkdtemp(prefix="q", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.instances, True)
        os.chown(self.instances, self.user.uid, self.user.gid)
        self.nova_conf = "/etc/nova/nova.conf"
        self.useFixture(deployment.OwnFile(self.nova_conf, "# %s\n[DEFAULT]\n"
                                           "instances_path = %s\n"
                                           % (deployment.MARKER, self.instances)))
        self.addCleanup(self._reap)

    def _reap(self):
        """Guests a failed scenario left: by their pidfiles."""
        for path in (self.instances,):
            for root, _dirs, files in os.walk(path):
                if "qemu.pid" in files:
                    with open(os.path.join(root, "qemu.pid")) as f:
                        pid = int(f.read().strip() or 0)
                    try:
                        if pid and os.path.basename(root).encode() in open(
                                "/proc/%d/cmdline" % pid, "rb").read():
                            os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass

    def test_a_server_with_a_port_and_a_volume_as_the_nova_user(self):
        self.assertEqual(["/etc/nova/rootwrap.d/openstack-hci-nova.filters",
                          "/etc/sudoers.d/openstack-hci-nova"], self.rootwrap.installed)
        code, out = self.user.run(
            [sys.executable, "-m", "testtools.run",
             CHILD + ".test_a_server_with_a_port_and_a_volume"],
            env={"HCI_DEPLOY_LOOP": self.loop, "HCI_DEPLOY_INSTANCES": self.instances,
                 "HCI_DEPLOY_NOVA_CONF": self.nova_conf,
                 "OS_NOVA_DISABLE_EVENTLET_PATCHING": "1"})
        self.addDetail("service-output", content.text_content(out))
        self.assertEqual(0, code, out[-8000:])
        self.assertIn("OK", out.splitlines()[-1])
