"""The image cache through the real nova services: nova-compute's image cache pass
removes a base no server uses once it has been unused long enough, never one in use;
and with ``force_raw_images = False`` a qcow2 base is kept as qcow2 and boots."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import json
import os
import subprocess
import time

from nova import context as nova_context

from nova_common import disks
from nova_common import instance_dir
from nova_qmp import qemu

DAY = 24 * 3600


def img_info(path):
    return json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", path],
                                     check=True, capture_output=True, text=True).stdout)


class TestImageCache(base.QMPServerTestBase):
    def _base(self, fmt):
        return os.path.join(self.instances, "_base", disks.base_name(self.images[fmt]))

    def _cache_pass(self):
        self.compute.manager._run_image_cache_manager_pass(
            nova_context.get_admin_context())

    def _age(self, path, seconds):
        then = time.time() - seconds
        os.utime(path, (then, then))

    def test_unused_base_removed_after_its_minimum_age_used_one_kept(self):
        self.assertTrue(self.compute.manager.driver.capabilities["has_imagecache"])
        kept = self.boot("raw")
        gone = self.boot("qcow2")
        for s in (kept, gone):
            self.wait_console(s, self.guest.marker("ready"))
        self._delete_server(gone)
        used, unused = self._base("raw"), self._base("qcow2")
        self.assertTrue(os.path.exists(unused))

        # unused for less than remove_unused_original_minimum_age_seconds: kept
        self._age(unused, DAY - 600)
        self._cache_pass()
        self.assertTrue(os.path.exists(unused))

        # unused for longer: removed; the one in use stays, however old, and its age
        # starts again (it is in use now)
        self._age(unused, DAY + 600)
        self._age(used, 10 * DAY)
        self._cache_pass()
        self.assertFalse(os.path.exists(unused))
        self.assertTrue(os.path.exists(used))
        self.assertLess(time.time() - os.path.getmtime(used), DAY)

        # the server still boots from its base (hard reboot: a fresh QEMU on the disk)
        before = len(self.console(kept))
        self._reboot_server(kept, hard=True)
        self.wait_console(kept, self.guest.marker("ready"), since=before)

        # with removal turned off, nothing goes
        self._delete_server(kept)
        self.flags(remove_unused_base_images=False, group="image_cache")
        self._age(used, 10 * DAY)
        self._cache_pass()
        self.assertTrue(os.path.exists(used))
        self.flags(remove_unused_base_images=True, group="image_cache")
        self._age(used, 10 * DAY)
        self._cache_pass()
        self.assertFalse(os.path.exists(used))

    def test_rescue_disk_keeps_its_base(self):
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        self.api.post_server_action(server["id"], {"rescue": {
            "rescue_image_ref": self.images["raw"]}})
        server = self._wait_for_state_change(server, "RESCUE", max_retries=240)
        # the rescue image is no server's image: its base is in use by the rescue disk
        rescue_base = self._base("raw")
        self._age(rescue_base, 10 * DAY)
        self._cache_pass()
        self.assertTrue(os.path.exists(rescue_base))
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_force_raw_images_off_boots_from_a_qcow2_base(self):
        self.flags(force_raw_images=False)
        server = self.boot("qcow2")
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("DISK vda sectors=%d" % (2 * 1024 * 1024), out)   # root_gb 1
        self.assertEqual("qcow2", img_info(self._base("qcow2"))["format"])
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        overlay = img_info(idir.file(qemu.ROOT_DISK))
        self.assertEqual((self._base("qcow2"), "qcow2"),
                         (overlay["backing-filename"], overlay["backing-filename-format"]))
        self._delete_server(server)
        self.assert_nothing_left(server)
