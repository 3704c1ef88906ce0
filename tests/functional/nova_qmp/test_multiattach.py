"""A multiattach volume used by two servers at once through the real nova services (the
cinder fixture's multiattach volume, a file given as a ``local`` connection): both QEMUs
open it (``share-rw=on``: no image-lock clash), what one guest writes the other reads, and
a detach from one leaves the other using it."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import os

from nova_common import record
from tests.common import nova_functional

MiB = 1024 * 1024


class TestMultiattach(base.QMPServerTestBase):
    def test_two_servers_share_a_volume_and_one_detaches(self):
        self.assertTrue(self.compute.manager.driver.capabilities["supports_multiattach"])
        volume_id = self.cinder.MULTIATTACH_VOL
        path = nova_functional.file_volume(
            self, volume_id, os.path.join(self.instances, "shared.img"), 16 * MiB)
        servers = [self.boot("qcow2"), self.boot("raw")]
        conns = []
        for server in servers:
            self.wait_console(server, self.guest.marker("ready"))
            conns.append(self.serial(server))
        for server in servers:
            before = len(self.console(server))
            self.api.post_server_volume(server["id"], {"volumeAttachment": {
                "volumeId": volume_id}})
            self.wait_console(server, "ADDED DISK vdb sectors=32768", since=before)
            meta = record.read(os.path.join(self.instances, server["id"]))
            self.assertTrue(meta.volumes[volume_id]["shared"])

        a, b = conns
        self.shell(a, "echo from-a-$((6*7)) | dd of=/dev/vdb bs=1M seek=1 conv=fsync "
                   "2>/dev/null; echo wa-$((1+1))", "wa-2")
        got = self.shell(b, "dd if=/dev/vdb bs=1M skip=1 count=1 2>/dev/null | head -c 10;"
                         " echo; echo rb-$((2+2))", "rb-4").decode()
        self.assertIn("from-a-42", got)

        before = len(self.console(servers[0]))
        self.api.delete_server_volume(servers[0]["id"], volume_id)
        self.wait_console(servers[0], "REMOVED DISK vdb", since=before)
        self._wait_for_volume_detach(servers[0]["id"], volume_id)
        # the other server keeps using it
        self.shell(b, "echo from-b-$((7*6)) | dd of=/dev/vdb bs=1M seek=2 conv=fsync "
                   "2>/dev/null; echo wb-$((3+3))", "wb-6")
        with open(path, "rb") as f:
            f.seek(MiB)
            self.assertEqual(b"from-a-42\n", f.read(10))
            f.seek(2 * MiB)
            self.assertEqual(b"from-b-42\n", f.read(10))
        meta = record.read(os.path.join(self.instances, servers[1]["id"]))
        self.assertIn(volume_id, meta.volumes)
        for server in servers:
            self._delete_server(server)
            self.assert_nothing_left(server)
