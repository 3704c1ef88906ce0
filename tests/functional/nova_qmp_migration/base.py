"""Two nova-compute services of the QMP driver in one nova deployment (nova's functional
framework), each a host of its own: its service host name, its ``instances_path`` (disks,
image cache, records, guest processes) and its guest uids; migration traffic between
the two QEMU processes on loopback.

nova's framework runs every service in this one process with one ``nova.conf``. What
differs per host is given to each compute's driver by ``HostScope``: every call into a
compute's driver (nova's manager calling it, the privileged launcher called in-process)
sees its host's ``instances_path`` and ``host`` while it runs (a thread the driver starts
runs one of its methods: in the scope too). With ``SHARED_INSTANCES_PATH`` both hosts
have one ``instances_path`` (as an NFS mount would be) and each its own
``[hci_guests]host_state_path``.
"""
# nova's functional package applies (or poisons) eventlet patching: import it first
from nova.tests import functional as _nova_functional  # noqa: F401,I001  isort:skip
import functools
import inspect
import re
import socket
import threading
import time
import uuid

import fixtures
from nova import context as nova_context
from nova import objects
import nova.conf
from nova.virt import driver as virt_driver

from nova_common import instance_dir
from nova_qmp import qemu
from tests.common import nova_functional
from tests.functional.nova_qmp import base

CONF = nova.conf.CONF
SECTOR = 1800000      # a sector of the 1 GiB root disk past what the image uses
# modules whose CONF sees the calling host's values
SCOPED_MODULES = ("nova_common.confine", "nova_common.disks", "nova_common.driver",
                  "nova_common.host", "nova_common.imagecache", "nova_common.instance_dir",
                  "nova_common.launcher", "nova_common.migration")
_current = threading.local()


class _HostConf:
    """nova.conf, with ``instances_path`` and ``host`` of the host whose driver runs."""

    def __getattr__(self, name):
        scope = getattr(_current, "scope", None)
        if scope is not None and name in scope:
            return scope[name]
        return getattr(CONF, name)


class _GroupConf:
    """An option group of nova.conf with some values of one host."""

    def __init__(self, group, **values):
        self._group, self._values = group, values

    def __getattr__(self, name):
        if name in self._values:
            return self._values[name]
        return getattr(self._group, name)


def scoped_driver_class(cls, scope):
    """``cls`` whose methods run with ``scope`` (a dict of option values)."""

    class Scoped(cls):
        def get_nodenames_by_uuid(self, refresh=False):
            # nova caches one local node uuid per process (nova.virt.node); each
            # host here has its own
            return {scope["node_uuid"]: scope["host"]}

        def get_available_resource(self, nodename):
            resources = super().get_available_resource(nodename)
            resources["uuid"] = scope["node_uuid"]
            return resources

        def __getattribute__(self, name):
            attr = object.__getattribute__(self, name)
            if name.startswith("__") or not inspect.ismethod(attr):
                return attr

            @functools.wraps(attr)
            def call(*args, **kwargs):
                old = getattr(_current, "scope", None)
                _current.scope = scope
                try:
                    return attr(*args, **kwargs)
                finally:
                    _current.scope = old
            return call

    Scoped.__name__ = cls.__name__
    return Scoped


class TwoHostsTestBase(base.QMPServerTestBase):
    """Starts the source ``compute`` (nova's first) and the destination ``compute2``."""
    HOSTS = ("compute", "compute2")
    SHARED_INSTANCES_PATH = False

    def _setup_compute_service(self):
        self.paths, self.state_paths = {}, {}
        proxy = _HostConf()
        for name in SCOPED_MODULES:
            self.useFixture(fixtures.MonkeyPatch(name + ".CONF", proxy))
        # plain TCP unless a test makes certificates (tls.make)
        self.flags(live_migration_inbound_addr="127.0.0.1", live_migration_plain_tcp=True,
                   group="qmp")
        source = super()._setup_compute_service()      # "compute"
        self.computes_by_host = {"compute": source}
        return source

    def _start_compute(self, host, cell_name=None):
        if host not in self.paths:
            self.paths[host] = self.instances if not self.paths or \
                self.SHARED_INSTANCES_PATH else self._instances_path()
            if self.SHARED_INSTANCES_PATH:
                self.state_paths[host] = self._instances_path()
            reaped = self.state_paths.get(host, self.paths[host])
            if len(self.paths) > 1 or self.SHARED_INSTANCES_PATH:
                self.useFixture(nova_functional.GuestReaper(reaped, qemu.read_pid,
                                                            qemu.alive))
        scope = {"instances_path": self.paths[host], "host": host,
                 "node_uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, host + self.paths[host]))}
        if self.SHARED_INSTANCES_PATH:
            # hosts sharing instances_path need disjoint uid ranges (init_host checks)
            first, count = (int(p) for p in CONF.hci_guests.uid_range.split(":"))
            scope["hci_guests"] = _GroupConf(
                CONF.hci_guests, host_state_path=self.state_paths[host],
                uid_range="%d:%d" % (first + count * self.HOSTS.index(host), count))
        load = virt_driver.load_compute_driver

        def load_scoped(virtapi, compute_driver=None):
            drv = load(virtapi, compute_driver)
            drv.__class__ = scoped_driver_class(type(drv), scope)
            return drv

        with fixtures.MonkeyPatch("nova.virt.driver.load_compute_driver", load_scoped):
            compute = super()._start_compute(host, cell_name=cell_name)
        if hasattr(self, "computes_by_host"):
            self.computes_by_host[host] = compute
        return compute

    # -- a guest to migrate -----------------------------------------------------------------
    def _counting_guest(self):
        server = self.boot()
        self.assertEqual("compute", server["OS-EXT-SRV-ATTR:host"])
        self.wait_console(server, self.guest.marker("ready"))
        self._start_compute("compute2")
        conn = self.serial_on("compute", server)
        self.shell(conn, "echo mem-$((6*7)) > /run/mark; cat /run/mark", "mem-42")
        self.shell(conn, "echo disk-$((5*5))-data | dd of=/dev/vda bs=512 seek=%d "
                         "conv=fsync 2>/dev/null; echo written-$((1+1))" % SECTOR,
                   "written-2")
        self.shell(conn, "(i=0; while :; do i=$((i+1)); echo tick-$i; sleep 1; done) &",
                   "tick-2")
        return server

    def _ticks(self, text):
        return [int(n) for n in re.findall(r"tick-(\d+)", text)]

    def _destination_state_at_completion(self, server, source, destination):
        """The run states of the server's QEMU on ``destination`` seen once the source's
        migration has completed, while the source's QEMU still exists (within 3 s):
        the guest must run there without waiting for the source's QEMU to end or for
        nova's ``post_live_migration_at_destination``."""
        hv = self.computes_by_host[source].manager.driver.hv
        dest = self.computes_by_host[destination].manager.driver
        migrate, seen = hv.migrate, []

        def spy(guest, *args, **kwargs):
            result = migrate(guest, *args, **kwargs)
            ctx = nova_context.get_admin_context()
            target = dest._guest(objects.Instance.get_by_uuid(ctx, guest.uuid))
            deadline = time.monotonic() + 3
            while True:
                seen.append(dest.hv._qmp(target, "query-status")["status"])
                if seen[-1] == "running" or time.monotonic() > deadline:
                    return result
                time.sleep(0.02)
        hv.migrate = spy
        self.addCleanup(delattr, hv, "migrate")
        return seen

    def wait_until(self, condition, message, timeout=120):
        """Poll ``condition()`` every 0.2 s until it holds; fail with ``message`` after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            self.assertLess(time.monotonic(), deadline, message)
            time.sleep(0.2)

    # -- per host helpers -------------------------------------------------------------------
    def idir(self, host, server):
        return instance_dir.InstanceDir(server["id"], root=self.paths[host],
                                        state_root=self.state_paths.get(host))

    def pid_on(self, host, server):
        return qemu.read_pid(self.idir(host, server))

    def running_on(self, host, server):
        return qemu.alive(self.pid_on(host, server), server["id"])

    def serial_on(self, host, server):
        """A raw TCP connection to the serial console the host's driver gives nova."""
        ctx = nova_context.get_admin_context()
        instance = objects.Instance.get_by_uuid(ctx, server["id"])
        drv = self.computes_by_host[host].manager.driver
        endpoint = drv.get_serial_console(ctx, instance)
        conn = socket.create_connection((endpoint.host, endpoint.port), timeout=30)
        self.addCleanup(conn.close)
        return conn

    def migration_parameters(self, host, server):
        """QEMU's migration parameters in the server's process on ``host``."""
        ctx = nova_context.get_admin_context()
        instance = objects.Instance.get_by_uuid(ctx, server["id"])
        drv = self.computes_by_host[host].manager.driver
        return drv.hv._qmp(drv._guest(instance), "query-migrate-parameters")

    def migrations(self, server):
        ctx = nova_context.get_admin_context()
        return objects.MigrationList.get_by_filters(ctx, {"instance_uuid": server["id"]})

    def _wait_for_migration_status(self, server, expected_statuses, timeout=300):
        """nova's helper waits 5 s; a migration of a TCG guest here takes longer."""
        statuses = [s.lower() for s in expected_statuses]
        deadline, actual = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            for migration in self.api.api_get("/os-migrations").body["migrations"]:
                if migration["instance_uuid"] == server["id"]:
                    actual = migration["status"]
                    if actual.lower() in statuses:
                        return migration
            time.sleep(0.5)
        self.fail("migration of %s: %s, not %s" % (server["id"], actual, statuses))
