"""Cinder ``iscsi`` volumes attached by QEMU's own iSCSI initiator (``[qmp]
iscsi_initiator = qemu``) through the real nova services, against a userspace iSCSI target
(Debian's tgtd, CHAP) on loopback started by the test: boot from an iSCSI volume, hot-plug
a second one, data both ways, a stop/start, detach; no session and no secret left; the
CHAP password nowhere in clear (command line, instance record, logs)."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import os
import shutil

from nova import context as nova_context
from nova import objects
import nova.conf

from nova_common import instance_dir
from nova_common import record
from nova_qmp import iscsi
from nova_qmp import qemu
from tests.common import tgt

BLOCK_ISCSI = "/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so"
PASSWORD = "Chap-Secret-4711"
MARKER = b"iscsi-volume-marker-0123456789\n"


class TestQemuISCSI(base.QMPServerTestBase):
    def setUp(self):
        if not tgt.available() or not os.path.exists(BLOCK_ISCSI):
            self.skipTest("needs root, tgt and qemu-block-extra (tools/bootstrap.sh)")
        super().setUp()
        self.flags(iscsi_initiator="qemu", group="qmp")

    def test_boot_from_iscsi_attach_detach_with_chap(self):
        root_vol = self.cinder.IMAGE_BACKED_VOL
        data_vol = "3c1e9a52-77d4-4f0b-9e55-61c0a4b2d8f3"
        work = os.path.join(self.instances, "tgt")
        os.mkdir(work)
        root_lun = os.path.join(work, "root.img")
        shutil.copyfile(self.guest.disk_raw, root_lun)
        data_lun = os.path.join(work, "data.img")
        with open(data_lun, "wb") as f:
            f.write(MARKER)
            f.truncate(32 * 1024 ** 2)
        target = self.useFixture(tgt.Target(work, "iqn.2026-12.org.example:cloud",
                                            [root_lun, data_lun], user="nova-chap",
                                            password=PASSWORD))
        self.cinder.VOLUME_CONNECTION_INFO = dict(self.cinder.VOLUME_CONNECTION_INFO, **{
            root_vol: target.connection_info(root_vol, lun=1),
            data_vol: target.connection_info(data_vol, lun=2)})

        server = self._build_server(image_uuid="", networks="none")
        server["block_device_mapping_v2"] = [
            {"boot_index": 0, "uuid": root_vol, "source_type": "volume",
             "destination_type": "volume"}]
        server = self.api.post_server({"server": server})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.wait_console(server, self.guest.marker("ready"))
        # this host has no /etc/iscsi/initiatorname.iscsi: cinder still got a name
        connector = next(iter(self.cinder.volume_to_attachment[root_vol].values()))[
            "connector"]
        self.assertEqual(iscsi.initiator_name(nova.conf.CONF), connector["initiator"])
        self.assertTrue(connector["initiator"].startswith("iqn."))
        self.assertEqual(1, self._sessions(target))      # the guest's own, no host one

        conn = self.serial(server)
        before = len(self.console(server))
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": data_vol}})
        self.wait_console(server, "ADDED DISK vdb sectors=65536", since=before)
        got = self.shell(conn, "dd if=/dev/vdb bs=31 count=1 2>/dev/null; "
                         "echo rd-$((2+2))", "rd-4").decode()
        self.assertIn(MARKER.decode().strip(), got)
        self.shell(conn, "echo from-guest-$((6*7)) | dd of=/dev/vdb bs=512 seek=1 "
                   "conv=fsync 2>/dev/null; echo wr-$((3+3))", "wr-6")
        with open(data_lun, "rb") as f:
            f.seek(512)
            self.assertEqual(b"from-guest-42\n", f.read(14))
        self.assertEqual(2, self._sessions(target))

        # a stop/start: both volumes come back from the command line (encrypted secret)
        server = self._stop_server(server)
        before = len(self.console(server))
        server = self._start_server(server)
        out = self.wait_console(server, self.guest.marker("ready"), since=before)
        self.assertIn("DISK vdb sectors=65536", out[before:])
        argv = self.qemu_argv(server)
        self.assertIn("-object", argv)
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        with open(idir.file(record.FILE)) as f:
            saved = f.read()
        self.assertIn(target.portal, saved)
        for where in (" ".join(argv), saved, self.stdlog.logger.output):
            self.assertNotIn(PASSWORD, where)

        before = len(self.console(server))
        self.api.delete_server_volume(server["id"], data_vol)
        self.wait_console(server, "REMOVED DISK vdb", since=before)
        self._wait_for_volume_detach(server["id"], data_vol)
        self.assertEqual([root_vol], list(record.read(idir.path).volumes))
        node = qemu.volume_ids(data_vol)[0]
        drv = self.compute.manager.driver
        guest = drv._guest(objects.Instance.get_by_uuid(
            nova_context.get_admin_context(), server["id"]))
        objs = {o["name"] for o in drv.hv._qmp(guest, "qom-list", path="/objects")}
        self.assertNotIn(iscsi.secret_id(node), objs)
        self.assertIn(iscsi.secret_id(qemu.volume_ids(root_vol)[0]), objs)
        nodes = {n.get("node-name") for n in drv.hv._qmp(guest, "query-named-block-nodes")}
        self.assertNotIn(node, nodes)
        self.assertEqual(1, self._sessions(target))      # the data volume's is closed

        self._delete_server(server)
        self.assert_nothing_left(server)
        self.assertEqual(0, self._sessions(target))

    @staticmethod
    def _sessions(target):
        """iSCSI sessions (I_T nexus) the target serves now."""
        return target.adm("--op", "show", "--mode", "target").count("I_T nexus:")

