"""Starts rebuild the guest from the current configuration and what nova gives (power on,
hard reboot), and a clean shutdown asks again when the guest ignores the first request:
through the real nova services, QEMU under TCG."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import os

import fixtures
from os_brick.initiator.connectors import local

from tests.common import nova_functional

BALLOON = "virtio-balloon-pci,id=balloon0"


class TestRebuild(base.QMPServerTestBase):
    def test_a_changed_qmp_option_reaches_a_server_after_stop_start(self):
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        self.assertNotIn(BALLOON, self.qemu_argv(server))
        self.flags(extra_args="-device " + BALLOON, group="qmp")
        server = self._stop_server(server)
        server = self._start_server(server)
        self.assertIn(BALLOON, self.qemu_argv(server))
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_hard_reboot_connects_the_volumes_again(self):
        """The volume's host connection is made again (os-brick's connect_volume, here
        the ``local`` connector) and the rebuilt guest has the disk."""
        connects = []
        real = local.LocalConnector.connect_volume

        def counting(connector, data):
            connects.append(data["device_path"])
            return real(connector, data)

        self.useFixture(fixtures.MonkeyPatch(
            "os_brick.initiator.connectors.local.LocalConnector.connect_volume", counting))
        volume_id = "7c1e9a2b-4d3f-4e5a-8b6c-0d9e8f7a6b5c"
        path = nova_functional.file_volume(
            self, volume_id, os.path.join(self.instances, volume_id + ".img"), 16 * 1024 ** 2)
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": volume_id}})
        self.wait_console(server, "ADDED DISK vdb sectors=32768")
        self.assertEqual([path], connects)
        before = len(self.console(server))
        self._reboot_server(server, hard=True)
        out = self.wait_console(server, self.guest.marker("ready"), since=before)
        self.assertEqual([path, path], connects)
        self.assertIn("DISK vdb sectors=32768", out[before:])
        self.api.delete_server_volume(server["id"], volume_id)
        self._wait_for_volume_detach(server["id"], volume_id)
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_clean_shutdown_presses_the_power_button_again(self):
        """The guest ignores the first ACPI power button press; nova's stop retries
        every 10 s (SHUTDOWN_RETRY_INTERVAL) within shutdown_timeout, so the guest
        powers itself off instead of being killed."""
        self.flags(shutdown_timeout=40)
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        conn = self.serial(server)
        self.shell(conn, "", "#")
        script = ("if [ -e /run/pressed ]; then kill -PWR 1; else touch /run/pressed; "
                  "echo HCIGUEST IGNORED > /dev/console; fi")
        self.shell(conn, "echo '#!/bin/sh' > /tmp/b; echo '%s' >> /tmp/b; chmod +x /tmp/b;"
                   " mv /tmp/b /etc/acpi/PWRF/00000080; echo SET-$((1+1))" % script,
                   "SET-2")
        conn.close()
        before = len(self.console(server))
        self._stop_server(server, wait_for_stop=False)
        server = self._wait_for_state_change(server, "SHUTOFF", max_retries=120)
        out = self.console(server)[before:]
        self.assertIn("HCIGUEST IGNORED", out)
        self.assertIn(self.guest.marker("poweroff"), out.split("HCIGUEST IGNORED", 1)[1])
        self._delete_server(server)
        self.assert_nothing_left(server)

