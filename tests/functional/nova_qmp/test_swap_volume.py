"""Swap volume (cinder's migration or retype of an attached volume) through the real nova
services: ``PUT /servers/{id}/os-volume_attachments/{old}`` with the new volume, as
cinder asks nova. The guest's disk is mirrored (``blockdev-mirror``) to the new volume
and pivoted while the guest keeps writing: what it wrote before and during the swap is on
the new volume, later writes go there only, and the disk detaches afterwards."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import os
import re
import time

from nova_common import record

MiB = 1024 * 1024


class TestSwapVolume(base.QMPServerTestBase):
    def _volume(self, name):
        path = os.path.join(self.instances, name + ".img")
        with open(path, "wb") as f:
            f.truncate(32 * MiB)
        return path

    @staticmethod
    def _counter(path):
        with open(path, "rb") as f:
            f.seek(2 * MiB)
            found = re.match(rb"n=(\d+)\n", f.read(32))
        return int(found.group(1)) if found else 0

    def _wait_counter(self, path, at_least, timeout=120):
        deadline = time.monotonic() + timeout
        while self._counter(path) < at_least:
            if time.monotonic() > deadline:
                self.fail("the guest's counter in %s stays at %d (< %d)"
                          % (path, self._counter(path), at_least))
            time.sleep(0.2)

    def test_swap_while_the_guest_writes(self):
        # the fixture's volumes that cinder is migrating (nova refuses others)
        old_id, new_id = self.cinder.SWAP_OLD_VOL, self.cinder.SWAP_NEW_VOL
        old_path, new_path = self._volume("old"), self._volume("new")
        self.cinder.VOLUME_CONNECTION_INFO = dict(self.cinder.VOLUME_CONNECTION_INFO, **{
            old_id: {"driver_volume_type": "local", "data": {"device_path": old_path}},
            new_id: {"driver_volume_type": "local", "data": {"device_path": new_path}}})
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        conn = self.serial(server)
        before = len(self.console(server))
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": old_id}})
        self.wait_console(server, "ADDED DISK vdb sectors=65536", since=before)
        self.shell(conn, "echo before-swap-$((6*7)) | dd of=/dev/vdb bs=1M seek=1 "
                   "conv=fsync 2>/dev/null; echo wr-$((1+1))", "wr-2")
        # a writer that keeps going through the swap: a counter at 2 MiB
        self.shell(conn, "(i=0; while :; do i=$((i+1)); echo n=$i | dd of=/dev/vdb "
                   "bs=1M seek=2 conv=fsync 2>/dev/null; done) & echo bg-$((2+3))",
                   "bg-5")
        self._wait_counter(old_path, 3)               # it writes to the old volume

        self.api.put_server_volume(server["id"], old_id, new_id)
        deadline = time.monotonic() + 180
        while True:
            ids = [a["volumeId"] for a in
                   self.api.get_server_volumes(server["id"])]
            if ids == [new_id]:
                break
            self.assertLess(time.monotonic(), deadline, ids)
            time.sleep(0.5)
        self._wait_counter(new_path, self._counter(new_path) + 3)  # on, to the new one
        got = self.shell(conn, "kill $!; sleep 1; dd if=/dev/vdb bs=1M skip=2 count=1 "
                         "2>/dev/null | head -c 12; echo; echo st-$((3+4))", "st-7").decode()
        last = int(re.search(r"n=(\d+)", got).group(1))
        # the guest's view is the new volume's content; the old one stopped at the pivot
        self.assertEqual(last, self._counter(new_path))
        self.assertLess(self._counter(old_path), last)
        with open(new_path, "rb") as f:
            f.seek(MiB)
            self.assertEqual(b"before-swap-42\n", f.read(15))
        idir_volumes = record.read(os.path.join(self.instances, server["id"])).volumes
        self.assertEqual([new_id], list(idir_volumes))
        self.assertEqual(new_path, idir_volumes[new_id]["path"])

        # the swapped disk detaches like any other
        before = len(self.console(server))
        self.api.delete_server_volume(server["id"], new_id)
        self.wait_console(server, "REMOVED DISK vdb", since=before)
        self._wait_for_volume_detach(server["id"], new_id)
        self._delete_server(server)
        self.assert_nothing_left(server)
