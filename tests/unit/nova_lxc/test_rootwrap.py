"""The LXC driver's privsep daemon as nova-compute starts it, and the shipped nova
rootwrap filters and sudoers rule that must admit it (and nothing else of its kind)."""
import os
import re
import sys

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslo_privsep import capabilities
from oslo_privsep import priv_context
from oslo_rootwrap import wrapper
import testtools

from nova_lxc import privsep

ETC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "etc")
SOCK = "/tmp/tmpab_1x9/privsep.sock"
ROOT_HELPER = ["sudo", "nova-rootwrap", "/etc/nova/rootwrap.conf"]   # nova's default


def shipped_filters():
    """The shipped lines, without the privsep-helper filter oslo.rootwrap adds by itself
    (which admits any privsep-helper command line)."""
    filters = wrapper.load_filters([os.path.join(ETC, "nova", "rootwrap.d")])
    return [f for f in filters if f.name != "privsep-helper"]


def sudoers_rule():
    with open(os.path.join(ETC, "sudoers.d", "openstack-hci-nova")) as f:
        rule = [line for line in f if line.startswith("nova ")][0]
    command, args = rule.split("NOPASSWD: ", 1)[1].strip().split(" ", 1)
    return command, re.compile(args)


def filters_admit(argv):
    try:
        wrapper.match_filter(shipped_filters(), argv,
                             exec_dirs=[os.path.dirname(sys.executable)])
    except (wrapper.NoFilterMatched, wrapper.FilterMatchNotExecutable):
        return False
    return True


def sudoers_admit(argv):
    # sudo joins the arguments with spaces and matches the whole line
    return bool(sudoers_rule()[1].match(" ".join(["/etc/nova/rootwrap.conf"] + argv)))


class TestLXCAdminThroughNovaRootwrap(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(config_fixture.Config(cfg.CONF)).conf
        self.conf([], project="nova", default_config_files=[])    # --config-file exists
        # what nova-compute's main does before any privileged call
        self.addCleanup(setattr, priv_context, "_HELPER_COMMAND_PREFIX",
                        priv_context._HELPER_COMMAND_PREFIX)
        priv_context.init(root_helper=ROOT_HELPER)

    def daemon_argv(self, config_files):
        self.conf.set_override("config_file", config_files)
        return privsep.lxc_admin.helper_command(SOCK)

    def test_the_daemon_command_line_is_admitted(self):
        for files in ([], ["/etc/nova/nova.conf"],
                      ["/etc/nova/nova.conf", "/etc/nova/nova-compute.conf"]):
            argv = self.daemon_argv(files)
            self.assertEqual(ROOT_HELPER + ["privsep-helper"], argv[:4])
            self.assertEqual(["--privsep_context", "nova_lxc.privsep.lxc_admin",
                              "--privsep_sock_path", SOCK], argv[-4:])
            self.assertTrue(filters_admit(argv[3:]), argv)
            self.assertTrue(sudoers_admit(argv[3:]), argv)
        self.assertEqual("/usr/bin/nova-rootwrap", sudoers_rule()[0])

    def test_other_command_lines_are_refused(self):
        context = ["--privsep_context", "nova_lxc.privsep.lxc_admin"]
        sock = ["--privsep_sock_path", SOCK]
        refused = [
            ["privsep-helper", "--config-file", "/etc/nova/../shadow"] + context + sock,
            ["privsep-helper", "--config-file", "/tmp/evil.conf"] + context + sock,
            ["privsep-helper", "--privsep_context", "nova_lxc.privsep.other"] + sock,
            ["privsep-helper", "--privsep_context", "os_brick.privileged.default"] + sock,
            ["privsep-helper"] + context + sock + ["--privsep_context", "x.y"],
            ["privsep-helper"] + context + ["--privsep_sock_path", "/etc/sudoers"],
            ["privsep-helper"] + context + ["--privsep_sock_path", "/tmp/a/../b/privsep.sock"],
            ["lxc-start", "-n", "x"],
        ]
        for argv in refused:
            self.assertFalse(filters_admit(argv), argv)
            self.assertFalse(sudoers_admit(argv), argv)


class TestCapabilities(testtools.TestCase):
    def status(self, bnd):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, "status")
        with open(path, "w") as f:
            f.write("Name:\tx\nCapInh:\t0000000000000000\nCapBnd:\t%s\n" % bnd)
        return path

    def test_capabilities_outside_the_bounding_set_are_not_asked_for(self):
        full = self.status("000001ffffffffff")
        self.assertEqual(list(privsep.CAPABILITIES),
                         privsep.bounded(privsep.CAPABILITIES, full))
        # a host that is a container without CAP_SYS_RESOURCE (24), as this test machine
        no_resource = self.status("000001fffeffffff")
        kept = privsep.bounded(privsep.CAPABILITIES, no_resource)
        self.assertNotIn(capabilities.CAP_SYS_RESOURCE, kept)
        self.assertEqual(len(privsep.CAPABILITIES) - 1, len(kept))
        self.assertIn(capabilities.CAP_SYS_ADMIN, kept)

    def test_an_unreadable_status_keeps_the_list(self):
        self.assertEqual(list(privsep.CAPABILITIES),
                         privsep.bounded(privsep.CAPABILITIES, "/nonexistent/status"))
