"""The interactive serial console (nova's serial_console feature) through the real nova
services: the console URL from nova's API, the TCP endpoint the driver gives nova's
serial proxy ([serial_console]proxyclient_address and port_range), bytes exchanged with
the guest's shell on ttyS0, while the console log (nova's console output) keeps every
boot's output, across a reboot, a stop/start and a suspend/resume."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_cloudhypervisor import base  # noqa: I001  isort:skip
import time

from nova import context as nova_context
from nova import exception
from nova import objects
import nova.conf

from nova_common import ports


class TestSerialConsole(base.CHServerTestBase):
    def test_shell_on_ttys0_through_nova_s_serial_endpoint(self):
        server = self.boot(image=self.images["kernel"])
        self.wait_console(server, self.guest.marker("ready"))
        ctx = nova_context.get_admin_context()
        instance = objects.Instance.get_by_uuid(ctx, server["id"])
        endpoint = self.compute.manager.driver.get_serial_console(ctx, instance)
        self.assertEqual("127.0.0.1", endpoint.host)
        self.assertIn(endpoint.port,
                      ports.parse_range(nova.conf.CONF.serial_console.port_range))

        conn = self.serial(server)
        out = self.shell(conn, "echo SERIAL-$((6*7))-OK; cat /proc/cmdline",
                         "SERIAL-42-OK")
        self.assertIn(b"SERIAL-42-OK", out)
        # what the shell answered is in nova's console output too
        self.wait_console(server, "SERIAL-42-OK")
        conn.close()

        # a reboot: the earlier boot's output stays in the log, the endpoint works again
        self.api.post_server_action(server["id"], {"reboot": {"type": "HARD"}})
        server = self._wait_for_state_change(server, "ACTIVE")
        out = self.wait_boots(server, 2)
        self.assertIn("SERIAL-42-OK", out)
        conn = self.serial(server)
        self.shell(conn, "echo AFTER-$((1+1))-REBOOT", "AFTER-2-REBOOT")
        conn.close()

        # suspended (no VMM): no serial console; resumed: the same guest, the console back
        self.api.post_server_action(server["id"], {"suspend": None})
        server = self._wait_for_state_change(server, "SUSPENDED")
        instance = objects.Instance.get_by_uuid(ctx, server["id"])
        self.assertRaises(exception.ConsoleTypeUnavailable,
                          self.compute.manager.driver.get_serial_console, ctx, instance)
        self.api.post_server_action(server["id"], {"resume": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        conn = self.serial(server)
        self.shell(conn, "echo RESUMED-$((2+3))", "RESUMED-5")
        conn.close()
        self.assertIn("AFTER-2-REBOOT", self.console(server))
        self._delete_server(server)
        self.assert_nothing_left(server)

    def wait_boots(self, server, count, timeout=180):
        """The console output once it shows ``count`` boots of the guest."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.console(server)
            if out.count(self.guest.marker("ready")) >= count:
                return out
            if time.monotonic() > deadline:
                self.fail("%d boots not in the console of %s:\n%s"
                          % (count, server["id"], out))
            time.sleep(0.5)
