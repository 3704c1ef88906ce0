"""CloudHypervisorDriver through the real nova services (nova's functional framework),
against the stand-in VMM (or a real cloud-hypervisor with HCI_CH_BINARY): guests boot for
real (QEMU under TCG behind the stand-in) and their serial output comes back through the
API as proof. Runs in nova's eventlet mode and in native-threads mode
(OS_NOVA_DISABLE_EVENTLET_PATCHING=1); tox -e functional-ch runs both."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_cloudhypervisor import base  # noqa: I001  isort:skip
import os
import signal

from nova_cloudhypervisor import process
from nova_common import instance_dir


class TestServerLifecycle(base.CHServerTestBase):
    def test_direct_kernel_boot_stop_start_pause_reboot_delete(self):
        server = self.boot(image=self.images["kernel"])
        self.wait_console(server, self.guest.marker("ready"))
        pid = self.vmm_pid(server)
        self.assertTrue(process.alive(pid, server["id"]))

        server = self._stop_server(server)
        self.assertFalse(process.alive(pid, server["id"]))
        server = self._start_server(server)
        self.assertTrue(process.alive(self.vmm_pid(server), server["id"]))

        self.api.post_server_action(server["id"], {"pause": None})
        server = self._wait_for_state_change(server, "PAUSED")
        self.api.post_server_action(server["id"], {"unpause": None})
        server = self._wait_for_state_change(server, "ACTIVE")

        before = len(self.console(server))
        self._reboot_server(server, hard=True)
        self.wait_console(server, self.guest.marker("ready"), since=before)

        # soft: ACPI power button, the guest powers off (its VMM ends), a new VMM boots it
        before = len(self.console(server))
        self._reboot_server(server)
        out = self.wait_console(server, self.guest.marker("ready"), since=before)
        self.assertIn("HCIGUEST POWEROFF", out[before:])

        self._delete_server(server)
        self.assertEqual([], instance_dir.list_uuids(self.instances))
        self.assert_nothing_left(server)

    def test_firmware_boot_and_a_killed_vmm_shows_shutoff(self):
        server = self.boot("raw")
        self.wait_console(server, self.guest.marker("ready"))
        os.kill(self.vmm_pid(server), signal.SIGKILL)
        # the event watcher sees the VMM gone: nova syncs the power state at once
        server = self._wait_for_state_change(server, "SHUTOFF")
        server = self._start_server(server)
        self.wait_console(server, self.guest.marker("ready"))
        self._delete_server(server)
        self.assert_nothing_left(server)
