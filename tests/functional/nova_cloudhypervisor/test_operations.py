"""More of CloudHypervisorDriver through the real nova services, on the stand-in VMM (or a
real cloud-hypervisor with HCI_CH_BINARY): suspend/resume by vm.snapshot/vm.restore,
config drive, Glance snapshot, NMI, volumes hot-plugged and grown, a restarted
nova-compute, and refused requests leaving nothing behind."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_cloudhypervisor import base  # noqa: I001  isort:skip
import os
import signal

from nova_cloudhypervisor import hypervisor
from nova_cloudhypervisor import process
from nova_common import instance_dir
from nova_common import record
from tests.common import nova_functional


class TestOperations(base.CHServerTestBase):
    def test_config_drive_suspend_resume_nmi_and_a_snapshot_that_boots(self):
        server = self.boot("raw", config_drive=True)
        self.wait_console(server, "HCIGUEST CONFIGDRIVE uuid=%s" % server["id"])
        self.wait_console(server, self.guest.marker("ready"))
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        pid = self.vmm_pid(server)

        self.api.post_server_action(server["id"], {"suspend": None})
        server = self._wait_for_state_change(server, "SUSPENDED")
        self.assertFalse(process.alive(pid, server["id"]))       # no VMM while suspended
        self.assertTrue(os.listdir(idir.file(hypervisor.SNAPSHOT_DIR)))
        self.api.post_server_action(server["id"], {"resume": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertFalse(os.path.exists(idir.file(hypervisor.SNAPSHOT_DIR)))
        # the same guest, restored: it did not boot again
        self.assertEqual(1, self.console(server).count(self.guest.marker("ready")))

        self.api.post_server_action(server["id"], {"trigger_crash_dump": None})
        self._wait_for_instance_action_event(server, "trigger_crash_dump",
                                             "compute_trigger_crash_dump", "Success")

        self._snapshot_server(server, "snap")
        image = self._wait_for_image("snap")
        self.assertEqual("qcow2", image["disk_format"])
        copy = self.boot(image=image["id"])
        self.wait_console(copy, self.guest.marker("ready"))
        for s in (server, copy):
            self._delete_server(s)
            self.assert_nothing_left(s)

    def test_volume_attach_extend_detach(self):
        volume_id = "6b0d5c8e-3f21-4a8e-9a57-2c4d8e1f0a11"
        path = nova_functional.file_volume(
            self, volume_id, os.path.join(self.instances, "volume.img"), 64 * 1024 ** 2)
        server = self.boot(image=self.images["kernel"])
        self.wait_console(server, self.guest.marker("ready"))
        before = len(self.console(server))
        self.api.post_server_volume(server["id"], {"volumeAttachment": {
            "volumeId": volume_id}})
        self.wait_console(server, "ADDED DISK vdb sectors=131072", since=before)

        before = len(self.console(server))
        self.api.create_server_external_events([{
            "name": "volume-extended", "server_uuid": server["id"], "tag": volume_id}])
        self.wait_console(server, "ADDED DISK vdb sectors=2097152", since=before)
        self.assertEqual(1024 ** 3, os.path.getsize(path))

        before = len(self.console(server))
        self.api.delete_server_volume(server["id"], volume_id)
        self.wait_console(server, "REMOVED DISK vdb", since=before)
        self._wait_for_volume_detach(server["id"], volume_id)
        self.assertEqual({}, record.read(os.path.join(self.instances,
                                                      server["id"])).volumes)
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_restarted_compute_manages_running_vmms_again(self):
        server = self.boot(image=self.images["kernel"])
        self.wait_console(server, self.guest.marker("ready"))
        pid = self.vmm_pid(server)
        self.compute = self.restart_compute_service(self.compute,
                                                    keep_hypervisor_state=False)
        self.assertTrue(process.alive(pid, server["id"]))      # left alone
        server = self._wait_for_state_change(server, "ACTIVE")
        self.api.post_server_action(server["id"], {"pause": None})
        server = self._wait_for_state_change(server, "PAUSED")
        self.api.post_server_action(server["id"], {"unpause": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertEqual(pid, self.vmm_pid(server))
        # the new service watches it: a VMM that dies shows SHUTOFF
        os.kill(pid, signal.SIGKILL)
        self._wait_for_state_change(server, "SHUTOFF")
        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_refused_requests_leave_nothing(self):
        # an image without a kernel, and no firmware configured
        self.flags(firmware=None, group="cloudhypervisor")
        server = self.boot("raw", state="ERROR")
        self.assertIn("no firmware is configured", server["fault"]["message"])
        self.assert_nothing_left(server)
        self.flags(firmware=base.SEABIOS, group="cloudhypervisor")

        # an instances_path too long for the API socket's path
        long_root = os.path.join(self.instances, "x" * 70)
        self.flags(instances_path=long_root)
        server = self.boot(image=self.images["kernel"], state="ERROR")
        self.assertIn("is longer than a UNIX socket path can be", self.stdlog.logger.output)
        self.assertFalse(os.path.exists(os.path.join(long_root, server["id"])))
        self.flags(instances_path=self.instances)

        # no cloud-hypervisor binary: a host problem, nova reschedules; the log says why
        self.flags(binary="/nonexistent/cloud-hypervisor", group="cloudhypervisor")
        server = self.boot(image=self.images["kernel"], state="ERROR")
        self.assertIn("cloud-hypervisor binary /nonexistent/cloud-hypervisor is missing",
                      self.stdlog.logger.output)
        self.assert_nothing_left(server)
        self.assertEqual([], instance_dir.list_uuids(self.instances))
