"""A guest flooding its serial port through the real nova services: its console log
stays bounded ([qmp]console_log_max_bytes, one rotated file) and nova's console output
is still the newest output."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import os

from nova_common import consolelog
from nova_common import instance_dir

CAP = 64 * 1024
LINES = 30000          # ~1.7 MB of output: 26 times the cap


class TestConsoleLog(base.QMPServerTestBase):
    @staticmethod
    def console_files(idir):
        """Sizes of the console log files in an instance directory."""
        return {n: os.path.getsize(idir.file(n)) for n in os.listdir(idir.path)
                if n.startswith(consolelog.LOG)}

    def test_a_flooding_guest_cannot_fill_instances_path(self):
        self.flags(console_log_max_bytes=CAP, group="qmp")
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        conn = self.serial(server)
        self.shell(conn, "(i=0; while [ $i -lt %d ]; do echo \"flood line $i "
                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; i=$((i+1)); done; "
                   "echo FLOOD-$((40+2))-END) &" % LINES, "flood line 3 ")
        conn.close()           # nobody reads the serial console: the log takes it all
        out = self.wait_console(server, "FLOOD-42-END", timeout=900)

        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        logs = self.console_files(idir)
        self.assertLessEqual(sum(logs.values()), 2 * CAP, logs)
        self.assertEqual(CAP, logs.get(consolelog.ROTATED), logs)     # it was rotated
        # the API's console output: the newest output (nova's 100 KiB at most)
        self.assertLessEqual(len(out.encode()), consolelog.MAX_CONSOLE_BYTES)
        self.assertIn("flood line %d " % (LINES - 1), out)
        self.assertNotIn(self.guest.marker("ready"), out)      # rotated away
        self.assertIn("FLOOD-42-END", out[-200:])

        # the bound holds across a restart of the guest (a new logger, same files)
        pid = self.qemu_pid(server)
        server = self._stop_server(server)
        server = self._start_server(server)
        self.assertNotEqual(pid, self.qemu_pid(server))
        self.wait_console(server, self.guest.marker("ready"))
        logs = self.console_files(idir)
        self.assertLessEqual(sum(logs.values()), 2 * CAP, logs)
        self._delete_server(server)
        self.assert_nothing_left(server)
