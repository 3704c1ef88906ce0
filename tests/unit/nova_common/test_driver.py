"""BaseDriver's generic flow against a recording Hypervisor (the contract is the unit's
boundary; the real hypervisors are exercised in the functional tests), with os-brick and
the tap privsep calls as the other boundaries."""
import dataclasses
import os
from unittest import mock

import fixtures
from nova import exception
from nova import objects
from nova.compute import manager
from nova.compute import power_state
from nova.compute import task_states
from nova.network import model as network_model
from oslo_utils import uuidutils

from nova_common import driver
from nova_common import hypervisor
from nova_common import instance_dir
from nova_common import record
from tests.unit.nova_common import base

objects.register_all()


class Recorder(hypervisor.Hypervisor):
    """A hypervisor whose guests are flags in memory; ``fail`` makes an operation raise
    and ``ignore_presses`` is how many shutdown requests a guest ignores."""
    description = hypervisor.Description(
        hypervisor_type="test", image_formats=("raw",),
        vif_types=(network_model.VIF_TYPE_TAP,),
        optional=frozenset({hypervisor.DISK_HOTPLUG, hypervisor.NIC_HOTPLUG,
                            hypervisor.SAVE_RESTORE}))

    def __init__(self):
        self.up, self.calls, self.fail, self.ignore_presses = set(), [], {}, 0

    def _call(self, name, *args):
        self.calls.append((name,) + args)
        if name in self.fail:
            raise self.fail[name]

    def check_host(self):
        pass

    def version(self):
        return 1

    def arch(self):
        return "x86_64"

    def open_events(self, on_event):
        pass

    def close_events(self):
        pass

    def reattach(self, guest):
        return guest.uuid in self.up

    def launch_spec(self, instance, image_meta, root_disk, config_drive, previous=None):
        return {"root_disk": root_disk}

    def start(self, guest, restore_from=None):
        self._call("start", dict(guest.record.volumes), dict(guest.record.vifs))
        self.up.add(guest.uuid)

    def stop(self, guest):
        self.up.discard(guest.uuid)

    def running(self, guest):
        return guest.uuid in self.up

    def state(self, guest):
        return power_state.RUNNING

    def request_shutdown(self, guest):
        self._call("request_shutdown")
        if self.ignore_presses:
            self.ignore_presses -= 1
        else:
            self.up.discard(guest.uuid)

    def reset(self, guest):
        pass

    def console_endpoints(self, guest):
        return {}

    def save(self, guest, path):
        self._call("save")
        with open(path, "w") as f:
            f.write("state")

    def attach_disk(self, guest, volume_id, volume):
        self._call("attach_disk", volume_id)

    def detach_disk(self, guest, volume_id, volume):
        self._call("detach_disk", volume_id)

    def attach_nic(self, guest, vif_id, vif):
        self._call("attach_nic", vif_id)

    def detach_nic(self, guest, vif_id, vif):
        self._call("detach_nic", vif_id)


class Driver(driver.BaseDriver):
    hypervisor_class = Recorder


def vif(port="3f4c8e2a-1b5d-4c6e-8f7a-9b0c1d2e3f4a", dev="tap3f4c8e2a-1b"):
    return network_model.VIF(id=port, address="fa:16:3e:00:00:01", type="tap",
                             devname=dev, details={}, active=True,
                             network=network_model.Network(id="n"))


class DriverTestCase(base.TestCase):
    def setUp(self):
        super().setUp()
        self.taps = []
        self.useFixture(fixtures.MockPatch(
            "nova_common.privsep.create_tap",
            lambda dev, uid, mtu=None, mac=None, multiqueue=False: self.taps.append(
                ("add", dev) if not multiqueue else ("add-mq", dev))))
        self.useFixture(fixtures.MockPatch(
            "nova_common.privsep.delete_tap", lambda dev: self.taps.append(("del", dev))))
        self.connected, self.disconnected = [], []
        self.useFixture(fixtures.MockPatch(
            "os_brick.initiator.connectors.local.LocalConnector.connect_volume",
            lambda _self, data: self.connected.append(data) or {
                "path": data["device_path"]}))
        self.useFixture(fixtures.MockPatch(
            "os_brick.initiator.connectors.local.LocalConnector.disconnect_volume",
            lambda _self, data, info, *a, **kw: self.disconnected.append(data)))
        self.drv = Driver(virtapi=None)
        self.hv = self.drv.hv
        self.inst = objects.Instance(uuid=uuidutils.generate_uuid(), id=1,
                                     project_id="p", image_ref="img", task_state=None,
                                     config_drive="", system_metadata={},
                                     flavor=objects.Flavor(vcpus=1, memory_mb=64,
                                                           root_gb=0, ephemeral_gb=0,
                                                           swap=0))
        self.idir = instance_dir.InstanceDir(self.inst.uuid).create()
        record.write(self.idir.path,
                     record.Record("instance-00000001", 1, 64, {"root_disk": False}))
        self.volume = os.path.join(self.instances, "vol")
        open(self.volume, "wb").close()

    def rec(self):
        return record.read(self.idir.path)

    def bdi(self):
        return {"block_device_mapping": [{
            "mount_device": "/dev/vdb", "boot_index": -1, "connection_info": {
                "driver_volume_type": "local", "serial": "v1",
                "data": {"device_path": self.volume, "volume_id": "v1"}}}]}



class TestBaseDriver(DriverTestCase):
    def test_capabilities_derive_from_the_description(self):
        caps = self.drv.capabilities
        self.assertTrue(caps["supports_image_type_raw"])
        self.assertFalse(caps["supports_image_type_qcow2"])
        self.assertTrue(caps["supports_attach_interface"])
        self.assertFalse(caps["supports_extend_volume"])      # DISK_RESIZE not declared
        self.assertRaises(ValueError, hypervisor.Description, "x", (), (),
                          frozenset({"teleport"}))

    def test_undeclared_optional_operations_are_not_implemented(self):
        self.drv.power_on(None, self.inst, [])
        for call in (lambda: self.drv.pause(self.inst),
                     lambda: self.drv.trigger_crash_dump(self.inst),
                     lambda: self.drv.rescue(None, self.inst, [], None, None, None, None),
                     lambda: self.drv.snapshot(None, self.inst, "img", None)):
            self.assertRaises(NotImplementedError, call)

    def test_a_corrupt_record_breaks_only_its_instance(self):
        other = instance_dir.InstanceDir(uuidutils.generate_uuid()).create()
        record.write(other.path, record.Record("i-2", 2, 128, {}))
        with open(self.idir.file(record.FILE), "w") as f:
            f.write('{"name": "i-1", "vcp')              # truncated
        self.assertEqual(["i-2"], self.drv.list_instances())
        self.assertEqual(2, self.drv.get_available_resource("node")["vcpus_used"])
        self.assertEqual(power_state.NOSTATE, self.drv.get_info(self.inst).state)
        e = self.assertRaises(exception.VirtualInterfacePlugException,
                              self.drv.plug_vifs, self.inst, [])
        self.assertIn(self.idir.file(record.FILE), str(e))
        self.assertIn("not JSON", str(e))
        self.drv.destroy(None, self.inst, [])            # still deletable
        self.assertFalse(self.idir.exists())

    def test_clean_shutdown_presses_again_every_retry_interval(self):
        self.drv.power_on(None, self.inst, [])
        self.hv.ignore_presses = 1
        self.drv.power_off(self.inst, timeout=2, retry_interval=0.3)
        self.assertEqual(2, self.hv.calls.count(("request_shutdown",)))
        self.assertEqual(0, self.hv.ignore_presses)      # the guest took the second one
        self.hv.calls.clear()
        self.drv.power_on(None, self.inst, [])
        self.hv.ignore_presses = 100
        self.drv.power_off(self.inst, timeout=0.5, retry_interval=0.2)
        self.assertEqual(3, self.hv.calls.count(("request_shutdown",)))
        self.assertFalse(self.hv.running(hypervisor.Guest(self.inst.uuid, None, None)))

    def test_power_on_and_hard_reboot_reconnect_and_replug(self):
        self.drv.power_on(None, self.inst, [vif()], self.bdi())
        self.assertEqual(1, len(self.connected))
        self.assertEqual([("add", "tap3f4c8e2a-1b")], self.taps)
        self.drv.reboot(None, self.inst, [vif()], "HARD", self.bdi())
        self.assertEqual(2, len(self.connected))               # connected again
        self.assertEqual([("add", "tap3f4c8e2a-1b")] * 2, self.taps)
        starts = [c for c in self.hv.calls if c[0] == "start"]
        self.assertEqual(["v1"], list(starts[-1][1]))           # the guest gets the volume
        self.assertEqual({"v1"}, set(self.rec().volumes))

    def _neutron_wires_plugged_taps(self):
        """nova-compute's real virtapi; Neutron's event comes once a tap is made."""
        compute = mock.Mock(instance_events=manager.InstanceEvents())
        self.drv.virtapi = manager.ComputeVirtAPI(compute)
        self.inst.vm_state = "active"          # (logged by nova on a timeout)
        self.wired = True
        def create_tap(dev, uid, mtu=None, mac=None, multiqueue=False):
            self.taps.append(("add", dev))
            if self.wired:
                event = objects.InstanceExternalEvent(
                    name="network-vif-plugged", tag=vif()["id"], status="completed")
                compute.instance_events.pop_instance_event(self.inst, event).set(event)
        self.useFixture(fixtures.MockPatch("nova_common.privsep.create_tap", create_tap))

    def test_hard_reboot_replugs_and_waits_when_configured(self):
        self._neutron_wires_plugged_taps()
        self.flags(vif_plugging_timeout=2, vif_plugging_is_fatal=True)
        self.flags(group="workarounds",
                   wait_for_vif_plugged_event_during_hard_reboot=["normal"])
        self.drv.power_on(None, self.inst, [vif()])
        self.drv.reboot(None, self.inst, [vif()], "HARD")
        # unplugged, so that Neutron reports it up again, then plugged before the start
        self.assertEqual([("add", "tap3f4c8e2a-1b"), ("del", "tap3f4c8e2a-1b"),
                          ("add", "tap3f4c8e2a-1b")], self.taps[1:])
        self.assertEqual(2, [c[0] for c in self.hv.calls].count("start"))
        # no event: the guest stays off, its port unplugged
        self.wired = False
        self.assertRaises(exception.VirtualInterfaceCreateException, self.drv.reboot,
                          None, self.inst, [vif()], "HARD")
        self.assertEqual(2, [c[0] for c in self.hv.calls].count("start"))
        self.assertEqual(("del", "tap3f4c8e2a-1b"), self.taps[-1])
        self.assertEqual(power_state.SHUTDOWN, self.drv.get_info(self.inst).state)

    def test_hard_reboot_does_not_wait_by_default(self):
        self._neutron_wires_plugged_taps()
        self.wired = False
        self.flags(vif_plugging_timeout=2, vif_plugging_is_fatal=True)
        down = vif()
        down["active"] = False
        self.drv.power_on(None, self.inst, [down])
        self.drv.reboot(None, self.inst, [down], "HARD")
        self.assertEqual([("add", "tap3f4c8e2a-1b")] * 2, self.taps)   # no unplug
        self.assertEqual(2, [c[0] for c in self.hv.calls].count("start"))

    def test_a_revert_waits_for_the_ports_not_yet_active(self):
        self._neutron_wires_plugged_taps()
        self.wired = False
        self.flags(vif_plugging_timeout=1, vif_plugging_is_fatal=True)
        down = vif()
        down["active"] = False
        self.drv.power_on(None, self.inst, [down])       # (power-on does not wait)
        self.drv.migrate_disk_and_power_off(None, self.inst, driver.CONF.host,
                                            self.inst.flavor, [down])
        self.assertRaises(exception.VirtualInterfaceCreateException,
                          self.drv.finish_revert_migration, None, self.inst, [down], None)
        self.assertEqual(1, [c[0] for c in self.hv.calls].count("start"))
        self.assertEqual(("del", "tap3f4c8e2a-1b"), self.taps[-1])
        self.wired = True
        self.drv.finish_revert_migration(None, self.inst, [down], None)
        self.assertEqual(2, [c[0] for c in self.hv.calls].count("start"))

    def test_plug_vifs_at_host_start_keeps_a_port_multi_queue(self):
        rec = self.rec()
        rec.vifs = {vif()["id"]: {"tap": "tap3f4c8e2a-1b", "mac": "m", "queues": 2}}
        record.write(self.idir.path, rec)
        self.drv.plug_vifs(self.inst, [vif()])
        self.assertEqual([("add-mq", "tap3f4c8e2a-1b")], self.taps)

    def test_a_failed_volume_attach_disconnects_and_keeps_the_record(self):
        self.drv.power_on(None, self.inst, [])
        cause = exception.InternalError("device_add failed")
        self.hv.fail["attach_disk"] = cause
        info = self.bdi()["block_device_mapping"][0]["connection_info"]
        e = self.assertRaises(exception.InternalError, self.drv.attach_volume, None, info,
                              self.inst, "/dev/vdb")
        self.assertIs(cause, e)
        self.assertEqual(1, len(self.disconnected))
        self.assertEqual({}, self.rec().volumes)

    def test_a_failed_interface_attach_unplugs_and_keeps_the_record(self):
        self.drv.power_on(None, self.inst, [])
        self.hv.fail["attach_nic"] = exception.InternalError("netdev_add failed")
        self.assertRaises(exception.InterfaceAttachFailed, self.drv.attach_interface,
                          None, self.inst, None, vif())
        self.assertEqual([("add", "tap3f4c8e2a-1b"), ("del", "tap3f4c8e2a-1b")], self.taps)
        self.assertEqual({}, self.rec().vifs)

    def test_a_failed_suspend_discards_the_state_and_keeps_the_guest(self):
        self.drv.power_on(None, self.inst, [])
        self.hv.fail["save"] = exception.InternalError("migrate failed")
        self.assertRaises(exception.InternalError, self.drv.suspend, None, self.inst)
        self.assertEqual(power_state.RUNNING, self.drv.get_info(self.inst).state)
        self.assertEqual([record.FILE], os.listdir(self.idir.path))

    def test_a_failed_spawn_leaves_nothing_and_reports_the_cause(self):
        self.idir.remove()
        cause = exception.InstanceDeployFailure(reason="no start")
        self.hv.fail["start"] = cause
        # the cleanup failing too must not hide the cause
        self.useFixture(fixtures.MockPatch("nova_common.privsep.delete_tap",
                                           side_effect=OSError("ip failed")))
        image = objects.ImageMeta.from_dict({"disk_format": "raw", "properties": {}})
        bdi = self.bdi()
        bdi["block_device_mapping"][0]["boot_index"] = 0     # boot from the volume
        e = self.assertRaises(exception.InstanceDeployFailure, self.drv.spawn, None,
                              self.inst, image, [], None, {}, [vif()], bdi)
        self.assertIs(cause, e)
        self.assertFalse(self.idir.exists())
        self.assertEqual(1, len(self.disconnected))

    def test_destroy_removes_a_leftover_resize_directory_unless_reverting(self):
        resized = instance_dir.InstanceDir(self.inst.uuid, suffix="_resize").create()
        self.inst.task_state = task_states.RESIZE_REVERTING
        self.drv.destroy(None, self.inst, [])
        self.assertTrue(resized.exists())
        self.idir.create()
        record.write(self.idir.path, record.Record("instance-00000001", 1, 64, {}))
        self.inst.task_state = task_states.DELETING
        self.drv.destroy(None, self.inst, [])
        self.assertFalse(resized.exists())
        self.assertFalse(self.idir.exists())


class TestGuestUids(DriverTestCase):
    """Guest uids: none shared, also between spawns whose records are not written yet."""

    def test_spawns_at_once_get_distinct_uids_and_a_gone_guests_uid_is_free_again(self):
        a, b, c = (uuidutils.generate_uuid() for _ in range(3))
        uid_a = self.drv._new_uid(a)
        uid_b = self.drv._new_uid(b)            # A's record is not written yet
        self.assertNotEqual(uid_a, uid_b)
        self.assertEqual(uid_a, self.drv._new_uid(a))       # its own, asked again
        # A's record written (with its uid) and A then deleted: its uid comes back
        a_dir = instance_dir.InstanceDir(a).create()
        record.write(a_dir.path, record.Record("i-a", 1, 64, {}, uid=uid_a))
        self.assertNotIn(self.drv._new_uid(c), (uid_a, uid_b))
        a_dir.remove()
        self.assertEqual(uid_a, self.drv._new_uid(uuidutils.generate_uuid()))


class SharingRecorder(Recorder):
    description = hypervisor.Description(
        hypervisor_type="test", image_formats=("raw",),
        vif_types=(network_model.VIF_TYPE_TAP,),
        optional=frozenset({hypervisor.DISK_HOTPLUG, hypervisor.MULTIATTACH,
                            hypervisor.DISK_SWAP}))

    def swap_disk(self, guest, old_id, old, new_id, new):
        self._call("swap_disk", old_id, new_id)


class SharingDriver(driver.BaseDriver):
    hypervisor_class = SharingRecorder


class TestSharedAndSwappedVolumes(DriverTestCase):
    def setUp(self):
        super().setUp()
        self.drv = SharingDriver(virtapi=None)
        self.hv = self.drv.hv

    def info(self, volume_id="v1", path=None, **kw):
        return dict({"driver_volume_type": "local", "serial": volume_id,
                     "data": {"device_path": path or self.volume,
                              "volume_id": volume_id}}, **kw)

    def test_multiattach_keeps_the_host_connection_while_another_instance_uses_it(self):
        other = objects.Instance(uuid=uuidutils.generate_uuid(), id=2, project_id="p",
                                 image_ref="img", task_state=None, config_drive="",
                                 system_metadata={}, flavor=self.inst.flavor)
        record.write(instance_dir.InstanceDir(other.uuid).create().path,
                     record.Record("instance-00000002", 1, 64, {"root_disk": False}))
        info = self.info(multiattach=True)
        for inst in (self.inst, other):
            self.drv.power_on(None, inst, [])
            self.drv.attach_volume(None, info, inst, "/dev/vdb")
        self.assertTrue(self.rec().volumes["v1"]["shared"])
        self.drv.detach_volume(None, info, self.inst, "/dev/vdb")
        self.assertEqual([], self.disconnected)          # the other instance uses it
        self.drv.detach_volume(None, info, other, "/dev/vdb")
        self.assertEqual(1, len(self.disconnected))

    def test_multiattach_refused_where_the_hypervisor_cannot_share(self):
        drv = Driver(virtapi=None)
        drv.power_on(None, self.inst, [])
        self.assertRaises(exception.MultiattachNotSupportedByVirtDriver,
                          drv.attach_volume, None, self.info(multiattach=True),
                          self.inst, "/dev/vdb")
        self.assertEqual([], self.connected)

    def test_swap_connects_the_new_volume_and_disconnects_the_old(self):
        new_path = os.path.join(self.instances, "vol2")
        open(new_path, "wb").close()
        self.drv.power_on(None, self.inst, [])
        self.drv.attach_volume(None, self.info(), self.inst, "/dev/vdb")
        slot = self.rec().volumes["v1"]["slot"]
        self.drv.swap_volume(None, self.info(), self.info("v2", new_path), self.inst,
                             "/dev/vdb", None)
        self.assertIn(("swap_disk", "v1", "v2"), self.hv.calls)
        self.assertEqual(["v2"], list(self.rec().volumes))
        self.assertEqual((new_path, slot), (self.rec().volumes["v2"]["path"],
                                            self.rec().volumes["v2"]["slot"]))
        self.assertEqual([self.volume], [d["device_path"] for d in self.disconnected])

    def test_a_failed_swap_keeps_the_old_volume(self):
        new_path = os.path.join(self.instances, "vol2")
        open(new_path, "wb").close()
        self.drv.power_on(None, self.inst, [])
        self.drv.attach_volume(None, self.info(), self.inst, "/dev/vdb")
        self.hv.fail["swap_disk"] = exception.InternalError("mirror failed")
        self.assertRaises(exception.InternalError, self.drv.swap_volume, None,
                          self.info(), self.info("v2", new_path), self.inst, "/dev/vdb",
                          None)
        self.assertEqual(["v1"], list(self.rec().volumes))
        self.assertEqual([new_path], [d["device_path"] for d in self.disconnected])


class EncryptingRecorder(SharingRecorder):
    def volume_encryption(self, guest, context, volume_id, connection_info, encryption):
        self._call("volume_encryption", volume_id)
        if encryption.get("control_location") == "back-end":
            return None
        return {"format": "luks", "key": {"data": "c2VhbGVk", "iv": "aXY="}}


class EncryptingDriver(driver.BaseDriver):
    hypervisor_class = EncryptingRecorder


class TestEncryptedVolumes(DriverTestCase):
    info = TestSharedAndSwappedVolumes.info
    META = {"provider": "luks", "encryption_key_id": "k", "control_location": "front-end"}

    def setUp(self):
        super().setUp()
        self.drv = EncryptingDriver(virtapi=None)
        self.hv = self.drv.hv

    def encrypted(self, volume_id="v1", path=None):
        info = self.info(volume_id, path)
        info["data"]["encrypted"] = True
        return info

    def test_the_encryption_is_recorded_and_kept_over_a_restart(self):
        self.drv.power_on(None, self.inst, [])
        self.drv.attach_volume(None, self.encrypted(), self.inst, "/dev/vdb",
                               encryption=self.META)
        self.assertEqual("luks", self.rec().volumes["v1"]["encryption"]["format"])
        self.drv.reboot(None, self.inst, [], "HARD", block_device_info={
            "block_device_mapping": [{"mount_device": "/dev/vdb", "boot_index": -1,
                                      "connection_info": self.encrypted()}]})
        self.assertEqual("luks", self.rec().volumes["v1"]["encryption"]["format"])
        started = [c for c in self.hv.calls if c[0] == "start"][-1]
        self.assertIn("encryption", started[1]["v1"])

    def test_back_end_encryption_attaches_a_plain_volume(self):
        self.drv.power_on(None, self.inst, [])
        self.drv.attach_volume(None, self.encrypted(), self.inst, "/dev/vdb",
                               encryption=dict(self.META, control_location="back-end"))
        self.assertNotIn("encryption", self.rec().volumes["v1"])

    def test_refused_uses_leave_nothing_connected(self):
        # a stopped server: the hypervisor cannot check or write the header
        self.assertRaises(exception.VolumeEncryptionNotSupported, self.drv.attach_volume,
                          None, self.encrypted(), self.inst, "/dev/vdb",
                          encryption=self.META)
        # a start with a volume cinder says is encrypted and no metadata for it
        self.assertRaises(exception.VolumeEncryptionNotSupported, self.drv.power_on,
                          None, self.inst, [], block_device_info={
                              "block_device_mapping": [{
                                  "mount_device": "/dev/vdb", "boot_index": -1,
                                  "connection_info": self.encrypted()}]})
        self.assertEqual([], self.connected)
        self.drv.power_on(None, self.inst, [])
        self.drv.attach_volume(None, self.encrypted(), self.inst, "/dev/vdb",
                               encryption=self.META)
        new_path = os.path.join(self.instances, "vol2")
        open(new_path, "wb").close()
        self.assertRaises(NotImplementedError, self.drv.swap_volume, None,
                          self.encrypted(), self.info("v2", new_path), self.inst,
                          "/dev/vdb", None)
        self.assertRaises(exception.ExtendVolumeNotSupported, self.drv.extend_volume,
                          None, self.encrypted(), self.inst, 2 * 1024 ** 3)
        flavor = objects.Flavor(vcpus=1, memory_mb=64, root_gb=0, ephemeral_gb=0, swap=0)
        self.assertRaises(exception.InstanceFaultRollback,
                          self.drv.migrate_disk_and_power_off, None, self.inst,
                          driver.CONF.host, flavor, [])
        self.assertEqual(["v1"], list(self.rec().volumes))
        self.assertEqual([], self.disconnected)
        self.assertNotIn(("swap_disk", "v1", "v2"), self.hv.calls)

    def test_a_hypervisor_without_encryption_refuses(self):
        drv = SharingDriver(virtapi=None)
        drv.power_on(None, self.inst, [])
        self.assertRaises(exception.VolumeEncryptionNotSupported, drv.attach_volume, None,
                          self.encrypted(), self.inst, "/dev/vdb", encryption=self.META)
        self.assertEqual([], self.connected)


class VhostUserRecorder(Recorder):
    description = dataclasses.replace(
        Recorder.description,
        vif_types=(network_model.VIF_TYPE_TAP, network_model.VIF_TYPE_VHOSTUSER))


class TestVhostUserInterfaces(DriverTestCase):
    """A ``vhostuser`` port's entry in the record is its socket (no tap), on a hypervisor
    that lists the type; os-vif's plug is the boundary."""

    def setUp(self):
        super().setUp()
        self.drv.hv = self.hv = VhostUserRecorder()
        self.sock_dir = os.path.join(self.instances, "vhu")
        self.flags(vhostuser_socket_dir=self.sock_dir, group="hci_guests")
        self.plugged = []
        for name in ("plug", "unplug"):
            self.useFixture(fixtures.MockPatch(
                "os_vif." + name, lambda obj, info, name=name: self.plugged.append(
                    (name, type(obj).__name__))))

    def vhu(self):
        port = "3f4c8e2a-1b5d-4c6e-8f7a-9b0c1d2e3f4a"
        return network_model.VIF(
            id=port, address="fa:16:3e:00:00:01", type="vhostuser",
            devname="tap3f4c8e2a-1b", active=True, ovs_interfaceid=port,
            details={"vhostuser_mode": "server", "vhostuser_ovs_plug": True,
                     "vhostuser_socket": os.path.join(self.sock_dir, "vhu3f4c8e2a-1b")},
            network=network_model.Network(id="n", bridge="br-int"))

    def test_attach_records_the_socket_and_detach_unplugs(self):
        self.drv.attach_interface(None, self.inst, None, self.vhu())
        self.assertEqual({"vhostuser": os.path.join(self.sock_dir, "vhu3f4c8e2a-1b"),
                          "mac": "fa:16:3e:00:00:01", "slot": None},
                         self.rec().vifs[self.vhu()["id"]])
        self.assertEqual([("plug", "VIFVHostUser")], self.plugged)
        self.assertEqual([], self.taps)                       # no tap for vhost-user
        self.drv.detach_interface(None, self.inst, self.vhu())
        self.assertEqual({}, self.rec().vifs)
        self.assertEqual(("unplug", "VIFVHostUser"), self.plugged[-1])

    def test_refused_by_a_hypervisor_without_it(self):
        self.drv.hv = self.hv = Recorder()
        e = self.assertRaises(exception.VirtualInterfacePlugException,
                              self.drv.attach_interface, None, self.inst, None, self.vhu())
        self.assertIn("DPDK", str(e))
        self.assertEqual([], self.plugged)


class MigratingRecorder(Recorder):
    """A hypervisor that receives live migrations: ``prepare_incoming`` sees which taps
    exist when the incoming guest process would start."""
    description = dataclasses.replace(
        Recorder.description,
        optional=Recorder.description.optional | {hypervisor.LIVE_MIGRATION})

    def __init__(self, taps):
        super().__init__()
        self.taps, self.taps_at_start = taps, None

    def migration_drives(self, guest):
        return []

    def prepare_incoming(self, guest, address, drives):
        self._call("prepare_incoming", address)
        self.taps_at_start = list(self.taps)
        return 4444, 0

    def wait_incoming(self, guest, must_start=False):
        return "completed"

    def finish_incoming(self, guest):
        self.up.add(guest.uuid)


class TestLiveMigrationInterfaces(DriverTestCase):
    """The ports of a live-migrating instance: plugged on the destination before its
    guest process waits for the migration (nova waits for network-vif-plugged before
    it starts the migration), unplugged there by a failure or a rollback, and on the
    source after the migration."""

    def setUp(self):
        super().setUp()
        self.drv.hv = self.hv = MigratingRecorder(self.taps)
        self.incoming = objects.Instance(
            uuid=uuidutils.generate_uuid(), id=2, project_id="p", image_ref="img",
            task_state=None, config_drive="", system_metadata={},
            flavor=self.inst.flavor)
        self.useFixture(fixtures.MockPatch(
            "nova.objects.ImageMeta.from_instance",
            return_value=objects.ImageMeta.from_dict({})))

    def migrate_data(self):
        return objects.LibvirtLiveMigrateData(
            is_shared_instance_path=False, is_volume_backed=True, block_migration=False,
            target_connect_addr="127.0.0.1")

    def test_plugged_before_the_incoming_guest_waits(self):
        data = self.drv.pre_live_migration(None, self.incoming, None, [vif()], None,
                                           self.migrate_data())
        self.assertEqual([4444, 0], data.serial_listen_ports)
        self.assertEqual([("add", "tap3f4c8e2a-1b")], self.hv.taps_at_start)
        idir = instance_dir.InstanceDir(self.incoming.uuid)
        self.assertIn(vif()["id"], record.read(idir.path).vifs)
        # nova's rollback on this host: the port goes with the rest
        self.drv.rollback_live_migration_at_destination(
            None, self.incoming, [vif()], None, migrate_data=self.migrate_data())
        self.assertEqual(("del", "tap3f4c8e2a-1b"), self.taps[-1])
        self.assertFalse(idir.exists())

    def test_a_failed_incoming_start_unplugs_and_leaves_nothing(self):
        self.hv.fail["prepare_incoming"] = exception.InternalError("no")
        self.assertRaises(exception.InternalError, self.drv.pre_live_migration, None,
                          self.incoming, None, [vif()], None, self.migrate_data())
        self.assertEqual([("add", "tap3f4c8e2a-1b"), ("del", "tap3f4c8e2a-1b")],
                         self.taps)
        self.assertFalse(instance_dir.InstanceDir(self.incoming.uuid).exists())

    def test_the_source_unplugs_after_the_migration(self):
        self.drv.post_live_migration_at_source(None, self.inst, [vif()])
        self.assertEqual([("del", "tap3f4c8e2a-1b")], self.taps)
