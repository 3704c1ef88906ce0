"""nova-compute with the LXC driver (nova_lxc) deployed as an operator would.

As root this test makes the ``nova`` system user, installs nova's rootwrap.conf and this
project's filters and sudoers rule (tools/install-privsep-config.sh); then nova's API,
conductor, scheduler and compute run in a child process as that user
(lxc_compute_service.py), whose LXC privsep daemon starts through ``sudo nova-rootwrap
/etc/nova/rootwrap.conf privsep-helper ...``: an unprivileged container is spawned and
destroyed. No privsep context of ours runs in-process. Cleanup removes the user and the
files, and kills any container a failure left (by its name and lxcpath).
"""
import os
import shutil
import sys
import tempfile

import testtools
from testtools import content

from nova_common import instance_dir
from nova_lxc import container
from tests.common import deployment

CHILD = "tests.functional.deploy.lxc_compute_service.LXCComputeAsUser"


class TestNovaLXCAsServiceUser(testtools.TestCase):
    def setUp(self):
        super().setUp()
        deployed = self.useFixture(deployment.ServiceDeployment("nova"))
        self.user, self.rootwrap = deployed.user, deployed.rootwrap
        # nova's instances path (the containers' lxcpath), traversable by their mapped ids
        self.instances = tempfile.mkdtemp(prefix="lxcd", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.instances, True)
        os.chown(self.instances, self.user.uid, self.user.gid)
        os.chmod(self.instances, 0o711)
        self.addCleanup(self._reap)
        self.nova_conf = "/etc/nova/nova.conf"
        self.useFixture(deployment.OwnFile(self.nova_conf, "# %s\n[DEFAULT]\n"
                                           "instances_path = %s\n"
                                           % (deployment.MARKER, self.instances)))

    def _reap(self):
        """Containers a failed scenario left, each by its own name and lxcpath."""
        for uuid in set(instance_dir.list_uuids(self.instances)
                        + container.list_running(self.instances)):
            if container.state(uuid, self.instances)["state"] != "STOPPED":
                container.kill(uuid, self.instances, 10)
            container.remove(uuid, self.instances)

    def test_a_container_spawned_and_destroyed_as_the_nova_user(self):
        self.assertEqual(["/etc/nova/rootwrap.d/openstack-hci-nova.filters",
                          "/etc/sudoers.d/openstack-hci-nova"], self.rootwrap.installed)
        code, out = self.user.run(
            [sys.executable, "-m", "testtools.run",
             CHILD + ".test_a_container_spawned_and_destroyed"],
            # systemd's PATH for services (the test's image tools are in /usr/sbin)
            env={"PATH": deployment.VENV_BIN + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                         "/usr/bin:/sbin:/bin",
                 "HCI_DEPLOY_INSTANCES": self.instances,
                 "HCI_DEPLOY_NOVA_CONF": self.nova_conf,
                 "OS_NOVA_DISABLE_EVENTLET_PATCHING": "1"})
        self.addDetail("service-output", content.text_content(out))
        self.assertEqual(0, code, out[-8000:])
        self.assertIn("OK", out.splitlines()[-1])
        self.assertEqual([], container.list_running(self.instances))
