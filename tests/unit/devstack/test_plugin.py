"""devstack/plugin.sh, settings and lib/hci, run phase by phase against a stub of
devstack's function library (tests/unit/devstack/devstack_stub.sh)."""
import configparser
import os
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "devstack_stub.sh")
SCRIPTS = [os.path.join(REPO, "devstack", name) for name in ("plugin.sh", "settings", "lib/hci")]
AIO_SCRIPTS = ("aio.sh", "scenario.sh", "tempest.sh", "tempest-job.sh", "test-resources.sh",
               "compute-restart.sh")


class PluginTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.log = os.path.join(self.tmp, "calls.log")
        self.bin = os.path.join(self.tmp, "bin")
        os.mkdir(self.bin)
        for service in ("nova", "cinder", "manila"):
            path = os.path.join(self.bin, service + "-rootwrap")
            with open(path, "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(path, 0o755)
        self.conf = {name: os.path.join(self.tmp, name + ".conf")
                     for name in ("nova", "nova-cpu", "cinder", "manila", "tempest")}

    def run_phases(self, phases, services="n-cpu,c-vol,m-shr,tempest", extra=""):
        script = ["set -eu", "source %s" % STUB, "DEST=/opt/stack", "HCI_DIR=%s" % REPO,
                  "source %s/devstack/settings" % REPO, extra]
        for phase in phases:
            script.append("source %s/devstack/plugin.sh %s" % (REPO, phase))
        env = dict(os.environ, STUB_LOG=self.log, STUB_BIN=self.bin,
                   ENABLED_SERVICES=services, NOVA_CONF=self.conf["nova"],
                   NOVA_CPU_CONF=self.conf["nova-cpu"], CINDER_CONF=self.conf["cinder"],
                   MANILA_CONF=self.conf["manila"], TEMPEST_CONFIG=self.conf["tempest"],
                   HCI_ZFS_SSH_HOST="192.0.2.10", HCI_QMP_ACCELERATOR="tcg")
        subprocess.run(["bash", "-c", "\n".join(script)], env=env, check=True)
        with open(self.log) if os.path.exists(self.log) else open(os.devnull) as f:
            return f.read().splitlines()

    def ini(self, name):
        c = configparser.RawConfigParser(strict=False)
        c.read(self.conf[name])
        return c

    def test_install(self):
        calls = self.run_phases(["stack install"])
        self.assertIn("define_plugin openstack-hci-drivers", calls)
        self.assertIn("setup_develop %s" % REPO, calls)

    def test_post_config(self):
        calls = self.run_phases(["stack post-config"])
        for conf in ("nova", "nova-cpu"):
            self.assertEqual("qmp.QMPDriver", self.ini(conf)["DEFAULT"]["compute_driver"])
            self.assertEqual("tcg", self.ini(conf)["qmp"]["accelerator"])
            self.assertEqual("qemu", self.ini(conf)["qmp"]["iscsi_initiator"])
        manila = self.ini("manila")
        self.assertEqual("zfs", manila["DEFAULT"]["enabled_share_backends"])
        self.assertEqual("zfs_manila.driver.ZFSShareDriver", manila["zfs"]["share_driver"])
        self.assertEqual("False", manila["zfs"]["driver_handles_share_servers"])
        self.assertEqual("192.0.2.10", manila["zfs"]["zfs_ssh_host"])
        for service in ("nova", "cinder", "manila"):
            self.assertIn("sudo %s/tools/install-privsep-config.sh %s %s/%s-rootwrap"
                          % (REPO, service, self.bin, service), calls)

    def test_post_config_skips_services_not_enabled(self):
        calls = self.run_phases(["stack post-config"], services="c-vol")
        self.assertFalse(os.path.exists(self.conf["nova"]))
        self.assertFalse(os.path.exists(self.conf["manila"]))
        installs = [c for c in calls if "install-privsep-config.sh" in c]
        self.assertEqual(["sudo %s/tools/install-privsep-config.sh cinder %s/cinder-rootwrap"
                          % (REPO, self.bin)], installs)

    def test_cinder_backend_type_zfs(self):
        # what devstack's lib/cinder does for CINDER_ENABLED_BACKENDS=zfs:zfs1
        self.run_phases([], extra="configure_cinder_backend_zfs zfs1; init_cinder_backend_zfs zfs1")
        zfs1 = self.ini("cinder")["zfs1"]
        self.assertEqual("zfs_cinder.driver.ZFSVolumeDriver", zfs1["volume_driver"])
        self.assertEqual("zfs1", zfs1["volume_backend_name"])
        self.assertEqual("tank/cinder", zfs1["zfs_volume_root"])
        self.assertEqual("192.0.2.10", zfs1["zfs_ssh_host"])
        self.assertEqual("lioadm", zfs1["target_helper"])

    def test_test_config(self):
        self.run_phases(["stack test-config"])
        tempest = self.ini("tempest")
        self.assertEqual("nfs", tempest["share"]["enable_protocols"])
        self.assertEqual("False", tempest["share"]["multitenancy_enabled"])
        for flag in ("run_snapshot_tests", "run_revert_to_snapshot_tests", "run_extend_tests",
                     "run_shrink_tests", "run_manage_unmanage_tests"):
            self.assertEqual("True", tempest["share"][flag], flag)
        self.assertEqual("False", tempest["compute-feature-enabled"]["live_migration"])
        self.assertEqual("True", tempest["compute-feature-enabled"]["volume_multiattach"])

    def test_test_config_without_tempest(self):
        self.run_phases(["stack test-config"], services="n-cpu")
        self.assertFalse(os.path.exists(self.conf["tempest"]))

    def test_clean(self):
        calls = self.run_phases(["clean"])
        for service in ("nova", "cinder", "manila"):
            self.assertIn("sudo %s/tools/install-privsep-config.sh --remove %s"
                          % (REPO, service), calls)

    def test_hci_iniset(self):
        # lib/hci's iniset for callers outside devstack: keeps what the file has, the
        # options' case, makes a missing section, sets DEFAULT without a section of its own
        path = self.conf["nova"]
        with open(path, "w") as f:
            f.write("[DEFAULT]\ndebug = True\n[qmp]\nextra_args = -S\n")
        script = ["set -eu", "HCI_DIR=%s" % REPO, "source %s/devstack/lib/hci" % REPO,
                  "hci_iniset %s DEFAULT host aio" % path,
                  "hci_iniset %s qmp accelerator tcg" % path,
                  "hci_iniset %s qmp extra_args '-S -no-shutdown'" % path,
                  "hci_iniset %s hci_guests allowed_binaries /usr/bin/qemu-system-x86_64" % path,
                  "hci_iniset %s oslo_limit endpointID x" % path]
        subprocess.run(["bash", "-c", "\n".join(script)], check=True,
                       env=dict(os.environ, HCI_QMP_ACCELERATOR="tcg"))
        # DEFAULT read as a section like the others (not folded into each)
        c = configparser.RawConfigParser(strict=False, default_section="-")
        c.optionxform = str
        c.read(path)
        self.assertEqual({"debug": "True", "host": "aio"}, dict(c["DEFAULT"]))
        self.assertEqual({"extra_args": "-S -no-shutdown", "accelerator": "tcg"}, dict(c["qmp"]))
        self.assertEqual("/usr/bin/qemu-system-x86_64", c["hci_guests"]["allowed_binaries"])
        self.assertEqual("x", c["oslo_limit"]["endpointID"])

    @unittest.skipUnless(shutil.which("shellcheck"), "shellcheck not installed")
    def test_shellcheck(self):
        subprocess.run(["shellcheck", "-x", "-s", "bash"] + SCRIPTS
                       + [os.path.join(REPO, "tools", "aio", name) for name in AIO_SCRIPTS]
                       + [os.path.join(REPO, "tools", "demo.sh"), STUB],
                       cwd=REPO, check=True)
