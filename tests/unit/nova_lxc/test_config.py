import os
import tempfile

from nova import exception
import testtools

from nova_lxc import config

NAME = "12345678-9abc-def0-1234-56789abcdef0"


def build(**kw):
    args = dict(name=NAME, rootfs="overlay:/cache/base:/inst/%s/rootfs.upper" % NAME,
                console_log="/inst/%s/console.log" % NAME,
                limits=config.cgroup_limits(1, 512, 2), idmap=(100000, 65536))
    args.update(kw)
    return config.container_config(**args)


class TestCgroupLimits(testtools.TestCase):
    def test_v1_keys(self):
        self.assertEqual(
            [("lxc.cgroup.memory.limit_in_bytes", str(512 * 1024 ** 2)),
             ("lxc.cgroup.cpu.shares", "2048"),
             ("lxc.cgroup.cpu.cfs_period_us", "100000"),
             ("lxc.cgroup.cpu.cfs_quota_us", "200000"),
             ("lxc.cgroup.pids.max", "100")],
            config.cgroup_limits(1, 512, 2, pids_max=100))

    def test_v2_keys(self):
        self.assertEqual(
            [("lxc.cgroup2.memory.max", str(512 * 1024 ** 2)),
             ("lxc.cgroup2.memory.swap.max", "0"),
             ("lxc.cgroup2.cpu.weight", "39"),
             ("lxc.cgroup2.cpu.max", "50000 100000")],
            config.cgroup_limits(2, 512, 1, cpu_shares=1024, cpu_quota=50000))

    def test_shares_to_weight_matches_the_kernel_s_range(self):
        self.assertEqual(1, config.shares_to_weight(2))
        self.assertEqual(10000, config.shares_to_weight(262144))
        self.assertEqual(39, config.shares_to_weight(1024))

    def test_flavor_quota_and_period(self):
        items = dict(config.cgroup_limits(1, 64, 4, cpu_shares=512, cpu_quota=25000,
                                          cpu_period=50000))
        self.assertEqual("512", items["lxc.cgroup.cpu.shares"])
        self.assertEqual("25000", items["lxc.cgroup.cpu.cfs_quota_us"])
        self.assertEqual("50000", items["lxc.cgroup.cpu.cfs_period_us"])

    def test_bad_values_are_refused(self):
        for args, kw in (((3, 512, 1), {}), ((1, 0, 1), {}), ((1, 512, -1), {}),
                         ((1, 512, 1), {"cpu_period": 10}),
                         ((1, 512, 1), {"cpu_quota": 5})):
            self.assertRaises(exception.InvalidInput, config.cgroup_limits, *args, **kw)

    def test_host_version(self):
        with tempfile.TemporaryDirectory() as root:
            self.assertEqual(1, config.host_cgroup_version(root))
            open(os.path.join(root, "cgroup.controllers"), "w").close()
            self.assertEqual(2, config.host_cgroup_version(root))


class TestContainerConfig(testtools.TestCase):
    def test_unprivileged_by_default(self):
        items = build(includes=["/usr/share/lxc/config/common.conf"])
        self.assertIn(("lxc.include", "/usr/share/lxc/config/common.conf"), items)
        self.assertIn(("lxc.include", config.USERNS_CONF), items)
        self.assertIn(("lxc.idmap", "u 0 100000 65536"), items)
        self.assertIn(("lxc.idmap", "g 0 100000 65536"), items)
        self.assertIn(("lxc.net.0.type", "empty"), items)
        self.assertIn(("lxc.signal.halt", "SIGPWR"), items)
        self.assertRaises(exception.InvalidInput, build, idmap=None)

    def test_privileged_only_when_asked(self):
        items = build(privileged=True, idmap=None)
        self.assertNotIn("lxc.idmap", dict(items))
        self.assertNotIn(("lxc.include", config.USERNS_CONF), items)

    def test_cgroup_keys_of_the_other_version_are_refused(self):
        self.assertRaises(exception.InvalidInput, build,
                          limits=config.cgroup_limits(2, 512, 1), cgroup_version=1)
        self.assertRaises(exception.InvalidInput, build,
                          limits=[("lxc.cgroup.blkio.weight", "100")])
        items = build(limits=config.cgroup_limits(2, 512, 1), cgroup_version=2)
        self.assertIn(("lxc.cgroup2.memory.max", str(512 * 1024 ** 2)), items)

    def test_hostile_values_are_refused(self):
        for kw in ({"name": "../etc"}, {"name": NAME + "\nlxc.include = /x"},
                   {"rootfs": "overlay:/a:/b\nlxc.hook.pre-start = /bin/sh"},
                   {"rootfs": "relative/dir"}, {"rootfs": "overlay:/a:/b:/c"},
                   {"rootfs": "/a/../etc"}, {"console_log": "/x\n"},
                   {"halt_signal": "SIGTERM; rm"}, {"apparmor_profile": "x y"},
                   {"mounts": [("/h", "/c", "rw,dev\nx")]}, {"idmap": (0, 65536)}):
            self.assertRaises(exception.InvalidInput, build, **kw)

    def test_nics(self):
        # the container's end of the port's veth pair, handed to liblxc as a physical one
        nics = config.nic_items(0, "vp12345678-9a", "FA:16:3E:00:00:01", mtu=1450,
                                ipv4=[("10.0.0.5", 24, "10.0.0.255")], gateway="10.0.0.1")
        self.assertEqual([
            ("lxc.net.0.type", "phys"), ("lxc.net.0.link", "vp12345678-9a"),
            ("lxc.net.0.name", "eth0"), ("lxc.net.0.hwaddr", "fa:16:3e:00:00:01"),
            ("lxc.net.0.flags", "up"), ("lxc.net.0.mtu", "1450"),
            ("lxc.net.0.ipv4.address", "10.0.0.5/24 10.0.0.255"),
            ("lxc.net.0.ipv4.gateway", "10.0.0.1")], nics)
        items = build(nics=nics)
        self.assertNotIn(("lxc.net.0.type", "empty"), items)
        for args in (("vp;x", "fa:16:3e:00:00:01"), ("vp1", "fa:16:3e:00:00"),
                     ("a" * 16, "fa:16:3e:00:00:01")):
            self.assertRaises(exception.InvalidInput, config.nic_items, 0, *args)
        self.assertRaises(exception.InvalidInput, config.nic_items, 0, "vp1",
                          "fa:16:3e:00:00:01", ipv4=[("10.0.0.256", 24, "10.0.0.255")])

    def test_peer_names(self):
        self.assertEqual("vp12345678-9a", config.peer_name("tap12345678-9a"))
        self.assertEqual("vpeth9", config.peer_name("eth9"))
        for bad in ("tap;x", "", None, "a" * 16):
            self.assertRaises(exception.InvalidInput, config.peer_name, bad)

    def test_signals(self):
        for sig in ("SIGPWR", "SIGRTMIN+3", "SIGUSR2", "SIGTERM"):
            self.assertEqual(sig, config.check_signal(sig))
        for sig in ("TERM", "SIGRTMIN+3 x", "sigterm", ""):
            self.assertRaises(exception.InvalidInput, config.check_signal, sig)
