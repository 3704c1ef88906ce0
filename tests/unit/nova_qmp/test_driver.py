"""The driver on real QEMU processes without a guest OS (a ``pc`` machine with no disk:
SeaBIOS finds nothing to boot and nothing answers the ACPI power button, so a soft
power-off has to fall back to stopping QEMU)."""
import os
import signal
import subprocess
import time
from unittest import mock

import fixtures
from nova import exception
from nova import objects
from nova.compute import power_state
from oslo_utils import uuidutils

from nova_common import confine
from nova_common import disk_transfer
from nova_common import instance_dir
from nova_common import record
from nova_qmp import driver
from nova_qmp import qemu
from tests.unit.nova_common import base
from tests.unit.nova_qmp import test_qemu

objects.register_all()


class DriverCase(base.TestCase):
    """A QMPDriver on this host's QEMU (privsep in-process) and one instance's record."""

    def setUp(self):
        super().setUp()
        self.useFixture(test_qemu.InProcessPrivsep())
        self.drv = driver.QMPDriver(virtapi=None)
        self.drv.init_host("host")
        self.addCleanup(self.drv.cleanup_host, "host")
        self.inst = objects.Instance(uuid=uuidutils.generate_uuid(), id=1,
                                     project_id="p", os_type=None)
        self.idir = instance_dir.InstanceDir(self.inst.uuid).create()
        self.flags(accelerator="tcg", group="qmp")
        record.write(self.idir.path, record.Record(
            name="i-1", vcpus=1, memory_mb=64,
            spec={"machine": "pc", "root_disk": False, "config_drive": False}))
        self.addCleanup(self._reap)

    def _reap(self):
        pid = qemu.read_pid(self.idir)
        if qemu.alive(pid, self.inst.uuid):
            os.kill(pid, signal.SIGKILL)

    def state(self):
        return self.drv.get_info(self.inst).state


class TestDriver(DriverCase):
    def test_power_off_falls_back_to_stopping_qemu_after_the_timeout(self):
        self.drv.power_on(None, self.inst, None)
        self.assertEqual(power_state.RUNNING, self.state())
        start = time.monotonic()
        self.drv.power_off(self.inst, timeout=1)
        self.assertGreaterEqual(time.monotonic() - start, 1)
        self.assertEqual(power_state.SHUTDOWN, self.state())
        self.assertEqual([self.inst.uuid], self.drv.list_instance_uuids())

    def test_pause_suspend_resume_and_a_hard_reboot_discarding_saved_state(self):
        self.drv.power_on(None, self.inst, None)
        self.drv.pause(self.inst)
        self.assertEqual(power_state.PAUSED, self.state())
        self.drv.unpause(self.inst)
        self.drv.suspend(None, self.inst)
        self.assertEqual(power_state.SUSPENDED, self.state())
        self.assertFalse(qemu.alive(qemu.read_pid(self.idir), self.inst.uuid))
        self.drv.resume(None, self.inst, None)
        self.assertEqual(power_state.RUNNING, self.state())
        self.assertFalse(os.path.exists(self.idir.file(qemu.STATE_FILE)))
        self.assertRaises(exception.InstanceResumeFailure, self.drv.resume, None,
                          self.inst, None)
        self.drv.suspend(None, self.inst)
        self.drv.reboot(None, self.inst, None, "HARD")
        self.assertEqual(power_state.RUNNING, self.state())
        self.assertFalse(os.path.exists(self.idir.file(qemu.STATE_FILE)))

    def test_a_restarted_driver_finds_running_instances(self):
        self.drv.power_on(None, self.inst, None)
        pid = qemu.read_pid(self.idir)
        self.drv.cleanup_host("host")
        self.assertTrue(qemu.alive(pid, self.inst.uuid))
        again = driver.QMPDriver(virtapi=None)
        again.init_host("host")
        self.addCleanup(again.cleanup_host, "host")
        self.assertEqual(power_state.RUNNING, again.get_info(self.inst).state)
        self.drv = again
        self.drv.destroy(None, self.inst, None)
        self.assertFalse(qemu.alive(pid, self.inst.uuid))
        self.assertFalse(self.idir.exists())

    def test_unknown_instances(self):
        other = objects.Instance(uuid=uuidutils.generate_uuid(), id=2)
        self.assertRaises(exception.InstanceNotFound, self.drv.get_info, other)
        self.assertRaises(exception.InstanceNotFound, self.drv.pause, other)
        self.assertRaises(exception.InstanceNotRunning, self.drv.pause, self.inst)

    def test_consoles_without_proxies(self):
        self.assertRaises(exception.ConsoleTypeUnavailable, self.drv.get_vnc_console,
                          None, self.inst)
        self.assertRaises(exception.ConsoleTypeUnavailable, self.drv.get_serial_console,
                          None, self.inst)
        self.assertEqual(b"", self.drv.get_console_output(None, self.inst))

    def test_capabilities_and_unsupported_operations(self):
        caps = self.drv.capabilities
        self.assertTrue(caps["supports_image_type_qcow2"] and caps["supports_image_type_raw"])
        self.assertFalse(caps["supports_image_type_vmdk"])
        self.assertTrue(caps["supports_attach_interface"])
        self.assertTrue(caps["supports_extend_volume"])
        self.assertTrue(caps["supports_multiattach"])
        for call in (lambda: self.drv.set_admin_password(self.inst, "secret"),):
            self.assertRaises(NotImplementedError, call)

    def test_nova_compute_does_not_start_without_its_qemu(self):
        self.flags(qemu_binary="/nonexistent/qemu-system-x86_64", group="qmp")
        self.assertRaises(exception.InternalError,
                          driver.QMPDriver(virtapi=None).init_host, "host")

    def test_resizes_never_shrink_and_need_the_transfer_credentials(self):
        self.inst.flavor = objects.Flavor(root_gb=2)
        # to another host: no TLS files in [qmp]live_migration_tls_dir (nor plain TCP)
        self.flags(live_migration_tls_dir=self.instances + "/no-tls", group="qmp")
        self.assertRaises(exception.InstanceFaultRollback,
                          self.drv.migrate_disk_and_power_off, None, self.inst,
                          "192.0.2.99", objects.Flavor(root_gb=2), None)
        self.assertRaises(exception.InstanceFaultRollback,
                          self.drv.migrate_disk_and_power_off, None, self.inst,
                          base.CONF.my_ip, objects.Flavor(root_gb=1), None)
        self.assertTrue(self.idir.exists())         # nothing moved aside

    def test_a_failed_finish_migration_leaves_the_kept_aside_directory_only(self):
        """... and disconnects the volume it connected (os-brick is the boundary)."""
        disconnected = []
        self.useFixture(fixtures.MockPatch(
            "os_brick.initiator.connectors.local.LocalConnector.disconnect_volume",
            lambda _self, data, device_info, *a, **kw: disconnected.append(data)))
        volume = os.path.join(self.useFixture(fixtures.TempDir()).path, "vol")
        open(volume, "wb").close()
        bdi = {"block_device_mapping": [{
            "mount_device": "/dev/vdb", "boot_index": -1, "connection_info": {
                "driver_volume_type": "local", "serial": "v1",
                "data": {"device_path": volume, "volume_id": "v1"}}}]}
        self.inst.flavor = objects.Flavor(root_gb=0, vcpus=1, memory_mb=64)
        self.drv.power_on(None, self.inst, None)
        self.drv.migrate_disk_and_power_off(None, self.inst, base.CONF.my_ip,
                                            objects.Flavor(root_gb=0), [])
        kept = instance_dir.InstanceDir(self.inst.uuid, suffix="_resize")
        self.assertTrue(kept.exists())
        self.assertFalse(self.idir.exists())
        qemu_binary = base.CONF.qmp.qemu_binary
        self.flags(qemu_binary="/bin/false", group="qmp")     # the new QEMU cannot start
        self.assertRaises(exception.InstanceDeployFailure, self.drv.finish_migration, None,
                          None, self.inst, "", [], None, False, None,
                          block_device_info=bdi, power_on=True)
        self.assertEqual([{"device_path": volume, "volume_id": "v1"}], disconnected)
        self.assertFalse(self.idir.exists())
        self.assertTrue(kept.exists())                  # a revert can still bring it back
        self.flags(qemu_binary=qemu_binary, group="qmp")
        self.drv.finish_revert_migration(None, self.inst, [], None, power_on=True)
        self.assertEqual(power_state.RUNNING, self.state())


class TestColdMigration(DriverCase):
    """To another host: this process is both hosts, one instances_path each; the disks
    go through a real qemu-nbd and qemu-img on loopback (plain TCP)."""

    def setUp(self):
        super().setUp()
        self.flags(live_migration_plain_tcp=True, live_migration_inbound_addr="127.0.0.1",
                   group="qmp")
        self.disk = self.idir.file(instance_dir.ROOT_DISK)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", self.disk, "4M"],
                       check=True)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 64k",
                        self.disk], check=True, capture_output=True)
        self.inst.flavor = objects.Flavor(root_gb=0, vcpus=1, memory_mb=64)
        self.source = self.instances
        self.dest = os.path.join(self.instances, "dest")      # the other host's
        os.mkdir(self.dest)
        self.kept = instance_dir.InstanceDir(self.inst.uuid, suffix="_resize")
        self.addCleanup(disk_transfer.stop_exports, self.kept.path)   # also on failure

    def _on(self, path):
        self.flags(instances_path=path)
        confine.prepare_instances_path()          # as its init_host does

    def _pattern_at_1m(self, path):
        out = subprocess.run(["qemu-io", "-f", "qcow2", "-r", "-U", "-c",
                              "read -P 0x5a 1M 64k", path], capture_output=True, text=True)
        self.assertEqual(0, out.returncode, out.stdout + out.stderr)
        return "Pattern verification failed" not in out.stdout

    def test_disks_to_another_host_then_revert(self):
        self.drv.power_on(None, self.inst, None)
        disk_info = self.drv.migrate_disk_and_power_off(
            None, self.inst, "192.0.2.99", objects.Flavor(root_gb=0), [])
        self.assertTrue(self.kept.exists())
        self._on(self.dest)
        self.addCleanup(self.drv.destroy, None, self.inst, [])
        self.drv.finish_migration(None, None, self.inst, disk_info, [], None, False, None,
                                  power_on=True)
        self.assertEqual(power_state.RUNNING, self.state())
        moved = instance_dir.InstanceDir(self.inst.uuid)
        self.assertTrue(self._pattern_at_1m(moved.file(instance_dir.ROOT_DISK)))
        # revert: nova destroys the destination's copy, the source takes its own back
        self.drv.destroy(None, self.inst, [])
        self.assertFalse(moved.exists())
        self._on(self.source)
        self.drv.finish_revert_migration(None, self.inst, [], None, power_on=True)
        self.assertEqual(power_state.RUNNING, self.state())
        self.assertFalse(os.path.exists(self.kept.path))
        self.assertTrue(self._pattern_at_1m(self.disk))

    def test_a_copy_failing_half_way_leaves_the_source_intact(self):
        self.drv.power_on(None, self.inst, None)
        disk_info = self.drv.migrate_disk_and_power_off(
            None, self.inst, "192.0.2.99", objects.Flavor(root_gb=0), [])
        kept_disk = self.kept.file(instance_dir.ROOT_DISK)
        before = os.stat(kept_disk)
        disk_transfer.stop_exports(self.kept.path)       # the source stops serving
        self._on(self.dest)
        self.assertRaises(exception.MigrationError, self.drv.finish_migration, None, None,
                          self.inst, disk_info, [], None, False, None, power_on=True)
        self.assertFalse(os.path.exists(os.path.join(self.dest, self.inst.uuid)))
        self._on(self.source)
        self.assertEqual(before.st_mtime_ns, os.stat(kept_disk).st_mtime_ns)
        self.drv.finish_revert_migration(None, self.inst, [], None, power_on=True)
        self.assertEqual(power_state.RUNNING, self.state())
        self.assertTrue(self._pattern_at_1m(self.disk))

    def _servers(self):
        found = []
        for name in os.listdir(self.kept.path):
            if name.startswith(disk_transfer.PID_PREFIX):
                with open(os.path.join(self.kept.path, name)) as f:
                    pid = int(f.read())
                if disk_transfer._alive_qemu_nbd(pid, self.kept.path):
                    found.append(name)
        return found

    def test_a_failed_copy_ends_the_servers_of_the_disks_not_read(self):
        with open(self.idir.file(instance_dir.CONFIG_DRIVE), "wb") as f:
            f.truncate(1024 * 1024)
        self.drv.power_on(None, self.inst, None)
        disk_info = self.drv.migrate_disk_and_power_off(
            None, self.inst, "192.0.2.99", objects.Flavor(root_gb=0), [])
        root_server = disk_transfer.PID_PREFIX + "disk.pid"
        with open(os.path.join(self.kept.path, root_server)) as f:
            os.kill(int(f.read()), signal.SIGTERM)      # the root disk cannot be read
        deadline = time.monotonic() + 30
        while root_server in self._servers():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual([disk_transfer.PID_PREFIX + "disk.config.pid"], self._servers())
        self._on(self.dest)
        self.assertRaises(exception.MigrationError, self.drv.finish_migration, None, None,
                          self.inst, disk_info, [], None, False, None, power_on=True)
        deadline = time.monotonic() + 30
        while self._servers():                    # the config drive's server ended too
            self.assertLess(time.monotonic(), deadline, self._servers())
            time.sleep(0.05)

    def test_a_shared_instances_path_is_seen_and_copied_locally(self):
        self.drv.power_on(None, self.inst, None)
        disk_info = self.drv.migrate_disk_and_power_off(
            None, self.inst, "192.0.2.99", objects.Flavor(root_gb=0), [])
        disk_transfer.stop_exports(self.kept.path)       # nothing to fetch over NBD
        # the other host on the same instances_path sees the source's probe file
        self.drv.finish_migration(None, None, self.inst, disk_info, [], None, False, None,
                                  power_on=True)
        self.assertEqual(power_state.RUNNING, self.state())
        self.assertTrue(self._pattern_at_1m(self.disk))
        self.drv.confirm_migration(None, None, self.inst, [])
        self.assertFalse(os.path.exists(self.kept.path))

    def test_a_failed_export_starts_the_guest_again_on_the_source(self):
        self.flags(live_migration_inbound_addr="192.0.2.99", group="qmp")  # not ours
        self.drv.power_on(None, self.inst, None)
        pid = qemu.read_pid(self.idir)
        self.assertRaises(exception.InstanceFaultRollback,
                          self.drv.migrate_disk_and_power_off, None, self.inst,
                          "192.0.2.99", objects.Flavor(root_gb=0), [])
        self.assertFalse(os.path.exists(self.kept.path))
        self.assertTrue(self._pattern_at_1m(self.disk))
        self.assertEqual(power_state.RUNNING, self.state())
        self.assertNotEqual(pid, qemu.read_pid(self.idir))          # started again


class TestSnapshotJobs(DriverCase):
    """The live snapshot's block job (blockdev-backup) on a real QEMU with a root disk."""

    def setUp(self):
        super().setUp()
        data = self.idir.file("data.raw")
        with open(data, "wb") as f:
            f.write(os.urandom(4 * 1024 * 1024))     # incompressible, all allocated
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", data,
                        self.idir.file(qemu.ROOT_DISK)], check=True)
        os.unlink(data)
        record.write(self.idir.path, record.Record(
            name="i-1", vcpus=1, memory_mb=64,
            spec={"machine": "pc", "root_disk": True, "config_drive": False}))
        self.drv.power_on(None, self.inst, None)
        self.guest = self.drv._guest(self.inst)

    def jobs_and_nodes(self):
        jobs = self.drv.hv._qmp(self.guest, "query-jobs")
        nodes = [n["node-name"] for n in
                 self.drv.hv._qmp(self.guest, "query-named-block-nodes")
                 if n["node-name"].startswith("snap")]
        return jobs, nodes

    def test_a_copy_is_a_standalone_image_and_leaves_no_job(self):
        target = self.idir.file("snap.qcow2")
        self.drv.hv.export_root_disk(self.guest, target)
        info = subprocess.run(["qemu-img", "info", "--output=json", target], check=True,
                              capture_output=True, text=True).stdout
        self.assertNotIn("backing-filename", info)
        self.assertEqual(0, subprocess.run(["qemu-img", "compare", "-q", "-U", target,
                                            self.idir.file(qemu.ROOT_DISK)]).returncode)
        self.assertEqual(([], []), self.jobs_and_nodes())

    def test_a_job_that_fails_reports_why_and_leaves_no_job(self):
        small = self.useFixture(fixtures.TempDir()).path
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", small],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", small], check=False)
        e = self.assertRaises(exception.InternalError, self.drv.hv.export_root_disk,
                              self.guest, os.path.join(small, "snap.qcow2"))
        self.assertIn("No space left on device", str(e))
        self.assertEqual(([], []), self.jobs_and_nodes())
        self.assertEqual(power_state.RUNNING, self.state())      # the guest goes on


class TestVhostUserHotplug(DriverCase):
    """Hot-plugging a vhost-user interface needs the guest RAM shared (asked of QEMU)."""

    PORT = "0e8f1c2a-7b3d-4e5f-9a6b-1c2d3e4f5a6b"
    VIF = {"vhostuser": "/var/lib/nova/vhostuser/vhu0e8f1c2a-7b", "mac": "fa:16:3e:00:00:01",
           "slot": None}

    def chardevs(self, guest):
        return [c["label"] for c in self.drv.hv._qmp(guest, "query-chardev")]

    def test_refused_without_shared_memory_before_anything_is_added(self):
        self.drv.power_on(None, self.inst, None)
        guest = self.drv._guest(self.inst)
        self.assertFalse(self.drv.hv._shared_memory(guest))
        e = self.assertRaises(exception.VirtualInterfacePlugException,
                              self.drv.hv.attach_nic, guest, self.PORT, self.VIF)
        self.assertIn("not shared", str(e))
        self.assertIn(qemu.SHARED_MEMORY_SPEC, str(e))
        self.assertNotIn(qemu.vif_chardev(self.PORT, self.VIF["vhostuser"])["id"],
                         self.chardevs(guest))

    def test_a_flavor_asking_for_shared_memory_gets_it(self):
        flavor = objects.Flavor(vcpus=1, memory_mb=64, extra_specs={
            qemu.SHARED_MEMORY_SPEC: "true"})
        inst = objects.Instance(uuid=self.inst.uuid, image_ref="img", flavor=flavor,
                                system_metadata={})
        spec = self.drv.hv.launch_spec(inst, objects.ImageMeta.from_dict({}),
                                       root_disk=False, config_drive=False)
        self.assertTrue(spec["shared_memory"])
        inst.flavor.extra_specs = {}
        self.assertNotIn("shared_memory", self.drv.hv.launch_spec(
            inst, objects.ImageMeta.from_dict({}), root_disk=False, config_drive=False))
        record.write(self.idir.path, record.Record(name="i-1", vcpus=1, memory_mb=64,
                                                   spec=dict(spec, machine="pc")))
        self.drv.power_on(None, self.inst, None)
        self.assertTrue(self.drv.hv._shared_memory(self.drv._guest(self.inst)))

    def test_hot_plug_order_and_what_a_failure_removes(self):
        netdev, dev = qemu.vif_ids(self.PORT)
        guest = mock.Mock(uuid=self.inst.uuid)
        for fail, expected in (
                (None, ["qom-get", "chardev-add", "netdev_add", "device_add"]),
                ("netdev_add", ["qom-get", "chardev-add", "netdev_add", "chardev-remove"]),
                # (a vhost-user netdev takes its chardev with it)
                ("device_add", ["qom-get", "chardev-add", "netdev_add", "device_add",
                                "netdev_del"])):
            calls = []

            def qmp(guest, command, fail=fail, calls=calls, **arguments):
                calls.append(command)
                if command == fail:
                    raise exception.InternalError(command + " failed")
                return True if command == "qom-get" else {}

            with mock.patch.object(self.drv.hv, "_qmp", qmp):
                if fail:
                    self.assertRaises(exception.InternalError, self.drv.hv.attach_nic,
                                      guest, self.PORT, self.VIF)
                else:
                    self.drv.hv.attach_nic(guest, self.PORT, self.VIF)
            self.assertEqual(expected, calls)
