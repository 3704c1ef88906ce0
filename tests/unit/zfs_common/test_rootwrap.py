"""The daemon's start command, and the shipped rootwrap filters that must admit it."""
import os
import re
import sys

from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslo_rootwrap import wrapper
import testtools

from zfs_common import privsep
from zfs_common import rootwrap

ETC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "etc")
SOCK = "/tmp/tmpab_1x9/privsep.sock"


def load_filters(service):
    """The shipped filter lines (without the privsep-helper filter oslo.rootwrap adds
    by itself, which admits any privsep-helper command line)."""
    filters = wrapper.load_filters([os.path.join(ETC, service, "rootwrap.d")])
    return [f for f in filters if f.name != "privsep-helper"]


def sudoers_rule(service):
    """(command, regular expression of its arguments) of the shipped sudoers rule."""
    with open(os.path.join(ETC, "sudoers.d", "zfs-" + service)) as f:
        rule = [line for line in f if line.startswith(service + " ")][0]
    command, args = rule.split("NOPASSWD: ", 1)[1].strip().split(" ", 1)
    return command, re.compile(args)


def filters_admit(filters, argv):
    try:
        wrapper.match_filter(filters, argv, exec_dirs=[os.path.dirname(sys.executable)])
    except (wrapper.NoFilterMatched, wrapper.FilterMatchNotExecutable):
        return False
    return True


def sudoers_admit(service, argv):
    # sudo joins the arguments with spaces and matches the whole line
    return bool(sudoers_rule(service)[1].match(
        " ".join(["/etc/%s/rootwrap.conf" % service] + argv)))


def admitted(filters, argv, service):
    return filters_admit(filters, argv) and sudoers_admit(service, argv)


class TestHelperCommand(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(config_fixture.Config(cfg.ConfigOpts())).conf
        self.conf.register_opt(cfg.StrOpt("rootwrap_config"))
        self.conf([], default_config_files=[])
        self.addCleanup(cfg.CONF.clear_default, "helper_command",
                        group="zfs_common_privileged")

    def daemon_argv(self):
        """What oslo.privsep runs (it appends the context and the socket)."""
        return privsep.zfs_pctxt.helper_command(SOCK)

    def test_through_the_service_rootwrap_with_its_config_files(self):
        self.conf.set_override("rootwrap_config", "/etc/manila/rootwrap.conf")
        self.conf.set_override("config_file", ["/etc/manila/manila.conf",
                                               "/etc/manila/zfs 1.conf"])
        rootwrap.use_service_rootwrap("manila-rootwrap", self.conf)
        self.assertEqual(["sudo", "manila-rootwrap", "/etc/manila/rootwrap.conf",
                          "privsep-helper", "--config-file", "/etc/manila/manila.conf",
                          "--config-file", "/etc/manila/zfs 1.conf",
                          "--privsep_context", "zfs_common.privsep.zfs_pctxt",
                          "--privsep_sock_path", SOCK], self.daemon_argv())

    def test_no_rootwrap_config_leaves_oslo_privseps_default(self):
        # manila has no default for rootwrap_config: "sudo manila-rootwrap  privsep-helper"
        # would be a broken command line
        self.assertIsNone(rootwrap.use_service_rootwrap("manila-rootwrap", self.conf))
        self.assertIsNone(privsep.zfs_pctxt.conf.helper_command)

    def test_the_operators_helper_command_wins(self):
        self.conf.set_override("rootwrap_config", "/etc/manila/rootwrap.conf")
        self.useFixture(config_fixture.Config()).config(
            helper_command="sudo /opt/wrap privsep-helper", group="zfs_common_privileged")
        rootwrap.use_service_rootwrap("manila-rootwrap", self.conf)
        self.assertEqual(["sudo", "/opt/wrap", "privsep-helper"], self.daemon_argv()[:3])

    def test_the_shipped_filters_admit_the_daemon_and_nothing_else(self):
        for service in ("manila", "cinder"):
            filters = load_filters(service)
            self.conf.set_override("rootwrap_config", "/etc/%s/rootwrap.conf" % service)
            for files in ([], ["/etc/%s/%s.conf" % (service, service)],
                          ["/etc/%s/%s.conf" % (service, service),
                           "/etc/%s/backends.d/zfs.conf" % service]):
                self.conf.set_override("config_file", files)
                rootwrap.use_service_rootwrap(service + "-rootwrap", self.conf)
                argv = self.daemon_argv()
                self.assertEqual(["sudo", service + "-rootwrap",
                                  "/etc/%s/rootwrap.conf" % service, "privsep-helper"],
                                 argv[:4])
                self.assertTrue(admitted(filters, argv[3:], service), argv)
            good = argv[3:]
            refused = [
                ["privsep-helper", "--config-file", "/etc/%s/../shadow" % service,
                 "--privsep_context", "zfs_common.privsep.zfs_pctxt",
                 "--privsep_sock_path", SOCK],
                ["privsep-helper", "--config-file", "/tmp/evil.conf",
                 "--privsep_context", "zfs_common.privsep.zfs_pctxt",
                 "--privsep_sock_path", SOCK],
                ["privsep-helper", "--privsep_context", "os_brick.privileged.default",
                 "--privsep_sock_path", SOCK],
                ["privsep-helper", "--privsep_context", "zfs_common.privsep.zfs_pctxt",
                 "--privsep_sock_path", SOCK, "--privsep_context", "x.y"],
                ["privsep-helper", "--privsep_context", "zfs_common.privsep.zfs_pctxt",
                 "--privsep_sock_path", "/etc/sudoers"],
                ["zfs", "destroy", "-r", "tank"],
                ["ssh", "-oProxyCommand=id", "x"],
            ]
            for argv in refused:
                self.assertFalse(filters_admit(filters, argv), argv)
                self.assertFalse(sudoers_admit(service, argv), argv)
            self.assertTrue(admitted(filters, good, service))
            self.assertEqual("/usr/bin/%s-rootwrap" % service, sudoers_rule(service)[0])
