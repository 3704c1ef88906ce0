"""Open vSwitch (userspace ``netdev`` datapath: these machines load no kernel modules) and
OVN from Debian, started by the test as its own processes with all state in a temporary
directory, and stopped by PID in cleanup (also after a failure).

``OVNHost`` gives: ovsdb-server + ovs-vswitchd (``db_sock``), OVN's NB and SB
ovsdb-servers, ovn-northd and one ovn-controller (chassis ``CHASSIS``) that makes
``br-int`` with the netdev datapath; ``OsVif`` points os-vif at it.
``nbctl``/``vsctl``/``sbctl`` run the CLIs against these databases (JSON output where a
test reads what they print).

``OVNHost(dpdk=True)`` runs Debian's DPDK build of ovs-vswitchd instead (package
``openvswitch-switch-dpdk``, ``dpdk_available()``), for vhost-user ports, on these
machines without hugepages or PCI devices: DPDK's EAL gets ``--no-huge`` (legacy memory:
OVS's default ``--in-memory`` does not go with it) and ``DPDK_MEMORY_MB`` of ordinary
memory, OVS sizes a mempool per port (its shared default asks for more than that), and
its PMD thread sleeps when idle (``pmd-maxsleep``) instead of spinning on a core.
"""
import errno
import fcntl
import json
import os
import shutil
import struct
import subprocess
import time

import fixtures

from tests.common import process

OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
NB_SCHEMA = "/usr/share/ovn/ovn-nb.ovsschema"
SB_SCHEMA = "/usr/share/ovn/ovn-sb.ovsschema"
CHASSIS = "hci-test-chassis"


DPDK_VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
DPDK_MEMORY_MB = 512
DPDK_RUNTIME = "/var/run/dpdk"      # EAL's runtime directory for root (even in memory)


def dpdk_available():
    return available() and os.access(DPDK_VSWITCHD, os.X_OK)


def available():
    return all(os.path.exists(p) for p in (OVS_SCHEMA, NB_SCHEMA, SB_SCHEMA,
                                           "/usr/sbin/ovs-vswitchd", "/usr/bin/ovn-northd",
                                           "/usr/bin/ovn-controller"))


def _held(tap):
    """Whether a process has the tap device ``tap`` open: attaching to it, as
    ovs-vswitchd would, fails with EBUSY (absent, or free: no; a free one stays)."""
    if not os.path.exists("/sys/class/net/" + tap):
        return False
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", tap.encode(),     # TUNSETIFF
                                                0x0002 | 0x1000))           # TAP|NO_PI
        return False
    except OSError as e:
        if e.errno == errno.EBUSY:
            return True
        raise
    finally:
        os.close(fd)


LOCK = os.path.join(os.environ.get("HCI_CACHE", "/var/cache/openstack-hci-drivers"),
                    "ovs-test.lock")


class OVNHost(fixtures.Fixture):
    """One at a time per machine (a lock file held while it runs): the userspace
    datapath makes host-wide kernel devices (``ovs-netdev``, the bridges' internal
    ports), so a second Open vSwitch would fail to open its datapath."""

    def __init__(self, lock_timeout=900, dpdk=False):
        super().__init__()
        self.lock_timeout = lock_timeout
        self.dpdk = dpdk

    def _lock(self):
        os.makedirs(os.path.dirname(LOCK), exist_ok=True)
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        self.addCleanup(os.close, fd)       # closing releases the lock
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError("another Open vSwitch test host held %s for %ss"
                                       % (LOCK, self.lock_timeout)) from None
                time.sleep(0.5)

    def _setUp(self):
        self._lock()
        # another userspace datapath of this network namespace, e.g. a deployed OVS,
        # holding ovs-netdev open: ours could not open its datapath (a tap the previous
        # test's ovs-vswitchd left, held by no one, is reused)
        try:
            self.wait(lambda: not _held("ovs-netdev"), "ovs-netdev to be free", timeout=20)
        except TimeoutError:
            raise RuntimeError(
                "another Open vSwitch userspace datapath holds ovs-netdev in this network "
                "namespace; run the tests in one of their own (README: Networking)"
            ) from None
        # short: UNIX socket paths must stay under 108 bytes
        self.dir = self.useFixture(fixtures.TempDir(rootdir="/tmp")).path
        d = self.dir
        self.env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d,
                        OVS_SYSCONFDIR=d, OVN_RUNDIR=d, OVN_LOGDIR=d, OVN_DBDIR=d,
                        OVN_SYSCONFDIR=d)
        self.db_sock = os.path.join(d, "db.sock")
        self.nb_sock = os.path.join(d, "nb.sock")
        self.sb_sock = os.path.join(d, "sb.sock")
        for db, schema in (("conf.db", OVS_SCHEMA), ("nb.db", NB_SCHEMA),
                           ("sb.db", SB_SCHEMA)):
            self._run("ovsdb-tool", "create", os.path.join(d, db), schema)
        for name, db, sock in (("ovsdb-server", "conf.db", self.db_sock),
                               ("ovsdb-nb", "nb.db", self.nb_sock),
                               ("ovsdb-sb", "sb.db", self.sb_sock)):
            self._start(name, ["ovsdb-server", os.path.join(d, db),
                               "--remote=punix:" + sock,
                               "--unixctl=" + os.path.join(d, name + ".ctl")], sock)
        self.vsctl("--no-wait", "init")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                   "external_ids:system-id=" + CHASSIS,
                   "external_ids:ovn-remote=unix:" + self.sb_sock,
                   "external_ids:ovn-encap-type=geneve",
                   "external_ids:ovn-encap-ip=127.0.0.1",
                   "external_ids:ovn-bridge-datapath-type=netdev")
        vswitchd = "ovs-vswitchd"
        if self.dpdk:
            vswitchd = DPDK_VSWITCHD
            self._dpdk_config()
        self._start("ovs-vswitchd", [vswitchd, "unix:" + self.db_sock,
                                     "--unixctl=" + os.path.join(d, "vswitchd.ctl")],
                    os.path.join(d, "vswitchd.ctl"))
        if self.dpdk:
            try:
                self.wait(lambda: self.vsctl("get", "Open_vSwitch", ".",
                                             "dpdk_initialized").strip() == "true",
                          "DPDK to initialise", timeout=30)
            except TimeoutError:
                raise RuntimeError("DPDK did not initialise: %s"
                                   % self.log_tail("ovs-vswitchd")) from None
        self._start("ovn-northd", ["ovn-northd", "--ovnnb-db=unix:" + self.nb_sock,
                                   "--ovnsb-db=unix:" + self.sb_sock,
                                   "--unixctl=" + os.path.join(d, "northd.ctl")],
                    os.path.join(d, "northd.ctl"))
        # (no --unixctl in OVN 23.03's controller: ready once it writes its pidfile)
        self._start("ovn-controller", ["ovn-controller", "unix:" + self.db_sock,
                                       "--pidfile=" + os.path.join(d, "controller.pid")],
                    os.path.join(d, "controller.pid"))
        self.wait(lambda: "br-int" in self.vsctl("list-br").split(), "br-int from ovn-controller")

    def _dpdk_config(self):
        prefix = "hci%d" % os.getpid()
        if not os.path.isdir(DPDK_RUNTIME):
            self.addCleanup(self._rmdir_if_empty, DPDK_RUNTIME)
        self.addCleanup(shutil.rmtree, os.path.join(DPDK_RUNTIME, prefix), True)
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                   "other_config:dpdk-init=true",
                   "other_config:dpdk-extra=--no-huge -m %d --legacy-mem --no-pci "
                   "--no-telemetry --file-prefix=%s" % (DPDK_MEMORY_MB, prefix),
                   "other_config:per-port-memory=true",
                   "other_config:pmd-maxsleep=10000")

    @staticmethod
    def _rmdir_if_empty(path):
        try:
            os.rmdir(path)
        except OSError:
            pass

    def _run(self, *argv):
        return subprocess.run(argv, check=True, capture_output=True, text=True,
                              env=self.env, timeout=60).stdout

    def _start(self, name, argv, ready_path):
        log = os.path.join(self.dir, name + ".log")
        argv = argv + ["--log-file=" + log, "-vconsole:off"]
        with open(os.path.join(self.dir, name + ".out"), "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=self.env,
                                    preexec_fn=process.die_with_parent)  # noqa: PLW1509
        self.addCleanup(process.stop, proc)
        self.wait(lambda: os.path.exists(ready_path) or proc.poll() is not None,
                  name + " to listen")
        if proc.poll() is not None:
            with open(os.path.join(self.dir, name + ".out"), errors="replace") as f:
                out = f.read()
            raise RuntimeError("%s exited (rc=%s): %s%s" % (name, proc.returncode, out,
                                                            self.log_tail(name)))

    def log_tail(self, name, n=3000):
        try:
            with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
                return f.read()[-n:]
        except FileNotFoundError:
            return ""

    @staticmethod
    def wait(predicate, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("waited %ss for %s" % (timeout, what))
            time.sleep(0.2)

    def vsctl(self, *args):
        return self._run("ovs-vsctl", "--db=unix:" + self.db_sock, "--timeout=30", *args)

    def nbctl(self, *args):
        return self._run("ovn-nbctl", "--db=unix:" + self.nb_sock, "--timeout=30", *args)

    def sbctl(self, *args):
        return self._run("ovn-sbctl", "--db=unix:" + self.sb_sock, "--timeout=30", *args)

    def find(self, ctl, table, *conditions, columns=("name",)):
        """Rows of ``table`` matching ``conditions``, as dicts (``--format=json``)."""
        out = json.loads(ctl("--format=json", "--columns=" + ",".join(columns), "find",
                             table, *conditions))
        return [dict(zip(out["headings"], row, strict=True)) for row in out["data"]]



class OsVif(fixtures.Fixture):
    """os-vif initialized as nova-compute does at start (nova/cmd/compute.py) and pointed
    at ``host``'s OVSDB. ovsdbapp keeps one OVSDB connection per process (class state),
    so cleanup stops it and forgets it for the next host."""

    def __init__(self, host):
        super().__init__()
        self.host = host

    def _setUp(self):
        import nova.conf
        import os_vif
        from vif_plug_ovs.ovsdb import impl_idl
        os_vif.initialize()
        conf = nova.conf.CONF
        conf.set_override("ovsdb_connection", "unix:" + self.host.db_sock,
                          group="os_vif_ovs")
        self.addCleanup(conf.clear_override, "ovsdb_connection", group="os_vif_ovs")
        os_vif.initialize(reset=True)
        self.addCleanup(self._forget_connection, impl_idl.NeutronOvsdbIdl)

    @staticmethod
    def _forget_connection(idl_class):
        conn = idl_class._ovsdb_connection
        if conn is not None:
            conn.stop(timeout=10)
            idl_class._ovsdb_connection = None
