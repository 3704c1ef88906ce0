"""Names and checks of the volumes the LXC driver puts into containers."""
import os
import tempfile

import fixtures
from nova import exception
import testtools

from nova_lxc import blockdev

NAME = "0f0e2a4c-7a8b-4c6d-9e0f-1a2b3c4d5e6f"
VOLUME = "6b0d5c8e-3f21-4a8e-9a57-2c4d8e1f0a21"


class TestNodeName(testtools.TestCase):
    def test_slots_name_vdb_onwards(self):
        self.assertEqual(["vdb", "vdc", "vdz", "vdaa", "vdab"],
                         [blockdev.node_name(s) for s in (0, 1, 24, 25, 26)])
        for slot in range(0, 200):
            self.assertTrue(blockdev.NODE.match(blockdev.node_name(slot)))


class TestChecks(testtools.TestCase):
    def test_refused_before_anything_is_done(self):
        with tempfile.NamedTemporaryFile() as f:       # a file, not a block device
            for args in ((NAME, "/tmp", f.name, "vdb", VOLUME),
                         (NAME, "/tmp", "/dev/null", "vdb", VOLUME),   # a char device
                         (NAME, "/tmp", "/dev/loop0", "../etc/x", VOLUME),
                         (NAME, "/tmp", "/dev/loop0", "vda", VOLUME),
                         (NAME, "/tmp", "/dev/loop0", "vdb", "x y"),
                         ("../x", "/tmp", "/dev/loop0", "vdb", VOLUME),
                         (NAME, "tmp", "/dev/loop0", "vdb", VOLUME)):
                if args[2] == "/dev/loop0" and not os.path.exists("/dev/loop0"):
                    continue
                self.assertRaises(exception.InvalidInput, blockdev.detach, *args, None)
                self.assertRaises(exception.InvalidInput, blockdev.attach, *args, None)


class _Container:
    """What _devices needs of liblxc's Container: set_cgroup_item, recorded."""

    name = NAME

    def __init__(self, ok=True):
        self.ok, self.items = ok, []

    def set_cgroup_item(self, key, value):
        self.items.append((key, value))
        return self.ok


class TestDeviceRules(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.st = os.stat("/dev/null")      # any device number will do
        self.rule = "b %d:%d rwm" % (os.major(self.st.st_rdev), os.minor(self.st.st_rdev))

    def test_rule_set_on_v1_and_v2_hosts(self):
        # On a unified host liblxc turns devices.allow/deny into a BPF program rule; the
        # node must be allowed there too, not only on v1.
        for version in (1, 2):
            self.useFixture(fixtures.MockPatch("nova_lxc.config.host_cgroup_version",
                                               return_value=version))
            c = _Container()
            blockdev._devices(c, "devices.allow", self.st)
            blockdev._devices(c, "devices.deny", self.st)
            self.assertEqual([("devices.allow", self.rule), ("devices.deny", self.rule)],
                             c.items, "cgroup v%d" % version)

    def test_refused_rule_is_an_error(self):
        self.assertRaises(blockdev.container.ContainerError, blockdev._devices,
                          _Container(ok=False), "devices.allow", self.st)
