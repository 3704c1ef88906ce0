"""The freeze recovery path of nova_lxc.container, which real liblxc does not reach on
demand (its freeze hung in 2 of 84 tries on these hosts): the lxc tools (child processes)
and the container's state are the boundary; the freezer file is a real file."""
import os
import subprocess
from unittest import mock

import fixtures
import testtools

from nova_lxc import container

NAME = "12345678-9abc-def0-1234-56789abcdef0"


class FakeContainer:
    def __init__(self, states):
        self.states = states          # successive .state values
        self.defined, self.init_pid = True, 4242

    @property
    def state(self):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


class TestFreeze(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.freezer = os.path.join(self.dir, "freezer.state")
        with open(self.freezer, "w") as f:
            f.write("FROZEN")
        self.useFixture(fixtures.MockPatchObject(container, "_cgroup_file",
                                                 return_value=self.freezer))
        self.tools = []

    def run_tools(self, hang):
        def run(argv, **kw):
            self.tools.append(argv[0])
            if argv[0] in hang:
                raise subprocess.TimeoutExpired(argv, kw["timeout"])
            return subprocess.CompletedProcess(argv, 0, b"", b"")
        return self.useFixture(fixtures.MockPatchObject(container.subprocess, "run",
                                                        side_effect=run))

    def test_a_hanging_freeze_is_thawed_and_reported(self):
        self.run_tools(hang={"lxc-freeze", "lxc-unfreeze"})
        fake = FakeContainer(["RUNNING", "FROZEN", "FROZEN", "RUNNING"])
        with mock.patch.object(container.lxc, "Container", return_value=fake):
            err = self.assertRaises(container.ContainerError, container.freeze, NAME,
                                    "/inst", 1)
        self.assertIn("left running", str(err))
        with open(self.freezer) as f:
            self.assertEqual("THAWED", f.read())
        self.assertEqual(["lxc-freeze", "lxc-unfreeze"], self.tools)

    def test_a_freeze_that_works_is_not_undone(self):
        self.run_tools(hang=set())
        fake = FakeContainer(["RUNNING", "FROZEN"])
        with mock.patch.object(container.lxc, "Container", return_value=fake):
            container.freeze(NAME, "/inst", 1)
        with open(self.freezer) as f:
            self.assertEqual("FROZEN", f.read())
        self.assertEqual(["lxc-freeze"], self.tools)



class TestCgroupFile(testtools.TestCase):
    def test_v1_and_v2_paths(self):
        proc = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(proc, "7"))
        with open(os.path.join(proc, "7", "cgroup"), "w") as f:
            f.write("5:cpu,cpuacct:/lxc.payload.x\n3:freezer:/lxc.payload.x\n"
                    "0::/lxc.payload.x\n")
        self.assertEqual("/sys/fs/cgroup/freezer/lxc.payload.x/freezer.state",
                         container._cgroup_file(7, "freezer", "cgroup.freeze",
                                                "freezer.state", proc=proc))
        with open(os.path.join(proc, "7", "cgroup"), "w") as f:
            f.write("0::/lxc.payload.x\n")
        self.assertEqual("/sys/fs/cgroup/lxc.payload.x/cgroup.freeze",
                         container._cgroup_file(7, "freezer", "cgroup.freeze",
                                                "freezer.state", proc=proc))
