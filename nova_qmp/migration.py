"""Live migration of a QEMU guest to another host, over QMP (no libvirt).

Destination (``Incoming``): the guest's QEMU started from its record with ``-incoming
defer -S``; for a block migration an NBD server exports its (new, empty) local disks
writable; ``migrate-incoming`` listens on TCP. When the RAM has arrived (the MIGRATION
event ``completed``), a waiter on this host removes the exports (the source has
disconnected from them by then), stops the NBD server and resumes the guest at once,
without waiting for nova's ``post_live_migration_at_destination``
(``late-block-activate``: the disks are taken only then).

Source (``Outgoing``): each local disk mirrored into the destination's export
(``blockdev-mirror``, ``write-blocking`` so guest writes reach both), then the RAM
(``migrate`` with ``pause-before-switchover``): at ``pre-switchover`` the guest is
stopped, the mirrors are completed without pivoting (``block-job-cancel`` of a ready
job), their NBD client nodes are removed (which closes the connections to the
destination's exports) and the migration continues. Progress is read from ``query-migrate`` and
``query-block-jobs``; the allowed downtime grows in steps; past the completion timeout
the migration is aborted or forced to complete. A failure or an abort cancels the
mirrors and the migration: QEMU resumes the guest on this host.
"""
import dataclasses
import os
import socket
import threading
import time

from nova import exception
import nova.conf
from nova.i18n import _
from oslo_log import log as logging

from nova_common import ports
from nova_qmp import qemu

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
JOB = "hci-mig-"           # block job ids: hci-mig-<drive>
TARGET = "hcimig"          # NBD client nodes on the source: hcimig<drive>
EXPORT = "hci-mig-"        # block export ids on the destination
POLL = 0.1                 # seconds between progress reads
FINISHED = ("completed", "failed", "cancelled")
ACTED_ON = ("pre-switchover",) + FINISHED
NBD_PORT_TRIES = 5
NOT_BEGUN = (None, "none", "setup")   # an incoming migration's status before it starts
TLS_ID = "hci-mig-tls"     # the tls-creds-x509 object of a migration
TLS_FILES = {"server": ("ca-cert.pem", "server-cert.pem", "server-key.pem"),
             "client": ("ca-cert.pem", "client-cert.pem", "client-key.pem")}
UNLIMITED_MIB = 8388607    # QEMU's default is 128 MiB/s; "unlimited" as libvirt sets it


@dataclasses.dataclass
class Settings:
    """How a migration runs; ``[qmp]live_migration_*`` (nova's ``[libvirt]`` ones)."""
    downtime_ms: int = 500          # the final allowed downtime
    downtime_steps: int = 10
    downtime_delay: int = 75        # seconds per GiB of RAM between two steps
    completion_timeout: int = 800   # seconds per GiB of RAM and disk; 0: none
    timeout_action: str = "abort"   # or "force_complete"
    bandwidth_mib: int = 0          # MiB/s; 0: unlimited
    permit_post_copy: bool = False
    tls_dir: str = None             # X.509 files; None: plain TCP

    @property
    def tls_creds(self):
        return TLS_ID if self.tls_dir else None


def check_tls(settings, endpoint):
    """``MigrationPreCheckError`` unless the TLS files of ``endpoint`` (server: this
    host receives, client: it sends) are there (or plain TCP is configured)."""
    if not settings.tls_dir:
        return
    missing = [f for f in TLS_FILES[endpoint]
               if not os.path.isfile(os.path.join(settings.tls_dir, f))]
    if missing:
        raise exception.MigrationPreCheckError(reason=_(
            "live migration over TLS needs %(files)s in [qmp]live_migration_tls_dir "
            "(%(dir)s); or set [qmp]live_migration_plain_tcp") % {
            "files": ", ".join(missing), "dir": settings.tls_dir})


def add_tls(hv, guest, settings, endpoint):
    """The guest's QEMU gets the TLS credentials object (again: no error)."""
    if not settings.tls_dir:
        return
    existing = [o["name"] for o in hv._qmp(guest, "qom-list", path="/objects")]
    if TLS_ID in existing:
        return
    hv._qmp(guest, "object-add", **{"qom-type": "tls-creds-x509", "id": TLS_ID,
                                     "dir": settings.tls_dir, "endpoint": endpoint,
                                     "verify-peer": True})


def downtime_steps(settings, memory_mb):
    """(seconds after the start, downtime in ms) pairs, growing to ``downtime_ms`` in
    ``downtime_steps`` steps ``downtime_delay`` seconds per GiB of RAM apart (as nova's
    libvirt driver does)."""
    steps = max(1, settings.downtime_steps)
    delay = settings.downtime_delay * max(1.0, memory_mb / 1024.0)
    base = max(1, settings.downtime_ms // steps)
    offset = (settings.downtime_ms - base) / max(1, steps - 1) if steps > 1 else 0
    return [(int(i * delay), int(base + offset * i)) for i in range(steps)]


def free_port(address):
    """A TCP port free on ``address`` now (QEMU binds it a moment later; a lost race is
    retried by the caller)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def console_options():
    """The console arguments ``QemuHypervisor.start`` gives ``qemu.command_line``."""
    return {"serial_ports": (ports.parse_range(CONF.serial_console.port_range)
                             if CONF.serial_console.enabled else None),
            "vnc_tcp": CONF.vnc.enabled}


def inet(address, port):
    return {"type": "inet", "host": address, "port": str(port)}


class Incoming:
    """The destination side, bound to a ``QemuHypervisor``."""

    def __init__(self, hv):
        self.hv = hv

    def start(self, guest, address, drives, settings):
        """Start the guest's QEMU waiting for the migration; returns
        ``(migration port, NBD port or 0)``. On failure nothing is left running."""
        argv = qemu.command_line(CONF, guest, **console_options()) + [
            "-incoming", "defer", "-S"]
        qemu.start(CONF, guest, argv)
        try:
            self.hv._connect_new(guest)
            caps = [("events", True), ("late-block-activate", True),
                    ("postcopy-ram", settings.permit_post_copy)]
            self.hv._qmp(guest, "migrate-set-capabilities", capabilities=[
                {"capability": c, "state": s} for c, s in caps])
            add_tls(self.hv, guest, settings, "server")
            self.hv._qmp(guest, "migrate-set-parameters",
                         **{"tls-creds": settings.tls_creds or ""})
            nbd_port = self._export(guest, address, drives, settings) if drives else 0
            self.hv._qmp(guest, "migrate-incoming",
                         uri="tcp:%s:0" % _uri_host(address))
            info = self.hv._qmp(guest, "query-migrate")
            port = int(info["socket-address"][0]["port"])
        except Exception as e:
            self.hv.stop(guest)
            raise exception.MigrationError(
                reason=_("the destination QEMU could not be prepared: %s") % e)
        LOG.info("waiting for the migration on port %d (NBD port %s)", port,
                 nbd_port or "-", instance_uuid=guest.uuid)
        return port, nbd_port

    def _export(self, guest, address, drives, settings):
        nodes = {d["device"]: d["inserted"]["node-name"]
                 for d in self.hv._qmp(guest, "query-block") if d.get("inserted")}
        for attempt in range(NBD_PORT_TRIES):
            port = free_port(address)
            data = inet(address, port)
            del data["type"]
            args = {"addr": {"type": "inet", "data": data}}
            if settings.tls_creds:
                args["tls-creds"] = settings.tls_creds
            try:
                self.hv._qmp(guest, "nbd-server-start", **args)
                break
            except exception.InternalError:
                if attempt == NBD_PORT_TRIES - 1:
                    raise
        for drive in drives:
            self.hv._qmp(guest, "block-export-add", type="nbd", id=EXPORT + drive,
                         name=drive, writable=True, **{"node-name": nodes[drive]})
        return port

    def wait_and_resume(self, guest, timeout, start_timeout=None):
        """Block until the incoming migration ends (its MIGRATION event, or its status
        already final when the wait begins); when it has completed, resume the guest
        (``finish``). Returns the final status: "completed" (also when finishing
        failed: the guest's only copy is here then, never undone), "failed",
        "cancelled", None when ``timeout`` passed, or "not-started" when the source
        had not begun to send within ``start_timeout`` seconds."""
        if start_timeout:
            # before the source connects QEMU reports no status, or "setup"
            begun = self.hv._qmp_wait(
                guest, "query-migrate", None, "MIGRATION",
                lambda d: d.get("status") not in NOT_BEGUN, start_timeout,
                reply_match=lambda r: r.get("status") not in NOT_BEGUN)
            if begun is None:
                return "not-started"
        done = self.hv._qmp_wait(guest, "query-migrate", None, "MIGRATION",
                                 lambda d: d.get("status") in FINISHED, timeout,
                                 reply_match=lambda r: r.get("status") in FINISHED)
        status = (done or {}).get("status")
        if status == "completed":
            try:
                self.finish(guest, paused=True)
            except exception.NovaException as e:
                LOG.error("the migration completed but resuming the guest failed: %s",
                          e, instance_uuid=guest.uuid)
        return status

    def finish(self, guest, paused=False):
        """Exports gone, then the guest running, then the NBD server stopped
        (idempotent; ``paused``: the guest is known to wait, no status read). The
        migration completes only after the source's mirrors have ended (at
        ``pre-switchover``), so nothing writes to the exports any more: each is
        closed at once (``hard``: the source's connection, idle, is cut), before the
        guest resumes, as libvirt stops its NBD server before it does, so the guest's
        disks get their own permissions back when they are activated."""
        for export in [e["id"] for e in self.hv._qmp(guest, "query-block-exports")
                       if e["id"].startswith(EXPORT)]:
            try:
                self.hv._qmp(guest, "block-export-del", id=export, mode="hard")
            except exception.InternalError:
                pass                   # removed meanwhile by the other caller
        # cont on a running guest would report it stopped and resumed: asked only then
        if paused or self.hv._qmp(guest, "query-status")["status"] != "running":
            self.hv._qmp(guest, "cont")
        try:
            self.hv._qmp(guest, "nbd-server-stop")
        except exception.InternalError:
            pass                       # none was started (RAM only), or stopped


class Outgoing:
    """One migration from this host: ``run`` in the migrating thread, ``abort`` and
    ``force_complete`` from others."""

    def __init__(self, hv, guest, address, port, nbd_port, drives, settings,
                 on_progress=None):
        self.hv, self.guest = hv, guest
        self.address, self.port, self.nbd_port = address, port, nbd_port
        self.drives, self.settings = list(drives), settings
        self.on_progress = on_progress or (lambda progress: None)
        self._aborted = threading.Event()
        self._forced = False
        self.downtime_ms = None         # as QEMU measured it, once completed
        self._disk = (0, 0)             # (bytes to copy, bytes copied) of the disks

    def _qmp(self, command, **args):
        return self.hv._qmp(self.guest, command, **args)

    @property
    def aborted(self):
        return self._aborted.is_set()

    def run(self):
        """Migrate; returns once the guest runs on the destination (this QEMU is
        stopped in ``postmigrate``). Raises ``MigrationError`` (the guest still runs
        here, nothing of the migration left in this QEMU). A migration that completed
        meanwhile (an abort or the completion timeout came too late) is a success:
        the guest runs on the destination, and is never resumed here too."""
        try:
            self._mirror()
            self._migrate()
        except Exception as e:
            if self._completed():
                LOG.warning("the migration completed before %s took effect", e,
                            instance_uuid=self.guest.uuid)
                if self.drives:
                    self._release_targets()
                return
            self._undo()
            raise

    def _completed(self):
        try:
            return self._qmp("query-migrate").get("status") == "completed"
        except exception.NovaException:
            return False

    def abort(self):
        self._aborted.set()
        try:
            self._qmp("migrate_cancel")
        except exception.NovaException:
            pass

    def force_complete(self):
        """Post-copy when permitted and the migration runs, else pause the guest so the
        migration converges (it resumes on the destination)."""
        self._forced = True
        status = self._qmp("query-migrate").get("status")
        if self.settings.permit_post_copy and status == "active":
            self._qmp("migrate-start-postcopy")
            LOG.info("switched to post-copy", instance_uuid=self.guest.uuid)
        else:
            self._qmp("stop")
            LOG.info("guest paused so that the migration completes",
                     instance_uuid=self.guest.uuid)

    # -- disks ------------------------------------------------------------------------
    def _mirror(self):
        add_tls(self.hv, self.guest, self.settings, "client")
        for drive in self.drives:
            args = {"driver": "nbd", "node-name": TARGET + drive, "export": drive,
                    "server": inet(self.address, self.nbd_port)}
            if self.settings.tls_creds:
                args["tls-creds"] = self.settings.tls_creds
            self._qmp("blockdev-add", **args)
            self._qmp("blockdev-mirror", **{
                "job-id": JOB + drive, "device": drive, "target": TARGET + drive,
                "sync": "full", "copy-mode": "write-blocking", "auto-dismiss": False})
        deadline = self._deadline()
        while self.drives:
            jobs = self._jobs()
            self._report(None, jobs)
            failed = [j for j in jobs.values() if j.get("status") == "concluded"]
            if failed or len(jobs) < len(self.drives):
                errors = [j.get("error") for j in self._qmp("query-jobs")
                          if j["id"].startswith(JOB) and j.get("error")]
                raise exception.MigrationError(reason=_("copying the disks failed: %s")
                                               % (errors or _("a mirror ended")))
            if all(j.get("ready") for j in jobs.values()):
                return
            self._check(deadline, _("copying the disks"))
            time.sleep(POLL)

    def _jobs(self):
        return {j["device"]: j for j in self._qmp("query-block-jobs")
                if j["device"].startswith(JOB)}

    def _complete_mirrors(self):
        """At pre-switchover (guest stopped): each mirror, in sync, ends without pivot.
        The guest stays stopped meanwhile, so only what decides whether the migration
        may go on is done here: each cancel waits for its job's conclusion event
        (registered before the command is sent), not for a poll, and one query checks
        the jobs' errors; the jobs and NBD connections go after the migration
        (``_release_targets``)."""
        deadline = time.monotonic() + CONF.qmp.qmp_timeout
        for drive in self.drives:
            job = JOB + drive
            self.hv._qmp_wait(self.guest, "block-job-cancel", {"device": job},
                              "JOB_STATUS_CHANGE",
                              lambda d, job=job: d.get("id") == job and
                              d.get("status") == "concluded",
                              max(0.0, deadline - time.monotonic()))
        states = {j["id"]: j for j in self._qmp("query-jobs") if j["id"].startswith(JOB)}
        if not all(s["status"] == "concluded" for s in states.values()):
            raise exception.MigrationError(reason=_("the disk mirrors did not complete"))
        errors = [s.get("error") for s in states.values() if s.get("error")]
        if errors:
            raise exception.MigrationError(reason=_("the disk mirrors failed: %s")
                                           % errors)
        self._disk = (self._disk[0], self._disk[0])

    def _release_targets(self):
        """After the migration: the concluded mirror jobs dismissed and the connections
        to the destination's exports closed (the guest runs there already)."""
        try:
            for job in [j["id"] for j in self._qmp("query-jobs")
                        if j["id"].startswith(JOB)]:
                self._qmp("job-dismiss", id=job)
            self._drop_targets([TARGET + drive for drive in self.drives])
        except exception.NovaException as e:
            LOG.warning("releasing the disk mirrors after the migration: %s", e,
                        instance_uuid=self.guest.uuid)

    def _drop_targets(self, nodes=None):
        if nodes is None:
            nodes = [n["node-name"] for n in self._qmp("query-named-block-nodes")
                     if n.get("node-name", "").startswith(TARGET)]
        for node in nodes:
            self._qmp("blockdev-del", **{"node-name": node})

    def _undo(self):
        """After a failure: no migration, no mirror, no NBD node; the guest runs."""
        for step in (self._cancel_migration, self._drop_mirrors):
            try:
                step()
            except Exception:
                LOG.exception("cleaning up the failed migration failed",
                              instance_uuid=self.guest.uuid)

    def _cancel_migration(self):
        if self._qmp("query-migrate").get("status") not in FINISHED + (None,):
            self._qmp("migrate_cancel")
        self._wait_migration_end()
        if self._qmp("query-status")["status"] != "running":
            self._qmp("cont")

    def _wait_migration_end(self):
        deadline = time.monotonic() + CONF.qmp.qmp_timeout
        while self._qmp("query-migrate").get("status") not in FINISHED + (None,) and \
                time.monotonic() < deadline:
            time.sleep(POLL)

    def _drop_mirrors(self):
        jobs = {j["id"]: j for j in self._qmp("query-jobs") if j["id"].startswith(JOB)}
        for job, state in jobs.items():
            if state["status"] != "concluded":
                self._qmp("job-cancel", id=job)
        deadline = time.monotonic() + CONF.qmp.qmp_timeout
        while jobs and time.monotonic() < deadline:
            jobs = {j["id"]: j for j in self._qmp("query-jobs")
                    if j["id"].startswith(JOB)}
            for job, state in list(jobs.items()):
                if state["status"] == "concluded":
                    self._qmp("job-dismiss", id=job)
                    del jobs[job]
            time.sleep(0.05)
        self._drop_targets()
        if self.settings.tls_dir:
            self._qmp("migrate-set-parameters", **{"tls-creds": ""})
            self._qmp("object-del", id=TLS_ID)

    # -- RAM --------------------------------------------------------------------------
    def _migrate(self):
        s = self.settings
        caps = [("events", True), ("pause-before-switchover", bool(self.drives)),
                ("postcopy-ram", s.permit_post_copy)]
        self._qmp("migrate-set-capabilities", capabilities=[
            {"capability": c, "state": v} for c, v in caps])
        steps = downtime_steps(s, self.guest.record.memory_mb)
        self._qmp("migrate-set-parameters", **{
            "downtime-limit": steps[0][1], "tls-creds": s.tls_creds or "",
            "max-bandwidth": (s.bandwidth_mib or UNLIMITED_MIB) * 1024 * 1024})
        self._qmp("migrate", uri="tcp:%s:%d" % (_uri_host(self.address), self.port))
        LOG.info("migrating to %s:%d", self.address, self.port,
                 instance_uuid=self.guest.uuid)
        start, deadline = time.monotonic(), self._deadline()
        step, event, switched = 0, None, False
        while True:
            if event == "pre-switchover" and not switched:
                # the guest is stopped from here: before anything else
                switched = self._switch_over()
            info = self._qmp("query-migrate")
            status = info.get("status")
            if status == "pre-switchover" and not switched:
                switched = self._switch_over()
                continue
            self._report(info, self._jobs() if self.drives and not switched else {})
            if status == "completed":
                self.downtime_ms = info.get("downtime")
                LOG.info("migration completed (downtime %s ms)", self.downtime_ms,
                         instance_uuid=self.guest.uuid)
                if self.drives:
                    self._release_targets()
                return
            elif status in ("failed", "cancelled"):
                raise exception.MigrationError(reason=info.get("error-desc") or (
                    _("aborted") if self._aborted.is_set() else status))
            elapsed = time.monotonic() - start
            while step + 1 < len(steps) and elapsed >= steps[step + 1][0]:
                step += 1
                self._qmp("migrate-set-parameters", **{"downtime-limit": steps[step][1]})
                LOG.info("allowed downtime now %d ms", steps[step][1],
                         instance_uuid=self.guest.uuid)
            if status not in ("postcopy-active",):
                self._check(deadline, _("the migration"))
            event = self._await_change()

    def _switch_over(self):
        self._complete_mirrors()
        self._qmp("migrate-continue", state="pre-switchover")
        return True

    def _await_change(self):
        """Up to ``POLL`` seconds, less when QEMU reports a step the driver acts on: at
        ``pre-switchover`` the guest is stopped until the driver lets the migration go
        on, so that is seen from QEMU's MIGRATION event, not at the next poll. Returns
        the status the event reported (None: none came)."""
        data = self.hv._qmp_wait(self.guest, "query-status", None, "MIGRATION",
                                 lambda d: d.get("status") in ACTED_ON, POLL)
        return (data or {}).get("status")

    # -- shared -----------------------------------------------------------------------
    def _deadline(self):
        timeout = self.settings.completion_timeout
        if not timeout:
            return None
        size_gib = max(1.0, self.guest.record.memory_mb / 1024.0)
        return time.monotonic() + timeout * size_gib

    def _check(self, deadline, what):
        if self._aborted.is_set():
            raise exception.MigrationError(reason=_("aborted"))
        if deadline is None or time.monotonic() < deadline or self._forced:
            return
        if self.settings.timeout_action == "force_complete":
            LOG.warning("%s has not completed in time; forcing it", what,
                        instance_uuid=self.guest.uuid)
            self.force_complete()
            return
        raise exception.MigrationError(
            reason=_("%s did not complete within the completion timeout") % what)

    def _report(self, info, jobs):
        ram = (info or {}).get("ram", {})
        if jobs:
            self._disk = (sum(j.get("len", 0) for j in jobs.values()),
                          sum(j.get("offset", 0) for j in jobs.values()))
        disk_total, disk_done = self._disk
        self.on_progress({
            "memory_total": ram.get("total", 0),
            "memory_processed": ram.get("transferred", 0),
            "memory_remaining": ram.get("remaining", 0),
            "disk_total": disk_total, "disk_processed": disk_done,
            "disk_remaining": disk_total - disk_done})


def _uri_host(address):
    return "[%s]" % address if ":" in address else address


def settings(conf):
    q = conf.qmp
    return Settings(downtime_ms=q.live_migration_downtime,
                    downtime_steps=q.live_migration_downtime_steps,
                    downtime_delay=q.live_migration_downtime_delay,
                    completion_timeout=q.live_migration_completion_timeout,
                    timeout_action=q.live_migration_timeout_action,
                    bandwidth_mib=q.live_migration_bandwidth,
                    permit_post_copy=q.live_migration_permit_post_copy,
                    tls_dir=None if q.live_migration_plain_tcp else q.live_migration_tls_dir)


def drives(guest):
    """The QEMU drive ids of the guest's local disks (root, ephemeral, swap)."""
    found = ["root"] if guest.record.spec.get("root_disk", True) else []
    return found + [name.split(".", 1)[1]
                    for name in guest.record.spec.get("local_disks", ())]


class LiveMigration:
    """``QemuHypervisor``'s live migration operations (``hv_api.LIVE_MIGRATION``)."""

    def migration_address(self):
        check_tls(settings(CONF), "server")
        return CONF.qmp.live_migration_inbound_addr or CONF.my_ip

    def disk_transfer(self, endpoint):
        """The live migration's address and credentials serve cold migrations too."""
        s = settings(CONF)
        check_tls(s, endpoint)
        return self.migration_address(), s.tls_dir

    def check_outgoing_migration(self, guest):
        check_tls(settings(CONF), "client")
        encrypted = sorted(v for v, vol in guest.record.volumes.items()
                           if vol.get("encryption"))
        if encrypted:
            raise exception.MigrationPreCheckError(reason=_(
                "live migration of an instance with encrypted volumes (%s) is not "
                "supported by the QMP driver") % ", ".join(encrypted))

    def migration_drives(self, guest):
        return drives(guest)

    def prepare_incoming(self, guest, address, drives):
        return Incoming(self).start(guest, address, drives, settings(CONF))

    def wait_incoming(self, guest, must_start=False):
        s = settings(CONF)
        size_gib = max(1.0, guest.record.memory_mb / 1024.0)
        # the source gives up after its completion timeout; this side waits longer
        timeout = 2 * s.completion_timeout * size_gib + 3600 if s.completion_timeout \
            else 30 * 86400
        # before it sends, the source waits for the ports (nova's vif_plugging_timeout)
        # and sets its QEMU up (a few QMP commands)
        start_timeout = CONF.vif_plugging_timeout + 4 * CONF.qmp.qmp_timeout \
            if must_start else None
        return Incoming(self).wait_and_resume(guest, timeout, start_timeout)

    def finish_incoming(self, guest):
        Incoming(self).finish(guest)

    def migrate(self, guest, address, port, export_port, drives, on_progress):
        out = Outgoing(self, guest, address, port, export_port, drives, settings(CONF),
                       on_progress)
        self._outgoing()[guest.uuid] = out
        self._aborted().discard(guest.uuid)
        try:
            out.run()
        except Exception:
            if out.aborted:
                self._aborted().add(guest.uuid)
            raise
        finally:
            self._outgoing().pop(guest.uuid, None)

    def migration_aborted(self, guest):
        """Whether the last outgoing migration of the guest ended by an abort."""
        return guest.uuid in self._aborted()

    def _aborted(self):
        if not hasattr(self, "_aborted_migrations"):
            self._aborted_migrations = set()
        return self._aborted_migrations

    def _outgoing(self):
        if not hasattr(self, "_migrations"):
            self._migrations = {}
        return self._migrations

    def _running_migration(self, guest):
        out = self._outgoing().get(guest.uuid)
        if out is None:
            raise exception.NoActiveMigrationForInstance(instance_id=guest.uuid)
        return out

    def abort_migration(self, guest):
        self._running_migration(guest).abort()
        LOG.info("live migration aborted", instance_uuid=guest.uuid)

    def force_complete_migration(self, guest):
        self._running_migration(guest).force_complete()
