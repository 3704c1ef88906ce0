"""QMPDriver through the real nova services (nova's own functional framework: API,
conductor, scheduler, placement fixture, nova-compute with this driver), booting real
QEMU guests under TCG from the project's tiny test guest, uploaded as qcow2 and as raw.

Runs in nova's eventlet mode by default and in native-threads mode with
OS_NOVA_DISABLE_EVENTLET_PATCHING=1 (tox runs both).
"""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import os
import shutil
import signal
import socket
import subprocess
import time

from nova import context as nova_context
from nova import objects

from nova_common import instance_dir
from nova_common import record
from nova_qmp import qemu
from tests.common import nova_functional


class TestServerLifecycle(base.QMPServerTestBase):
    def test_boot_qcow2_reach_userspace_stop_start_reboot_pause_delete(self):
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        pid = self.qemu_pid(server)
        self.assertTrue(qemu.alive(pid, server["id"]))

        server = self._stop_server(server)
        self.assertFalse(qemu.alive(pid, server["id"]))
        server = self._start_server(server)
        self.assertTrue(qemu.alive(self.qemu_pid(server), server["id"]))

        self.api.post_server_action(server["id"], {"pause": None})
        server = self._wait_for_state_change(server, "PAUSED")
        self.api.post_server_action(server["id"], {"unpause": None})
        server = self._wait_for_state_change(server, "ACTIVE")

        before = len(self.console(server))
        self._reboot_server(server, hard=True)
        self.wait_console(server, self.guest.marker("ready"), since=before)

        # soft: the guest sees the ACPI power button, powers off, and boots again
        before = len(self.console(server))
        self._reboot_server(server)
        out = self.wait_console(server, self.guest.marker("ready"), since=before)
        self.assertIn("HCIGUEST POWEROFF", out[before:])

        self._delete_server(server)
        self.assertEqual([], instance_dir.list_uuids(self.instances))
        self.assertFalse(os.path.exists(os.path.join(self.instances, server["id"])))

    def test_boot_raw_rebuild_rescue_and_a_killed_qemu_shows_shutoff(self):
        server = self.boot("raw")
        self.wait_console(server, self.guest.marker("ready"))
        # nova's default rebuild (destroy + spawn) on the other image
        old_pid = self.qemu_pid(server)
        server = self._rebuild_server(server, self.images["qcow2"])
        self.assertEqual(self.images["qcow2"], server["image"]["id"])
        self.assertFalse(qemu.alive(old_pid, server["id"]))
        self.wait_console(server, self.guest.marker("ready"))

        # rescue: the rescue image boots, the server's own disk is the second disk
        before = len(self.console(server))
        self.api.post_server_action(server["id"], {"rescue": {
            "rescue_image_ref": self.images["raw"]}})
        server = self._wait_for_state_change(server, "RESCUE")
        out = self.wait_console(server, self.guest.marker("ready"), since=before)
        self.assertIn("DISK vdb sectors=", out[before:])
        before = len(out)
        self.api.post_server_action(server["id"], {"unrescue": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        out = self.wait_console(server, self.guest.marker("ready"), since=before)
        self.assertNotIn("DISK vdb", out[before:])
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        self.assertFalse(os.path.exists(idir.file(qemu.RESCUE_DISK)))

        os.kill(self.qemu_pid(server), signal.SIGKILL)
        # the lost QMP connection is a lifecycle event: no periodic task needed
        self._wait_for_state_change(server, "SHUTOFF")
        self._delete_server(server)
        self.assertFalse(os.path.exists(os.path.join(self.instances, server["id"])))

    def test_consoles_and_suspend_resume_where_it_was(self):
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        conn = self.serial(server)
        # the shell echoes its input: expand the value so only the output matches
        self.shell(conn, "echo mark-$((6*7)) > /run/mark; cat /run/mark", "mark-42")

        self.assertIn("token", self.remote_console(server, "vnc", "novnc"))
        ctx = nova_context.get_admin_context()
        instance = objects.Instance.get_by_uuid(ctx, server["id"])
        vnc = self.compute.manager.driver.get_vnc_console(ctx, instance)
        with socket.create_connection((vnc.host, vnc.port), timeout=30) as v:
            self.assertTrue(v.recv(12).startswith(b"RFB 003."))

        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        pid = self.qemu_pid(server)
        self.api.post_server_action(server["id"], {"suspend": None})
        server = self._wait_for_state_change(server, "SUSPENDED")
        self.assertFalse(qemu.alive(pid, server["id"]))
        self.assertTrue(os.path.getsize(idir.file(qemu.STATE_FILE)) > 0)
        self.assertEqual(0o600, os.stat(idir.file(qemu.STATE_FILE)).st_mode & 0o777)

        self.api.post_server_action(server["id"], {"resume": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertFalse(os.path.exists(idir.file(qemu.STATE_FILE)))
        # the same guest, not a new boot: what it held in memory (tmpfs) is still there
        conn = self.serial(server)
        self.shell(conn, "cat /run/mark", "mark-42")
        self.assertEqual(1, self.console(server).count(self.guest.marker("ready")))
        # private: nova's user and this guest's uid only (the ACL; nobody else)
        for path in (idir.path, idir.file(qemu.QMP_SOCKET)):
            self.assert_private(server, path)
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_config_drive_and_a_snapshot_that_boots(self):
        server = self.boot("raw", config_drive=True)
        self.wait_console(server, "HCIGUEST CONFIGDRIVE uuid=%s" % server["id"])
        self._snapshot_server(server, "snap")
        image = self._wait_for_image("snap")
        self.assertEqual("qcow2", image["disk_format"])
        copy = self.boot(image=image["id"])
        self.wait_console(copy, self.guest.marker("ready"))
        for s in (server, copy):
            self._delete_server(s)
            self.assert_nothing_left(s)

    def test_restarted_compute_manages_running_instances_again(self):
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        pid = self.qemu_pid(server)
        self.compute = self.restart_compute_service(self.compute,
                                                    keep_hypervisor_state=False)
        self.assertTrue(qemu.alive(pid, server["id"]))       # untouched
        self.assertEqual(pid, self.qemu_pid(server))
        server = self._wait_for_state_change(server, "ACTIVE")
        self.api.post_server_action(server["id"], {"pause": None})
        server = self._wait_for_state_change(server, "PAUSED")
        self.api.post_server_action(server["id"], {"unpause": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        # an NMI for the guest's crash dump; it keeps running
        self.api.post_server_action(server["id"], {"trigger_crash_dump": None})
        self._wait_for_instance_action_event(server, "trigger_crash_dump",
                                             "compute_trigger_crash_dump", "Success")
        self.assertTrue(qemu.alive(pid, server["id"]))
        hypervisor = self.api.api_get("/os-hypervisors/detail").body["hypervisors"][0]
        self.assertTrue(hypervisor["uptime"].startswith("up "), hypervisor)
        # and its events reach the new service
        os.kill(pid, signal.SIGKILL)
        self._wait_for_state_change(server, "SHUTOFF")
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_refused_images_and_a_missing_qemu_leave_nothing(self):
        ctx = nova_context.get_admin_context()
        with open(self.guest.disk_qcow2, "rb") as f:
            uefi = self.glance.create(ctx, {
                "name": "uefi", "disk_format": "qcow2", "container_format": "bare",
                "status": "active", "properties": {"hw_firmware_type": "uefi"}}, data=f)
        server = self.boot(image=uefi["id"], state="ERROR")
        self.assertIn("hw_firmware_type", server["fault"]["message"])
        self.assert_nothing_left(server)

        self.flags(qemu_binary="/nonexistent/qemu-system-x86_64", group="qmp")
        server = self.boot("qcow2", state="ERROR")
        # a host problem: nova reschedules (the API shows "exceeded maximum number of
        # retries"), and nova-compute's log names the cause
        self.assertIn("QEMU binary /nonexistent/qemu-system-x86_64 is missing",
                      self.stdlog.logger.output)
        self.assert_nothing_left(server)
        self.assertEqual([], instance_dir.list_uuids(self.instances))

    def test_volume_attach_write_extend_detach(self):
        """A file given as a ``local`` connection (os-brick's local connector), hot-plugged
        into a q35 guest: the guest sees it, writes to it, sees it grow, releases it."""
        volume_id = "6b0d5c8e-3f21-4a8e-9a57-2c4d8e1f0a11"
        path = nova_functional.file_volume(
            self, volume_id, os.path.join(self.instances, "volume.img"), 64 * 1024 ** 2)
        server = self.boot("qcow2")
        self.wait_console(server, self.guest.marker("ready"))
        conn = self.serial(server)
        before = len(self.console(server))
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": volume_id}})
        self.wait_console(server, "ADDED DISK vdb sectors=131072", since=before)
        self.shell(conn, "echo written-$((6*7)) > /dev/vdb; sync; echo done-$((1+1))",
                   "done-2")
        with open(path, "rb") as f:
            self.assertEqual(b"written-42\n", f.read(11))

        # cinder extended it (the fixture reports 1 GiB): nova tells the driver
        before = len(self.console(server))
        self.api.create_server_external_events([{
            "name": "volume-extended", "server_uuid": server["id"], "tag": volume_id}])
        self.wait_console(server, "ADDED DISK vdb sectors=2097152", since=before)
        self.assertEqual(1024 ** 3, os.path.getsize(path))

        before = len(self.console(server))
        self.api.delete_server_volume(server["id"], volume_id)
        self.wait_console(server, "REMOVED DISK vdb", since=before)
        self._wait_for_volume_detach(server["id"], volume_id)
        meta = record.read(os.path.join(self.instances, server["id"]))
        self.assertEqual({}, meta.volumes)
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_boot_from_volume_with_a_second_volume(self):
        """The root disk is a volume (a file with the guest's raw image, given as a
        ``local`` connection); a second volume, a block device (a loop device), is
        attached at boot; both survive a stop/start; delete leaves nothing of the
        instance."""
        root_vol = self.cinder.IMAGE_BACKED_VOL
        data_vol = "0b5a2f4e-8d6c-4e1a-b3f7-9c2d1e0f5a66"
        root_path = os.path.join(self.instances, root_vol + ".img")
        shutil.copyfile(self.guest.disk_raw, root_path)
        backing = os.path.join(self.instances, data_vol + ".img")
        with open(backing, "wb") as f:
            f.truncate(32 * 1024 ** 2)
        loop = subprocess.run(["losetup", "--find", "--show", backing], check=True,
                              capture_output=True, text=True).stdout.strip()
        self.addCleanup(subprocess.run, ["losetup", "--detach", loop], check=False)
        paths = {root_vol: root_path, data_vol: loop}
        self.cinder.VOLUME_CONNECTION_INFO = dict(self.cinder.VOLUME_CONNECTION_INFO, **{
            v: {"driver_volume_type": "local", "data": {"device_path": p}}
            for v, p in paths.items()})
        server = self._build_server(image_uuid="", networks="none")
        server["block_device_mapping_v2"] = [
            {"boot_index": 0, "uuid": root_vol, "source_type": "volume",
             "destination_type": "volume"},
            {"boot_index": -1, "uuid": data_vol, "source_type": "volume",
             "destination_type": "volume"}]
        server = self.api.post_server({"server": server})
        server = self._wait_for_state_change(server, "ACTIVE")
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("DISK vdb sectors=65536", out)
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        self.assertFalse(os.path.exists(idir.file(qemu.ROOT_DISK)))  # no image disk
        self.assertTrue(record.read(idir.path).volumes[data_vol]["block"])

        server = self._stop_server(server)
        before = len(self.console(server))
        server = self._start_server(server)
        out = self.wait_console(server, self.guest.marker("ready"), since=before)
        self.assertIn("DISK vdb sectors=65536", out[before:])
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_resize_on_this_host_revert_and_confirm(self):
        self.flags(allow_resize_to_same_host=True)
        # booted before the bigger flavor exists: nova's helper takes the first flavor
        # listed, and a new flavor's random id may sort first
        server = self.boot("qcow2")
        bigger = self.api.post_flavor({"flavor": {
            "name": "bigger", "ram": 640, "vcpus": 2, "disk": 2}})
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("DISK vda sectors=2097152", out)
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        resized = idir.path + "_resize"

        for finish in ("revertResize", "confirmResize"):
            before = len(self.console(server))
            self.api.post_server_action(server["id"], {"resize": {"flavorRef": bigger["id"]}})
            server = self._wait_for_state_change(server, "VERIFY_RESIZE")
            out = self.wait_console(server, self.guest.marker("ready"), since=before)
            self.assertIn("DISK vda sectors=4194304", out[before:])   # 2 GiB now
            argv = self.qemu_argv(server)
            self.assertEqual(("2", "640"), (argv[argv.index("-smp") + 1],
                                            argv[argv.index("-m") + 1]))
            self.assertTrue(os.path.isdir(resized))
            pid = self.qemu_pid(server)
            self.api.post_server_action(server["id"], {finish: None})
            server = self._wait_for_state_change(server, "ACTIVE")
            if finish == "revertResize":
                # the original disk and console log are back; the guest boots from it
                deadline = time.monotonic() + 120
                while self.console(server).count(self.guest.marker("ready")) < 2:
                    self.assertLess(time.monotonic(), deadline, self.console(server))
                    time.sleep(0.5)
                out = self.console(server)
                self.assertIn("DISK vda sectors=2097152", out.split("POWEROFF")[-1])
                argv = self.qemu_argv(server)
                self.assertEqual(("1", "512"), (argv[argv.index("-smp") + 1],
                                                argv[argv.index("-m") + 1]))
            else:
                self.assertEqual(pid, self.qemu_pid(server))     # keeps running
            self.assertFalse(os.path.exists(resized))
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_interfaces_are_taps_a_backend_wires(self):
        """Ports bound as ``tap`` VIFs: the driver makes the taps, the test plays the
        network backend (a Linux bridge of its own with an address) and the guest reaches
        it; a second port is hot-plugged and removed; nothing stays behind."""
        bridge = "hcibr%d" % (os.getpid() % 100000)
        net = "10.254.%d" % (os.getpid() % 250)
        ip(["link", "add", bridge, "type", "bridge"])
        self.addCleanup(ip, ["link", "del", bridge], check=False)
        ip(["addr", "add", net + ".1/24", "dev", bridge])
        ip(["link", "set", bridge, "up"])
        ports = self.tap_ports(2)
        taps = ["tap" + port["id"][:11] for port in ports]
        self.addCleanup(lambda: [ip(["link", "del", t], check=False) for t in taps])

        server = self.boot("qcow2", networks=[{"port": ports[0]["id"]}])
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("NIC eth0 mac=%s" % ports[0]["mac_address"], out)
        ip(["link", "set", taps[0], "master", bridge])      # the backend's part
        conn = self.serial(server)
        self.shell(conn, "ip addr add %s.2/24 dev eth0; ip link set eth0 up; "
                   "ping -c 1 -W 5 %s.1 && echo reached-$((40+2))" % (net, net),
                   "reached-42")

        before = len(self.console(server))
        self.api.attach_interface(server["id"], {"interfaceAttachment": {
            "port_id": ports[1]["id"]}})
        self.wait_console(server, "ADDED NIC eth1 mac=%s" % ports[1]["mac_address"],
                          since=before)
        self.assertTrue(ip(["link", "show", taps[1]], check=False))
        before = len(self.console(server))
        self.api.detach_interface(server["id"], ports[1]["id"])
        self.wait_console(server, "REMOVED NIC eth1", since=before)
        self._wait_for_tap_gone(taps[1])

        self._delete_server(server)
        self.assert_nothing_left(server)
        self._wait_for_tap_gone(taps[0])

    def _wait_for_tap_gone(self, tap, timeout=30):
        deadline = time.monotonic() + timeout
        while ip(["link", "show", tap], check=False):
            if time.monotonic() > deadline:
                self.fail("%s was not removed" % tap)
            time.sleep(0.2)


def ip(args, check=True):
    """``ip`` on this host; the output, or "" when ``check`` is off and it failed."""
    res = subprocess.run(["ip"] + args, capture_output=True, text=True, timeout=30)
    if check and res.returncode:
        raise RuntimeError("ip %s: %s" % (" ".join(args), res.stderr))
    return res.stdout if res.returncode == 0 else ""
