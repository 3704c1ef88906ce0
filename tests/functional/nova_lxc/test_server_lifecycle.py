"""LXCDriver through the real nova services (nova's own functional framework: API,
conductor, scheduler, placement fixture, nova-compute with this driver), booting busybox
system containers on real liblxc from a root tarball and from an ext4 image.

Runs in nova's eventlet mode by default and in native-threads mode with
OS_NOVA_DISABLE_EVENTLET_PATCHING=1 (tox runs both).
"""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_lxc import base  # noqa: I001  isort:skip
import copy
import os
import signal
import subprocess
import time
import uuid

from nova_common import instance_dir


class TestServerLifecycle(base.LXCServerTestBase):
    def test_boot_tarball_console_stop_start_pause_reboot_delete(self):
        server = self.boot("tar", user_data="#cloud-config from the test")
        out = self.wait_console(server, "HCILXC READY")
        self.assertIn("HCILXC READY uid=0", out)
        # cloud-init's NoCloud seed, written into the container's root
        self.assertIn('HCILXC SEED "%s"' % server["id"], out)
        self.assertIn("HCILXC USERDATA #cloud-config from the test", out)
        pid = self.state(server)["init_pid"]
        with open("/proc/%d/status" % pid) as f:      # unprivileged by default
            self.assertIn("Uid:\t100000", f.read())

        server = self._stop_server(server)
        self.assertEqual("STOPPED", self.state(server)["state"])
        self.assertIn("HCILXC HALT", self.console(server))    # a clean shutdown
        server = self._start_server(server)
        self.assertEqual("RUNNING", self.state(server)["state"])

        self.api.post_server_action(server["id"], {"pause": None})
        server = self._wait_for_state_change(server, "PAUSED")
        self.assertEqual("FROZEN", self.state(server)["state"])
        self.api.post_server_action(server["id"], {"unpause": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertEqual("RUNNING", self.state(server)["state"])

        for hard in (False, True):
            before = self.state(server)["init_pid"]
            self._reboot_server(server, hard=hard)
            after = self.state(server)["init_pid"]
            self.assertNotEqual(before, after)
            self.assertEqual("RUNNING", self.state(server)["state"])

        self._delete_server(server)
        self.assertEqual([], instance_dir.list_uuids(self.instances))
        self.assertFalse(os.path.exists(os.path.join(self.instances, server["id"])))
        self.assertEqual("STOPPED", self.state(server)["state"])

    def test_ext4_image_and_an_init_that_dies_shows_shutoff(self):
        server = self.boot("ext4")
        self.wait_console(server, "HCILXC READY uid=0")
        # the container's init dies: nova hears of it through a lifecycle event (the
        # periodic power-state sync runs only every 10 minutes by default)
        os.kill(self.state(server)["init_pid"], signal.SIGKILL)
        server = self._wait_for_state_change(server, "SHUTOFF")
        server = self._start_server(server)
        self.wait_console(server, "HCILXC READY")
        self._delete_server(server)
        self.assertEqual([], os.listdir(self.instances) and
                         [n for n in os.listdir(self.instances) if not n.startswith("_")])

    def test_restarted_compute_manages_running_containers_again(self):
        server = self.boot("tar")
        self.wait_console(server, "HCILXC READY")
        pid = self.state(server)["init_pid"]
        self.compute = self.restart_compute_service(self.compute,
                                                    keep_hypervisor_state=False)
        self.assertEqual(pid, self.state(server)["init_pid"])      # untouched
        server = self._wait_for_state_change(server, "ACTIVE")
        self.api.post_server_action(server["id"], {"pause": None})
        server = self._wait_for_state_change(server, "PAUSED")
        self.api.post_server_action(server["id"], {"unpause": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        # the new service hears of a dying init too
        os.kill(pid, signal.SIGKILL)
        server = self._wait_for_state_change(server, "SHUTOFF")
        self._delete_server(server)
        self.assertEqual([], instance_dir.list_uuids(self.instances))

    def test_resize_changes_the_cgroup_limits_revert_and_confirm(self):
        self.flags(allow_resize_to_same_host=True)
        server = self.boot("tar")
        self.wait_console(server, "HCILXC READY")
        self.assertEqual(str(512 * 1024 ** 2), self.cgroup_value(
            server, "memory.limit_in_bytes"))           # m1.tiny: 512 MiB
        self.assertEqual(0, self.run_in(server, "echo kept > /root/file"))
        bigger = self.api.post_flavor({"flavor": {
            "name": "lxc.big", "ram": 768, "vcpus": 2, "disk": 2}})
        self.api.post_extra_spec(bigger["id"], {"extra_specs": {
            "quota:cpu_quota": "50000"}})
        server = self._resize_server(server, bigger["id"])
        self.assertEqual(str(768 * 1024 ** 2), self.cgroup_value(
            server, "memory.limit_in_bytes"))
        self.assertEqual("2048", self.cgroup_value(server, "cpu.shares"))
        self.assertEqual("50000", self.cgroup_value(server, "cpu.cfs_quota_us"))
        # the root disk grown from 1 to 2 GiB, its files kept
        disk = os.statvfs(os.path.join(self.instances, server["id"], "rootfs.mnt"))
        self.assertGreater(disk.f_blocks * disk.f_frsize, 1.5 * 1024 ** 3)
        self.assertEqual(0, self.run_in(server, "test \"$(cat /root/file)\" = kept"))
        server = self._revert_resize(server)
        self.assertEqual(str(512 * 1024 ** 2), self.cgroup_value(
            server, "memory.limit_in_bytes"))
        self.assertEqual(0, self.run_in(server, "test \"$(cat /root/file)\" = kept"))
        server = self._resize_server(server, bigger["id"])
        self._confirm_resize(server)
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertEqual(str(768 * 1024 ** 2), self.cgroup_value(
            server, "memory.limit_in_bytes"))
        self.assertEqual(0, self.run_in(server, "test -f /root/file"))
        self._delete_server(server)
        self.assertEqual([], instance_dir.list_uuids(self.instances))

    def test_snapshot_is_a_root_tarball_that_boots(self):
        server = self.boot("ext4")
        self.wait_console(server, "HCILXC READY")
        self.assertEqual(0, self.run_in(server, "echo snap-$(id -u) > /etc/hci-marker"))
        self._snapshot_server(server, "snap")
        image = self._wait_for_image("snap")
        self.assertEqual(("raw", "bare"), (image["disk_format"], image["container_format"]))
        copy = self.boot(image["id"])
        self.wait_console(copy, "HCILXC MARKER snap-0")
        for s in (server, copy):
            self._delete_server(s)
        self.assertEqual([], instance_dir.list_uuids(self.instances))

    def test_a_tap_port_is_the_host_end_of_the_container_s_veth(self):
        """A port bound as a ``tap`` VIF: the veth pair made at plugging has the port's
        device name on the host and its MAC and fixed IP inside; the test plays the
        network backend in a network namespace of its own holding the subnet's gateway
        address, which the container pings. Delete leaves no veth."""
        netns = "hcilxc%d" % (os.getpid() % 100000)
        ip(["netns", "add", netns])
        self.addCleanup(ip, ["netns", "del", netns], check=False)
        # the fixture's port with an id of its own: its device name (from the id) must
        # not clash with another test's on this host
        port = dict(copy.deepcopy(self.neutron.port_1), id=str(uuid.uuid4()),
                    **{"binding:vif_type": "tap"})
        self.neutron._ports[port["id"]] = port
        tap = "tap" + port["id"][:11]
        server = self.boot("tar", networks=[{"port": port["id"]}])
        self.wait_console(server, "HCILXC NIC eth0")
        self.assertIn("veth", ip(["-d", "link", "show", tap]))
        self.assertEqual(0, self.run_in(
            server, "ip link show eth0 | grep -q %s && ip -4 addr show dev eth0 | grep -q "
            "'192.168.1.3/24 brd 192.168.1.255'" % port["mac_address"]))
        # the backend's part: the host end into the test's namespace, with the gateway
        ip(["link", "set", tap, "netns", netns])
        ip(["-n", netns, "addr", "add", "192.168.1.1/24", "dev", tap])
        ip(["-n", netns, "link", "set", tap, "up"])
        self.assertEqual(0, self.run_in(server, "ping -c 1 -W 5 192.168.1.1"))
        self._delete_server(server)
        self.assertEqual("", ip(["-n", netns, "link", "show", tap], check=False))
        self.assertEqual("", ip(["link", "show", tap], check=False))

    def test_an_image_that_is_no_root_filesystem_is_refused(self):
        ctx = base.nova_context.get_admin_context()
        image = self.glance.create(ctx, {
            "name": "junk", "disk_format": "raw", "container_format": "bare",
            "visibility": "public", "status": "active"}, data=__import__("io").BytesIO(
                os.urandom(8192)))["id"]
        server = self.boot(image, state="ERROR")
        self.assertIn("neither a root filesystem tarball",
                      self.api.get_server(server["id"])["fault"]["message"])
        self.assertEqual([], instance_dir.list_uuids(self.instances))
        time.sleep(0)


def ip(args, check=True):
    """``ip`` on this host; the output, or "" when ``check`` is off and it failed."""
    res = subprocess.run(["ip"] + args, capture_output=True, text=True, timeout=30)
    if check and res.returncode:
        raise RuntimeError("ip %s: %s" % (" ".join(args), res.stderr))
    return res.stdout if res.returncode == 0 else ""
