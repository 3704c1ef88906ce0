"""Live block migration of a running guest (256 MiB RAM, 1 GiB local root disk) between two
compute hosts on this machine: nova_qmp (nova_common/migration.py over
nova_qmp/migration.py: ``blockdev-mirror`` over NBD, then the RAM) against nova's libvirt
driver (``virt_type=qemu``, two libvirtd instances, nova's default block migration
flags), in one run, migration traffic on loopback only.

Each "host" is a child process in mount and PID namespaces of its own (its own /proc:
the QMP driver finds a guest's processes by scanning /proc, and both hosts' guests have
the same UUID): the same path
(``W``, here ``/work/scratch-bench/lm/w`` unless ``--scratch``) bind-mounted from a
directory of that host, holding its nova.conf, ``instances_path`` and state, and private
tmpfs mounts over libvirt's runtime and state directories (``/run/libvirt``,
``/var/lib/libvirt/qemu``, ``/etc/libvirt/qemu``, ``/var/cache/libvirt/qemu``), so each
libvirtd (started by its host child, with virtlogd, stopped by PID; its own TCP port on
127.0.0.1 and host UUID) and each QMP driver keeps its own guests. Both hosts share the
network namespace: every connection is on 127.0.0.1.

The parent calls the drivers as nova's compute manager does, relaying the migrate data
between the hosts (as its RPC would): source spawns the tiny test guest (TCG, 1 vCPU,
256 MiB, 1 GiB root, no network) and waits for its ready marker; destination
``check_can_live_migrate_destination``; source ``check_can_live_migrate_source`` and
``get_instance_disk_info``; destination ``pre_live_migration`` (timed); source
``live_migration`` (timed until it calls ``post_method``); destination
``post_live_migration_at_destination``, the guest RUNNING there; then destroy. Downtime
is measured twice, the same way for both drivers: QEMU's own figure (``downtime`` of the
completed ``query-migrate`` on the source, which libvirt reports as the completed job's
``downtime`` statistic), and the gap from the moment the guest's CPUs are seen stopped on
the source to the moment they are seen running on the destination (each host polls its
guest's run state every 2 ms; both use the machine's CLOCK_MONOTONIC). Not checked: the
guest's memory and disk contents after the move (tests/functional/nova_qmp_migration
does that for nova_qmp).

    python benchmarks/nova_live_migration.py [-n 3]

Run as root (tox -e bench-migration).
"""
import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
_spec = importlib.util.spec_from_file_location(
    "bench_nova_qmp", os.path.join(REPO, "benchmarks", "nova_qmp.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

DRIVERS = ("qmp", "libvirt")
PRIVATE = ("/run/libvirt", "/var/lib/libvirt/qemu", "/etc/libvirt/qemu",
           "/var/cache/libvirt/qemu", "/var/log/libvirt/qemu")
TAG = "@@BENCH "             # protocol lines on a child's stdout start with this


# -- host child -----------------------------------------------------------------------------
class Host:
    def __init__(self, work, driver, name, libvirt_port):
        self.work, self.name, self.kind = work, name, driver
        self.stack = contextlib.ExitStack()
        self.downtimes = []
        if driver == "libvirt":
            self._start_libvirt(libvirt_port)
        conf = self.conf = bench.setup_nova(
            work, "libvirt.LibvirtDriver" if driver == "libvirt" else "qmp.QMPDriver")
        conf.set_override("host", name)
        os.makedirs(conf.instances_path, exist_ok=True)
        from nova import objects
        from nova.virt import fake
        objects.Migration.save = lambda self, *a, **kw: None
        if driver == "libvirt":
            conf.set_override("virt_type", "qemu", group="libvirt")
            conf.set_override("helper_command", os.path.join(
                sys.prefix, "bin", "privsep-helper"), group="nova_sys_admin")
            conf.set_override("live_migration_inbound_addr", "127.0.0.1", group="libvirt")
            # the peer's libvirtd listens on a port of its own (both hosts share lo)
            conf.set_override("live_migration_uri", "qemu+tcp://%%s:%s/system"
                              % os.environ["BENCH_PEER_LIBVIRT_PORT"], group="libvirt")
            conf.set_override("skip_cpu_compare_on_dest", True, group="workarounds")
            from nova.virt.libvirt import driver as lv_driver
            self.drv = lv_driver.LibvirtDriver(fake.FakeVirtAPI(), read_only=False)
            # Neutron's answer for a guest without ports: no multiple port bindings
            self.drv._network_api.has_port_binding_extension = lambda ctx: False
        else:
            from nova_qmp import driver as qmp_driver
            from nova_qmp import migration
            conf.set_override("accelerator", "tcg", group="qmp")
            conf.set_override("live_migration_plain_tcp", True, group="qmp")
            conf.set_override("live_migration_inbound_addr", "127.0.0.1", group="qmp")
            for group in ("nova_common_privileged", "nova_common_guest_admin"):
                conf.set_override("helper_command", "%s --config-file %s" % (
                    os.path.join(sys.prefix, "bin", "privsep-helper"),
                    os.path.join(work, "nova.conf")), group=group)
            run = migration.Outgoing.run
            downtimes = self.downtimes

            def recorded(out):
                run(out)
                downtimes.append(out.downtime_ms)
            migration.Outgoing.run = recorded
            self.drv = qmp_driver.QMPDriver(fake.FakeVirtAPI())
        from nova import context
        self.ctx = context.RequestContext("u", "p", is_admin=True)
        self.drv.init_host(name)
        self.inst = None

    def _start_libvirt(self, port):
        from tests.common import process
        cfg = os.path.join(self.work, "libvirtd.conf")
        with open(cfg, "w") as f:
            f.write('listen_tls = 0\nlisten_tcp = 1\nlisten_addr = "127.0.0.1"\n'
                    'tcp_port = "%s"\nauth_tcp = "none"\nhost_uuid = "%s"\n'
                    % (port, uuid.uuid4()))
        log = open(os.path.join(self.work, "libvirtd.log"), "ab")
        self.stack.callback(log.close)
        # pid files of this host (the default ones in /run are the machine's)
        for argv in (["virtlogd", "--pid-file", os.path.join(self.work, "virtlogd.pid")],
                     ["tini", "-s", "--", "libvirtd", "--listen", "--config", cfg,
                      "--pid-file", os.path.join(self.work, "libvirtd.pid")]):
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
            self.stack.callback(process.stop, proc)
        for _ in range(200):
            if subprocess.run(["virsh", "-c", "qemu:///system", "uri"],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("libvirtd did not answer (see %s/libvirtd.log)" % self.work)

    def instance(self, inst_uuid, host):
        inst = bench.make_instance(self.ctx, 0)
        inst.uuid, inst.id, inst.host, inst.node = inst_uuid, 7, host, host
        return inst

    def _nw(self):
        from nova.network import model as network_model
        return network_model.NetworkInfo([])

    # commands from the parent
    def spawn(self, inst_uuid):
        from nova.compute import power_state
        self.inst = self.instance(inst_uuid, self.name)
        t0 = time.monotonic()
        self.drv.spawn(self.ctx, self.inst, bench.image_meta(), [], None, {},
                       network_info=self._nw(), block_device_info=None)
        assert self.drv.get_info(self.inst).state == power_state.RUNNING
        log = os.path.join(self.conf.instances_path, inst_uuid, "console.log")
        if bench.wait_ready(log, t0, timeout=300) is None:
            raise RuntimeError("the guest did not become ready (%s)" % log)
        return {}

    def _running(self):
        """Whether the guest's CPUs run on this host now (None: no guest here)."""
        try:
            if self.kind == "libvirt":
                import libvirt
                dom = self.drv._host.get_guest(self.inst)._domain
                return dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
            guest = self.drv._guest(self.inst)
            return bool(self.drv.hv._qmp(guest, "query-status")["running"])
        except Exception:       # noqa: B902 - not (or no longer) there
            return None

    def _watch(self, want):
        """A thread noting the first moment (CLOCK_MONOTONIC, shared by the hosts'
        processes) the guest's run state here is ``want``."""
        import threading
        seen, stop = [], threading.Event()

        def poll():
            while not stop.is_set():
                if self._running() is want:
                    seen.append(time.monotonic())
                    return
                time.sleep(0.002)
        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        return seen, stop, thread

    def _data(self, prim):
        from nova import objects
        return objects.LibvirtLiveMigrateData.obj_from_primitive(prim)

    def check_destination(self, inst_uuid, source):
        self.inst = self.instance(inst_uuid, source)
        info = {"hypervisor_type": "QEMU", "disk_available_least": 50, "free_disk_gb": 50,
                "cpu_info": "{}"}
        data = self.drv.check_can_live_migrate_destination(
            self.ctx, self.inst, info, info, block_migration=True)
        self.drv.cleanup_live_migration_destination_check(self.ctx, data)
        return {"data": data.obj_to_primitive()}

    def check_source(self, data):
        data = self._data(data)
        data.is_volume_backed = False       # what nova's compute manager sets first
        data = self.drv.check_can_live_migrate_source(self.ctx, self.inst, data)
        disk_info = self.drv.get_instance_disk_info(self.inst)
        return {"data": data.obj_to_primitive(), "disk_info": disk_info}

    def pre(self, data, disk_info):
        t0 = time.monotonic()
        data = self.drv.pre_live_migration(self.ctx, self.inst, None, self._nw(), disk_info,
                                           self._data(data))
        pre = time.monotonic() - t0
        self.resumed = self._watch(True)        # the guest's CPUs running here
        return {"data": data.obj_to_primitive(), "pre": pre}

    def migrate(self, data, dest):
        from nova import objects
        data = self._data(data)
        data.migration = objects.Migration(id=1, uuid=str(uuid.uuid4()),
                                           source_compute=self.name, dest_compute=dest,
                                           status="running", migration_type="live-migration")
        done, failed = [], []
        paused, stop, thread = self._watch(False)      # the guest's CPUs stopped here
        t0 = time.monotonic()
        self.drv.live_migration(
            self.ctx, self.inst, dest,
            lambda *a, **kw: done.append(time.monotonic() - t0),
            lambda *a, **kw: failed.append(kw.get("migration_status", "error")),
            True, data)
        stop.set()
        thread.join()
        if failed or not done:
            raise RuntimeError("the migration did not complete: %s" % failed)
        out = {"total": done[0], "paused_at": paused[0] if paused else None}
        if self.downtimes:
            out["downtime_ms"] = self.downtimes.pop()
        return out

    def finish(self):
        from nova.compute import power_state
        resumed, stop, thread = self.resumed
        self.drv.post_live_migration_at_destination(self.ctx, self.inst, self._nw(), True)
        state = self.drv.get_info(self.inst).state
        assert state == power_state.RUNNING, state
        thread.join(30)
        stop.set()
        out = {"resumed_at": resumed[0] if resumed else None}
        if self.kind == "libvirt":
            import libvirt
            dom = self.drv._host.get_guest(self.inst)._domain
            stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            out["downtime_ms"] = stats.get("downtime")
        return out

    def destroy(self):
        self.drv.destroy(self.ctx, self.inst, self._nw(), None, True)
        self.inst = None
        return {}

    def close(self):
        self.stack.close()


def host_child(work, driver, name, libvirt_port):
    out = sys.stdout
    sys.stdout = sys.stderr         # nothing but the protocol on the real stdout
    host = None
    try:
        host = Host(work, driver, name, libvirt_port)
        print(TAG + json.dumps({"ok": True}), file=out, flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                break
            try:
                res = dict(getattr(host, cmd["op"])(*cmd.get("args", ())), ok=True)
            except Exception as e:      # noqa: B902 - reported to the parent
                import traceback
                traceback.print_exc()
                res = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
            print(TAG + json.dumps(res), file=out, flush=True)
    except Exception as e:              # noqa: B902 - reported to the parent
        import traceback
        traceback.print_exc()
        print(TAG + json.dumps({"ok": False, "error": str(e)}), file=out, flush=True)
    finally:
        if host is not None:
            host.close()
        sys.stderr.flush()
        os._exit(0)     # libvirt's event thread never ends; do not wait for it


# -- parent ---------------------------------------------------------------------------------
class Child:
    """A host child in its mount namespace; JSON commands on stdin, answers on stdout."""

    def __init__(self, scratch, driver, name, port, peer_port):
        self.dir = os.path.join(scratch, name)
        os.makedirs(self.dir, mode=0o711, exist_ok=True)
        os.chmod(self.dir, 0o711)   # confined guests pass through to instances_path
        work = os.path.join(scratch, "w")
        os.makedirs(work, exist_ok=True)
        mounts = " && ".join(["mount --bind %s %s" % (self.dir, work)] + [
            "mkdir -p %s && mount -t tmpfs tmpfs %s" % (p, p) for p in PRIVATE])
        self.log = open(os.path.join(scratch, name + ".log"), "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
             "--mount-proc", "--kill-child", "--", "sh", "-c",
             mounts + ' && exec "$0" "$@"', sys.executable, __file__, "--host-child",
             driver, "--name", name, "--work", work, "--libvirt-port", str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env=dict(os.environ, BENCH_PEER_LIBVIRT_PORT=str(peer_port)))
        self.name = name
        self._answer()

    def _answer(self):
        for line in self.proc.stdout:
            line = line.decode()
            if line.startswith(TAG):
                res = json.loads(line[len(TAG):])
                if not res.pop("ok"):
                    raise RuntimeError("%s: %s (log: %s)" % (
                        self.name, res["error"], self.log.name))
                return res
        raise RuntimeError("%s ended (log: %s)" % (self.name, self.log.name))

    def __call__(self, op, *args):
        self.proc.stdin.write((json.dumps({"op": op, "args": args}) + "\n").encode())
        self.proc.stdin.flush()
        return self._answer()

    def close(self):
        from tests.common import process
        try:
            self.proc.stdin.write(b'{"op": "quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            process.stop(self.proc)
        self.log.close()


def run_driver(scratch, driver, n):
    import random
    port_a = random.randrange(20000, 60000)
    port_b = port_a + 1
    out = {"pre": [], "total": [], "downtime_ms": [], "gap": []}
    with contextlib.ExitStack() as stack:
        src = Child(scratch, driver, "%s-a" % driver, port_a, port_b)
        stack.callback(src.close)
        dst = Child(scratch, driver, "%s-b" % driver, port_b, port_a)
        stack.callback(dst.close)
        for i in range(n):
            inst_uuid = str(uuid.uuid4())
            src("spawn", inst_uuid)
            data = dst("check_destination", inst_uuid, src.name)["data"]
            res = src("check_source", data)
            pre = dst("pre", res["data"], res["disk_info"])
            mig = src("migrate", pre["data"], dst.name)
            fin = dst("finish")
            downtime = mig.get("downtime_ms", fin.get("downtime_ms"))
            gap = None
            if mig["paused_at"] is not None and fin["resumed_at"] is not None:
                gap = fin["resumed_at"] - mig["paused_at"]
            dst("destroy")
            out["pre"].append(pre["pre"])
            out["total"].append(mig["total"])
            out["downtime_ms"].append(downtime)
            out["gap"].append(gap)
            print("  %s %d: pre_live_migration %.0f ms, live_migration %.0f ms, downtime "
                  "%s ms, paused on the source to running on the destination %s ms" % (
                      driver, i, pre["pre"] * 1000, mig["total"] * 1000, downtime,
                      "%.0f" % (gap * 1000) if gap is not None else "?"),
                  file=sys.stderr, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=3, help="migrations per driver")
    ap.add_argument("--scratch", default="/work/scratch-bench/lm")
    ap.add_argument("--drivers", default=",".join(DRIVERS),
                    help="comma-separated, of: %s" % ", ".join(DRIVERS))
    ap.add_argument("--host-child", choices=DRIVERS)
    ap.add_argument("--name")
    ap.add_argument("--work")
    ap.add_argument("--libvirt-port", type=int)
    args = ap.parse_args()
    if args.host_child:
        host_child(args.work, args.host_child, args.name, args.libvirt_port)
    from tests.common import guest_images
    guest = guest_images.tiny_guest()
    os.environ["BENCH_IMAGE"] = guest.disk_raw
    os.environ["BENCH_READY"] = guest.marker("ready")
    results = {}
    for driver in args.drivers.split(","):
        scratch = os.path.join(args.scratch, driver)
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch)
        try:
            results[driver] = run_driver(scratch, driver, args.n)
        except Exception as e:          # noqa: B902 - reported with the other's figures
            results[driver] = {"error": str(e)}
        finally:
            if not os.environ.get("BENCH_KEEP") and "error" not in results[driver]:
                shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(results), file=sys.stderr)
    report(results, args.n)


def report(r, n):
    for name, res in r.items():
        if "error" in res:
            print("%s failed: %s" % (name, res["error"]))
    q, lv = r.get("qmp", {}), r.get("libvirt", {})

    def med(res, key, scale=1000.0):
        vals = [v for v in res.get(key, ()) if v is not None]
        return statistics.median(vals) * scale if vals else None

    def fmt(v):
        return "%.0f" % v if v is not None else "failed"
    print("\nLive block migration, 256 MiB RAM, 1 GiB root disk, TCG, loopback, medians "
          "of %d, ms\n" % n)
    print("| | QMP driver | libvirt driver | libvirt / QMP |")
    print("|---|---|---|---|")
    for label, key, scale in (("pre_live_migration (destination)", "pre", 1000.0),
                              ("live_migration until post_method", "total", 1000.0),
                              ("guest downtime (QEMU's figure)", "downtime_ms", 1.0),
                              ("guest paused on the source until running on the "
                               "destination (polled)", "gap", 1000.0)):
        a, b = med(q, key, scale), med(lv, key, scale)
        ratio = "%.1fx" % (b / a) if a and b else ""
        print("| %s | %s | %s | %s |" % (label, fmt(a), fmt(b), ratio))
    if any("error" in res for res in r.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
