"""Two cinder-volume services of one cluster drive one remote ZFS host (kernel OpenZFS in
the test guest, LIO exports through cinder-rtstool there), their locks through cinder's
coordination on a real etcd: 50 concurrent create/clone/snapshot/extend/export/delete
operations spread over both; one service is killed by PID while it deletes parents and
clones at the same moment as the other; the survivor carries on, finishes what the dead
one left (as cinder's cleanup of a dead service's resources gives it to another service
of the cluster) and nothing is lost or leaked: every zvol, snapshot and LIO target is
accounted for, the saved LIO configuration matches the live one, clones keep their data.

The services run the driver as cinder-volume does (eventlet, coordinator started, a
``lock_path`` of their own as on two cinder hosts), each in a process of its own
(``volume_service``); this test plays the API and scheduler, giving each operation to one
of them."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid

import fixtures
import testtools

from tests.common import process
from tests.common import zfsguest
from tests.functional.zfs_cinder.active_active import etcd
from tests.functional.zfs_cinder.active_active import volume_service
from zfs_cinder import manageable
from zfs_common import sshcontrol

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))
GiB = 1024 ** 3
IQN = "iqn.2010-10.org.openstack:volume-"
LOCK_TIMEOUT = 10       # a dead service's locks are free again after this (etcd lease TTL)


class Node:
    """One volume service process; ``call`` gives it an operation, ``wait`` its answer."""

    def __init__(self, test, name, config):
        self.name = name
        self.dir = os.path.join(test.workdir, name)
        os.makedirs(os.path.join(self.dir, "locks"))
        path = os.path.join(self.dir, "cinder.conf")
        with open(path, "w") as f:
            for section, options in config(name, self.dir).items():
                f.write("[%s]\n" % section)
                f.writelines("%s = %s\n" % kv for kv in options.items())
        self.log = open(os.path.join(self.dir, "stderr.log"), "wb")  # noqa: SIM115
        test.addCleanup(self.log.close)
        env = dict(os.environ, PYTHONPATH=TOP)
        self.proc = subprocess.Popen(  # noqa: S603 (fixed argv)
            volume_service.ARGV + [path], cwd=TOP, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, preexec_fn=process.die_with_parent)
        test.addCleanup(self.cleanup)
        self.answers, self.lock = {}, threading.Lock()
        self.arrived = queue.Queue()
        self.eof = False
        self.ready = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.ready.get(timeout=300)
        if ready is None:
            raise RuntimeError("%s did not start: %s" % (name, self.stderr()))

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            if "ready" in msg:
                self.ready.put(msg)
                continue
            with self.lock:
                self.answers[msg["id"]] = msg
            self.arrived.put(msg["id"])
        self.eof = True              # the process is gone
        self.ready.put(None)
        self.arrived.put(None)

    def stderr(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()[-4000:]

    def call(self, op, **args):
        req = dict(args, op=op, id=uuid.uuid4().hex)
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        return req

    def wait(self, reqs):
        """The answers to ``reqs``; those a dead process never gave are missing."""
        want = {r["id"] for r in reqs}
        while True:
            with self.lock:
                if want <= self.answers.keys():
                    break
            if self.eof:
                break
            self.arrived.get(timeout=900)
        with self.lock:
            return {i: self.answers[i] for i in want if i in self.answers}

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
        process.stop(self.proc, timeout=30)
        # SSH master connections it left (ControlPersist outlives a killed service): found
        # by their ControlPath in its directory (zfs_common.sshcontrol: named for its PID),
        # stopped by PID
        mark = ("/%s%d-" % (sshcontrol.PREFIX, self.proc.pid)).encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"ssh") and any(
                    a.startswith(b"ControlPath=") and mark in a for a in argv):
                try:
                    os.kill(int(pid), signal.SIGTERM)
                except ProcessLookupError:
                    pass


class TestTwoServices(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(2400, gentle=True))
        self.guest = zfsguest.shared_guest()
        zfsguest.install_cinder_rtstool(self.guest)
        self.root = self.useFixture(zfsguest.ZfsPool(self.guest, prefix="aa")).name + "/cinder"
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.etcd = self.useFixture(etcd.Etcd(self.workdir))
        # the cluster's database (cinder's target helpers read a volume's CHAP secret)
        self.db = "sqlite:///" + os.path.join(self.workdir, "cinder.sqlite")
        db_conf = os.path.join(self.workdir, "db.conf")
        with open(db_conf, "w") as f:
            f.write("[database]\nconnection = %s\n" % self.db)
        subprocess.run(  # noqa: S603 (fixed argv)
            [os.path.join(os.path.dirname(sys.executable), "cinder-manage"),
             "--config-file", db_conf, "db", "sync"], check=True, capture_output=True)
        self.addCleanup(self._remove_targets)
        self.nodes = [Node(self, name, self.config) for name in ("aa-node-1", "aa-node-2")]

    def config(self, host, directory):
        return {
            "DEFAULT": {"host": host, "cluster": "aa-cluster", "debug": True,
                        "log_file": os.path.join(directory, "cinder-volume.log")},
            "database": {"connection": self.db},
            "coordination": {"backend_url": self.etcd.backend_url(LOCK_TIMEOUT)},
            "oslo_concurrency": {"lock_path": os.path.join(directory, "locks")},
            "zfsguest": {
                "volume_backend_name": "zfsguest", "zfs_volume_root": self.root,
                "zfs_ssh_host": "127.0.0.1", "zfs_ssh_port": self.guest.ports["ssh"],
                "zfs_ssh_private_key": self.guest.ssh_key,
                "zfs_ssh_known_hosts_file": "/dev/null",
                "zfs_ssh_strict_host_key_checking": "no", "zfs_busy_timeout": 5,
                "target_helper": "lioadm", "target_ip_address": "127.0.0.1"},
        }

    def _remove_targets(self):
        for iqn in self.targets():
            self.guest.run("/usr/local/bin/cinder-rtstool delete %s" % iqn, check=False)

    # -- the ZFS host's side --------------------------------------------------------------
    def listing(self):
        out = self.guest.run("zfs list -H -o name -t all -r %s" % self.root).out.split()
        return sorted(n[len(self.root) + 1:] for n in out[1:])

    def targets(self):
        out = self.guest.run("/usr/local/bin/cinder-rtstool get-targets").out.split()
        return sorted(t for t in out if t.startswith(IQN) and self._ours(t))

    def _ours(self, iqn):
        return iqn[len("iqn.2010-10.org.openstack:"):] in getattr(self, "volumes", {})

    def saved_targets(self):
        # where the guest's rtslib saves (Debian: /etc/rtslib-fb-target)
        saved = json.loads(self.guest.run(
            "cat \"$(python3 -c 'import rtslib_fb.root as r; print(r.default_save_file)')\""
        ).out)
        return sorted(t["wwn"] for t in saved.get("targets", []) if self._ours(t["wwn"]))

    def md5(self, vid):
        dev = "/dev/zvol/%s/volume-%s" % (self.root, vid)
        self.guest.wait_for_path(dev, timeout=120)
        return self.guest.run("head -c 8M %s | md5sum" % dev).out.split()[0]

    # -- operations -----------------------------------------------------------------------
    def vol(self, key):
        return dict(self.volumes["volume-" + self.ids[key]])

    def new(self, key, size=1):
        vid = self.ids.setdefault(key, str(uuid.uuid4()))
        self.volumes["volume-" + vid] = {"id": vid, "size": size}
        return self.vol(key)

    def run_batch(self, calls, kill_after=None):
        """Give ``calls`` ((node index, op, args), ...) at once; returns the requests and
        answers. With ``kill_after``, that node is killed by PID as soon as one of its
        operations has answered."""
        reqs = [(self.nodes[n], self.nodes[n].call(op, **args)) for n, op, args in calls]
        self.ops += len(reqs)
        if kill_after is not None:
            node = self.nodes[kill_after]
            node.wait([r for n, r in reqs if n is node][:1])
            node.kill()
        answers = {}
        for node in self.nodes:
            answers.update(node.wait([r for n, r in reqs if n is node]))
        return reqs, answers

    def check(self, reqs, answers):
        failed = [(r["op"], answers[r["id"]]) for _, r in reqs
                  if r["id"] in answers and not answers[r["id"]]["ok"]]
        self.assertEqual([], failed)

    def test_fifty_operations_two_services_one_killed(self):
        self.ids, self.volumes, self.ops = {}, {}, 0
        v = ["v%d" % i for i in range(10)]

        # 10 creates, five on each service
        self.check(*self.run_batch([(i % 2, "create", {"volume": self.new(v[i])})
                                    for i in range(10)]))
        self.guest.run("udevadm settle -t 120", timeout=150)  # ten zvols' links at once
        for i in range(10):
            dev = "/dev/zvol/%s/volume-%s" % (self.root, self.ids[v[i]])
            self.guest.wait_for_path(dev, timeout=120)
            self.guest.run("yes v%d | head -c 8M | dd of=%s bs=1M conv=fsync status=none"
                           % (i, dev))
        data = {i: self.md5(self.ids[v[i]]) for i in range(10)}

        # 20 at once: snapshots and extends of v0-4, clones and exports of v5-9
        snaps = {i: {"id": str(uuid.uuid4()), "volume_size": 1} for i in range(5)}
        calls = []
        for i in range(5):
            calls.append((i % 2, "snapshot", {"volume": self.vol(v[i]), "snapshot": snaps[i]}))
            calls.append(((i + 1) % 2, "clone", {"volume": self.new("c%d" % (i + 5)),
                                                 "source": self.vol(v[i + 5])}))
        reqs, answers = self.run_batch(calls)
        self.check(reqs, answers)
        calls = []
        for i in range(5):
            calls.append((i % 2, "extend", {"volume": self.vol(v[i]), "new_size": 2}))
            calls.append(((i + 1) % 2, "export", {"volume": self.vol(v[i + 5])}))
        reqs, answers = self.run_batch(calls)
        self.check(reqs, answers)
        for _, r in reqs:
            if r["op"] == "export":
                self.volumes["volume-" + r["volume"]["id"]].update(
                    provider_location=answers[r["id"]]["result"]["provider_location"],
                    provider_auth=answers[r["id"]]["result"]["provider_auth"])
            elif r["op"] == "extend":
                self.volumes["volume-" + r["volume"]["id"]]["size"] = 2

        # 10: volumes from the snapshots, exports of the clones
        calls = []
        for i in range(5):
            calls.append((i % 2, "from_snapshot", {
                "volume": self.new("f%d" % i), "source": self.vol(v[i]),
                "snapshot": snaps[i]}))
            calls.append(((i + 1) % 2, "export", {"volume": self.vol("c%d" % (i + 5))}))
        reqs, answers = self.run_batch(calls)
        self.check(reqs, answers)
        for _, r in reqs:
            if r["op"] == "export":
                self.volumes["volume-" + r["volume"]["id"]].update(
                    provider_location=answers[r["id"]]["result"]["provider_location"],
                    provider_auth=answers[r["id"]]["result"]["provider_auth"])

        # everything accounted for on the ZFS host and in LIO
        expected = []
        for i in range(10):
            name = "volume-" + self.ids[v[i]]
            expected.append(name)
            if i < 5:
                expected += [name + "@snapshot-" + snaps[i]["id"],
                             "volume-" + self.ids["f%d" % i]]
            else:
                expected += [name + "@" + manageable.CLONE_SNAPSHOT_PREFIX
                             + self.ids["c%d" % i], "volume-" + self.ids["c%d" % i]]
        self.assertEqual(sorted(expected), self.listing())
        exported = sorted(IQN + self.ids[k] for k in
                          ["v%d" % i for i in range(5, 10)] + ["c%d" % i for i in range(5, 10)])
        self.assertEqual(exported, self.targets())
        self.assertEqual(exported, self.saved_targets())
        for i in range(5):
            self.assertEqual(data[i], self.md5(self.ids["f%d" % i]))
            self.assertEqual(data[i + 5], self.md5(self.ids["c%d" % (i + 5)]))
        self.assertEqual(str(2 * GiB), self.guest.run(
            "zfs get -Hp -o value volsize %s/volume-%s" % (self.root, self.ids["v0"])
        ).out.strip())

        # 10: every parent v5-9 and its clone deleted at the same moment, each pair on
        # both services; the second service is killed by PID in the middle of it
        calls = []
        for i in range(5, 10):
            calls.append((i % 2, "delete", {"volume": self.vol(v[i])}))
            calls.append(((i + 1) % 2, "delete", {"volume": self.vol("c%d" % i)}))
        reqs, answers = self.run_batch(calls, kill_after=1)
        self.check(reqs, answers)
        survivor = self.nodes[0]
        lost = [r for n, r in reqs if r["id"] not in answers]
        self.assertTrue(all(n is self.nodes[1] for n, r in reqs if r["id"] not in answers))
        self.assertNotEqual([], lost, "the service was killed with nothing in flight")
        # the survivor redoes the dead service's unfinished deletes
        redo = [(0, r["op"], {"volume": r["volume"]}) for r in lost]
        self.nodes = [survivor]
        self.check(*self.run_batch(redo))
        self.ops -= len(redo)
        self.assertEqual(50, self.ops)

        survivors = []
        for i in range(5):
            name = "volume-" + self.ids[v[i]]
            survivors += [name, name + "@snapshot-" + snaps[i]["id"],
                          "volume-" + self.ids["f%d" % i]]
        self.assertEqual(sorted(survivors), self.listing())
        self.assertEqual([], self.targets())
        self.assertEqual([], self.saved_targets())
        for i in range(5):
            self.assertEqual(data[i], self.md5(self.ids["f%d" % i]))

        # and the survivor alone deletes the rest: snapshots with clones, their clones
        # and parents at once; nothing is left
        calls = [(0, "delete_snapshot", {"volume": self.vol(v[i]), "snapshot": snaps[i]})
                 for i in range(5)]
        self.check(*self.run_batch(calls))
        calls = [(0, "delete", {"volume": self.vol(k)})
                 for k in [v[i] for i in range(5)] + ["f%d" % i for i in range(5)]]
        self.check(*self.run_batch(calls))
        self.assertEqual([], self.listing())
