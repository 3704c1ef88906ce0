"""Encrypted volumes (cinder's front-end LUKS) through the real nova services, real QEMU
under TCG and nova's own key manager (``ConfKeyManager`` with a fixed key): a blank
volume gets its LUKS header from QEMU on the first attach, the guest sees and writes
plaintext while the file behind the volume holds only ciphertext, a stop/start opens it
again from the command line (the passphrase nowhere in clear: record, argv, logs), a
detach leaves no secret or block node in QEMU, and the wrong key is refused with nothing
left behind."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import hashlib
import os
import time

from nova import context as nova_context
from nova import objects
from nova.volume import cinder

from nova_common import instance_dir
from nova_common import record
from nova_qmp import encryption
from nova_qmp import qemu

MiB = 1024 * 1024
KEY = "1f" * 16 + "a7" * 16            # the key manager's 256-bit key, in hex
OTHER_KEY = "5c" * 32
KEY_ID = "00000000-0000-0000-0000-000000000000"   # ConfKeyManager's one key
VOLUME = "8d7b0c3e-5a41-4c2f-9f6e-2b1d3c4e5f60"
LUKS_MAGIC = b"LUKS\xba\xbe"


class TestEncryptedVolumes(base.QMPServerTestBase):
    def setUp(self):
        super().setUp()
        self.flags(backend="nova.keymgr.conf_key_mgr.ConfKeyManager", fixed_key=KEY,
                   group="key_manager")
        self.metadata = {"encryption_key_id": KEY_ID, "provider": "luks",
                         "cipher": "aes-xts-plain64", "key_size": 256,
                         "control_location": "front-end"}
        # cinder's answer for the volume type (the fixture has no encrypted types)
        self.stub_out("nova.volume.cinder.API.get_volume_encryption_metadata",
                      lambda _api, _ctx, volume_id: dict(self.metadata)
                      if volume_id == VOLUME else {})
        self.assertTrue(hasattr(cinder.API, "get_volume_encryption_metadata"))
        self.path = os.path.join(self.instances, "encrypted.img")
        with open(self.path, "wb") as f:
            f.truncate(16 * MiB)
        self.cinder.VOLUME_CONNECTION_INFO = dict(self.cinder.VOLUME_CONNECTION_INFO, **{
            VOLUME: {"driver_volume_type": "local",
                     "data": {"device_path": self.path, "encrypted": True}}})

    def _hv_guest(self, server):
        drv = self.compute.manager.driver
        return drv.hv, drv._guest(objects.Instance.get_by_uuid(
            nova_context.get_admin_context(), server["id"]))

    def _qemu_has(self, server):
        """(QEMU secret objects, block node names) the server's QEMU has now."""
        hv, guest = self._hv_guest(server)
        objs = {o["name"] for o in hv._qmp(guest, "qom-list", path="/objects")}
        nodes = {n.get("node-name") for n in hv._qmp(guest, "query-named-block-nodes")}
        return objs, nodes

    def _attach(self, server):
        before = len(self.console(server))
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": VOLUME}})
        return self.wait_console(server, "ADDED DISK vdb", since=before)

    def _file(self):
        with open(self.path, "rb") as f:
            return f.read()

    def test_luks_volume_holds_ciphertext_and_survives_a_restart(self):
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        conn = self.serial(server)
        self._attach(server)
        raw = self._file()
        self.assertTrue(raw.startswith(LUKS_MAGIC), raw[:16])     # formatted by QEMU
        self.assertEqual(16 * MiB, len(raw))                       # at its full size
        # the guest writes a pattern the command line does not contain literally
        self.shell(conn, "yes plain-$((6*7))-text | head -c 1048576 | dd of=/dev/vdb "
                   "bs=1M seek=1 conv=fsync 2>/dev/null; echo wr-$((1+1))", "wr-2")
        raw = self._file()
        self.assertTrue(raw.startswith(LUKS_MAGIC))
        self.assertNotIn(b"plain-42-text", raw)
        got = self.shell(conn, "dd if=/dev/vdb bs=1M skip=1 count=1 2>/dev/null | "
                         "head -c 28; echo; echo rd-$((2+2))", "rd-4").decode()
        self.assertEqual(2, got.count("plain-42-text"), got)

        passphrase = KEY                # os-brick's: the key's bytes, hex
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        with open(idir.file(record.FILE)) as f:
            saved = f.read()
        self.assertIn('"encryption"', saved)
        self.assertEqual("luks", record.read(idir.path).volumes[VOLUME]["encryption"][
            "format"])

        # a stop/start: the volume comes back from the command line, data intact
        server = self._stop_server(server)
        before = len(self.console(server))
        server = self._start_server(server)
        out = self.wait_console(server, self.guest.marker("ready"), since=before)
        self.assertIn("DISK vdb", out[before:])
        argv = self.qemu_argv(server)
        self.assertIn('"driver": "luks"', " ".join(argv))
        with open(idir.file(qemu.HYPERVISOR_LOG), errors="replace") as f:
            hvlog = f.read()
        with open(idir.file(record.FILE)) as f:
            saved = f.read()
        for where in (" ".join(argv), saved, self.stdlog.logger.output, hvlog):
            self.assertNotIn(passphrase, where)
        conn = self.serial(server)
        got = self.shell(conn, "dd if=/dev/vdb bs=1M skip=1 count=1 2>/dev/null | "
                         "head -c 28; echo; echo rs-$((3+3))", "rs-6").decode()
        self.assertEqual(2, got.count("plain-42-text"), got)

        # detach: no secret, no node left in QEMU; the header stays on the volume
        node = qemu.volume_ids(VOLUME)[0]
        objs, nodes = self._qemu_has(server)
        self.assertIn(encryption.secret_id(node), objs)
        before = len(self.console(server))
        self.api.delete_server_volume(server["id"], VOLUME)
        self.wait_console(server, "REMOVED DISK vdb", since=before)
        self._wait_for_volume_detach(server["id"], VOLUME)
        objs, nodes = self._qemu_has(server)
        self.assertNotIn(encryption.secret_id(node), objs)
        self.assertFalse({node, node + "f"} & nodes, nodes)
        self.assertNotIn(VOLUME, record.read(idir.path).volumes)

        # re-attached: read back again (an existing header is not formatted again)
        self._attach(server)
        got = self.shell(conn, "dd if=/dev/vdb bs=1M skip=1 count=1 2>/dev/null | "
                         "head -c 28; echo; echo ra-$((4+4))", "ra-8").decode()
        self.assertEqual(2, got.count("plain-42-text"), got)
        self._delete_server(server)
        self.assert_nothing_left(server)

    def _wait_logged(self, text):
        deadline = time.monotonic() + 120
        while text not in self.stdlog.logger.output:
            self.assertLess(time.monotonic(), deadline, "%r not logged" % text)
            time.sleep(0.5)

    def test_unsupported_format_and_wrong_key_are_refused_leaving_nothing(self):
        server = self.boot("raw")
        self.wait_console(server, self.guest.marker("ready"))
        self.metadata["provider"] = "luks2"          # QEMU reads LUKS version 1 only
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": VOLUME}})
        self._wait_logged("Volume encryption is not supported for luks2")
        self._wait_for_volume_detach(server["id"], VOLUME)
        self.assertEqual(b"\0" * 4096, self._file()[:4096])         # not formatted

        self.metadata["provider"] = "nova.volume.encryptors.luks.LuksEncryptor"
        self._attach(server)                      # formatted with KEY
        self.assertTrue(self._file().startswith(LUKS_MAGIC))
        self.api.delete_server_volume(server["id"], VOLUME)
        self._wait_for_volume_detach(server["id"], VOLUME)
        digest = hashlib.sha256(self._file()).hexdigest()

        self.flags(fixed_key=OTHER_KEY, group="key_manager")
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": VOLUME}})
        self._wait_logged("cannot open the encrypted volume")
        self._wait_for_volume_detach(server["id"], VOLUME)
        self.assertEqual(digest, hashlib.sha256(self._file()).hexdigest())   # untouched
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        self.assertNotIn(VOLUME, record.read(idir.path).volumes)
        node = qemu.volume_ids(VOLUME)[0]
        objs, nodes = self._qemu_has(server)
        self.assertNotIn(encryption.secret_id(node), objs)
        self.assertFalse({node, node + "f"} & nodes, nodes)
        hv, guest = self._hv_guest(server)
        self.assertEqual([], hv._qmp(guest, "query-jobs"))
        self._delete_server(server)
        self.assert_nothing_left(server)
