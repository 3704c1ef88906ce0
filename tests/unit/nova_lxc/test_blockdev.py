"""Names and checks of the volumes the LXC driver puts into containers."""
import os
import tempfile

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
