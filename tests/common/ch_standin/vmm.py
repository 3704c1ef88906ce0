"""The stand-in's VMM: the API's state machine (v53 behaviour), request validation
against the official spec, device ids, event-monitor records."""
import json
import os
import subprocess
import time

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest
from qemu.qmp import QMPError

from tests.common import ch_spec
from tests.common.ch_standin import guest as guest_mod
from tests.common.ch_standin.http import Response

E = "Error from API"
# endpoints the stand-in serves: name -> (method, takes a body)
ROUTES = {}
for _path, _ops in ch_spec.load()["paths"].items():
    for _method, _op in _ops.items():
        ROUTES[_path[1:]] = (_method.upper(), "requestBody" in _op)
UNSUPPORTED = {"vm.coredump"}       # routed only in guest_debug builds: 404


def error(status, *chain):
    return Response(status, list(chain))


class VMM:
    def __init__(self, workdir, events_path, log, no_shutdown=False):
        self.workdir, self.log, self.no_shutdown = workdir, log, no_shutdown
        self.events = open(events_path, "a") if events_path else None
        self.started = time.monotonic()
        self.openapi = OpenAPI.from_dict(ch_spec.load())
        self.violations = []
        self.config = None        # NC when None
        self.guest = None         # a running QEMU: state R or P
        self.paused = False
        self.net_fds = {}         # net id -> [fd]
        self.counter = 0
        self.exit_requested = False
        self.on_guest_start = None      # the server watches the guest's pidfd
        self.event("vmm", "starting")

    # -- events -------------------------------------------------------------------------
    def event(self, source, name, properties=None):
        if self.events is None:
            return
        t = time.monotonic() - self.started
        record = {"timestamp": {"secs": int(t), "nanos": int((t % 1) * 1e9)},
                  "source": source, "event": name, "properties": properties}
        self.events.write(json.dumps(record, indent=2) + "\n")
        self.events.flush()

    # -- HTTP ---------------------------------------------------------------------------
    def handle(self, req):
        prefix = "/api/v1/"
        if not req.path.startswith(prefix) or req.path[len(prefix):] not in ROUTES:
            return error(404, "Not Found")
        name = req.path[len(prefix):]
        if name in UNSUPPORTED:
            return error(404, "Not Found")
        method, takes_body = ROUTES[name]
        if req.method in ("PATCH", "DELETE"):
            return Response(400)
        if req.method != method:
            return error(400, "Bad Request")
        if not takes_body and req.body:
            return error(400, "Bad Request")
        body = None
        if takes_body:
            if not req.body:
                return Response(400) if name == "vm.create" else error(400, "Bad Request")
            try:
                body = json.loads(req.body)
            except ValueError as e:
                return error(400, "Failed to deserialize JSON", str(e))
        violation = self.validate(req, name)
        if violation:
            self.violations.append("%s %s: %s" % (req.method, name, violation))
            self.log("SPEC VIOLATION %s" % self.violations[-1])
            return error(400, "Failed to deserialize JSON", violation)
        handler = getattr(self, "api_" + name.replace(".", "_").replace("-", "_"), None)
        if handler is None:
            return error(500, E, "not implemented by the stand-in")
        try:
            return handler(body, req.fds) if takes_body else handler()
        except (guest_mod.GuestError, QMPError) as e:
            # a failing guest fails the request, as in the real VMM; it does not end
            # the VMM (which would drop the connection without an answer)
            self.log("request %s failed: %s: %s" % (name, type(e).__name__, e))
            return error(500, E, "The guest failed", str(e))

    def validate(self, req, name):
        mock = MockRequest("http://localhost", req.method.lower(), "/api/v1/" + name,
                           data=req.body.decode() if req.body else None,
                           content_type=req.headers.get("content-type",
                                                        "application/json").split(";")[0])
        try:
            self.openapi.validate_request(mock)
        except Exception as e:    # openapi-core's validation errors have no common base
            cause = getattr(e, "__cause__", None)
            return "%s%s" % (e, (" (%s)" % cause) if cause else "")
        return None

    # -- state ------------------------------------------------------------------------------
    @property
    def state(self):
        if self.config is None:
            return None
        if self.guest is None:
            return "Created"
        return "Paused" if self.paused else "Running"

    def _new_id(self, prefix):
        while True:
            dev_id = "_%s%d" % (prefix, self.counter)
            self.counter += 1
            if not self._find(dev_id):
                return dev_id

    def _find(self, dev_id):
        for key in ("disks", "net"):
            for dev in (self.config or {}).get(key) or []:
                if dev.get("id") == dev_id:
                    return key, dev
        return None

    def _assign(self, key, dev):
        if not dev.get("id"):
            dev["id"] = self._new_id("disk" if key == "disks" else "net")
        if key == "net" and not dev.get("mac"):
            dev["mac"] = "52:54:00:%02x:%02x:%02x" % tuple(os.urandom(3))

    def _start_guest(self, incoming=False):
        for disk in self.config.get("disks") or []:
            self._check_disk(disk)
        g = guest_mod.Guest(self.workdir, self.config, self.net_fds, self.log)
        g.start(incoming=incoming)
        self.guest, self.paused = g, False
        if self.on_guest_start:
            self.on_guest_start(g)

    @staticmethod
    def _check_disk(disk):
        if not os.path.exists(disk["path"]):
            raise guest_mod.GuestError("Cannot open disk path %s" % disk["path"])
        if disk.get("image_type") == "Qcow2" and not disk.get("backing_files"):
            out = subprocess.run(["qemu-img", "info", "--output=json", "-U", disk["path"]],
                                 capture_output=True, text=True, check=True).stdout
            if json.loads(out).get("backing-filename"):
                raise guest_mod.GuestError("Backing files are not allowed (disk %s; set "
                                           "backing_files=on)" % disk["path"])

    def _stop_guest(self):
        if self.guest is not None:
            self.guest.stop()
            self.guest = None
        self.paused = False

    def guest_exited(self):
        """QEMU ended: the guest powered off (or crashed)."""
        self._stop_guest()
        self.event("vm", "shutdown")
        if not self.no_shutdown:
            self.exit_requested = True

    def close(self):
        self._stop_guest()
        self.event("vmm", "shutdown")
        for fds in self.net_fds.values():
            for fd in fds:
                os.close(fd)
        self.net_fds = {}

    # -- endpoints --------------------------------------------------------------------------
    def api_vmm_ping(self):
        return Response(200, {"build_version": "v53.0-standin", "version": "53.0.0",
                              "pid": os.getpid(), "features": ["kvm"]})

    def api_vmm_shutdown(self):
        self.exit_requested = True
        return Response(200, raw_length=False)

    def api_vm_info(self):
        if self.config is None:
            return error(404, E, "The VM info is not available", "VM is not created")
        info = {"config": self.config, "state": self.state,
                "memory_actual_size": (self.config.get("memory") or {}).get(
                    "size", 512 << 20)}
        if self.guest is not None:
            info["device_tree"] = {d["id"]: {"id": d["id"], "resources": [], "children": []}
                                   for k in ("disks", "net") for d in self.config.get(k)
                                   or []}
        return Response(200, info)

    def api_vm_counters(self):
        if self.guest is None:
            return error(500, E, "The VM info is not available", "VM is not running")
        return Response(200, {d["id"]: {"read_bytes": 0, "write_bytes": 0}
                              for d in self.config.get("disks") or []})

    def api_vm_create(self, body, fds):
        if self.config is not None:
            return error(500, E, "The VM could not be created", "VM is already created")
        if (body.get("console") or {"mode": "Tty"}).get("mode") == "Socket":
            return error(500, E, "The VM could not be created",
                         "Error creating console devices")
        body.setdefault("serial", {"mode": "Null"})
        body.setdefault("console", {"mode": "Tty"})
        self.config = body
        for key in ("disks", "net"):
            for dev in body.get(key) or []:
                self._assign(key, dev)
        return Response(204)

    def api_vm_delete(self):
        self._stop_guest()
        self.config = None
        self.event("vm", "deleted")
        return Response(204)

    def api_vm_boot(self):
        if self.config is None:
            return error(404, E, "The VM could not boot", "VM config is missing")
        if self.guest is not None:
            return error(500, E, "The VM could not boot", "VM is already created")
        self.event("vm", "booting")
        try:
            self._start_guest()
        except guest_mod.GuestError as e:
            return error(500, E, "The VM could not boot", str(e))
        self.event("vm", "booted")
        return Response(204)

    def api_vm_shutdown(self):
        if self.guest is None:
            return error(500, E, "The VM could not shutdown", "VM is not running")
        self._stop_guest()
        self.event("vm", "shutdown")
        return Response(204)

    def api_vm_reboot(self):
        if self.guest is None:
            return error(404, E, "The VM could not reboot", "VM is not created")
        self.event("vm", "rebooting")
        self.guest.cmd("system_reset")
        if self.paused:
            self.guest.cmd("cont")
            self.paused = False
        self.event("vm", "rebooted")
        return Response(204)

    def api_vm_power_button(self):
        if self.guest is None:
            return error(500, E, "Error triggering power button", "VM is not running")
        self.guest.cmd("system_powerdown")
        return Response(204)

    def api_vm_pause(self):
        if self.guest is None:
            return error(500, E, "The VM could not be paused", "VM is not running")
        if self.paused:
            return error(500, E, "The VM could not be paused", "Cannot pause VM",
                         "Failed to pause migratable component",
                         "Invalid transition: InvalidStateTransition(Paused, Paused)")
        self.event("vm", "pausing")
        self.guest.cmd("stop")
        self.paused = True
        self.event("vm", "paused")
        return Response(204)

    def api_vm_resume(self):
        if self.guest is None:
            return error(500, E, "The VM could not resume", "VM is not running")
        if not self.paused:
            return error(500, E, "The VM could not resume", "Cannot resume VM",
                         "Failed to resume migratable component",
                         "Invalid transition: InvalidStateTransition(Running, Running)")
        self.event("vm", "resuming")
        self.guest.cmd("cont")
        self.paused = False
        self.event("vm", "resumed")
        return Response(204)

    def api_vm_nmi(self):
        if self.guest is None:
            return error(500, E, "Error injecting NMI", "VM is not running")
        self.guest.cmd("inject-nmi")
        return Response(204)

    def api_vm_resize(self, body, fds):
        if self.config is None:
            return error(404, E, "The VM could not be resized", "VM is not created")
        if self.guest is not None:
            return error(500, E, "The VM could not be resized",
                         "resize of a booted VM is not simulated")
        if body.get("desired_vcpus"):
            self.config["cpus"]["boot_vcpus"] = body["desired_vcpus"]
        if body.get("desired_ram"):
            self.config["memory"]["size"] = body["desired_ram"]
        return Response(204)

    def api_vm_resize_disk(self, body, fds):
        if self.config is None:
            return error(404, E, "The disk could not be resized", "VM is not created")
        if self.guest is None:
            return error(500, E, "The disk could not be resized",
                         "Failed resizing a disk image")
        found = self._find(body.get("id"))
        if not found or found[0] != "disks":
            return error(500, E, "The disk could not be resized", "Unknown device id")
        self.guest.resize_disk(body["id"], body["desired_size"])
        return Response(204)

    def _add(self, key, body, fds, hot):
        if self.config is None:
            return error(404, E, "The device could not be added", "VM is not created")
        if body.get("id") and self._find(body["id"]):
            return error(500, E, "The device could not be added",
                         "Identifier %s is not unique" % body["id"])
        self._assign(key, body)
        if fds:
            self.net_fds[body["id"]] = list(fds)
            body["fds"] = [-1] * len(fds)       # as the real one shows received fds
        if self.guest is not None:
            hot(body, fds)
        self.config.setdefault(key, []).append(body)
        if self.guest is None:
            return Response(204)
        return Response(200, {"id": body["id"], "bdf": "0000:00:%02x.0"
                              % (4 + len(self.config[key]))})

    def api_vm_add_disk(self, body, fds):
        if self.guest is not None:
            try:
                self._check_disk(body)
            except guest_mod.GuestError as e:
                return error(500, E, "The disk could not be added", str(e))
        return self._add("disks", body, fds, lambda b, f: self.guest.add_disk(b))

    def api_vm_add_net(self, body, fds):
        return self._add("net", body, fds, self.guest and self.guest.add_net)

    def api_vm_remove_device(self, body, fds):
        if self.config is None:
            return error(404, E, "The device could not be removed", "VM is not created")
        found = self._find(body.get("id"))
        if not found:
            return error(500, E, "The device could not be removed", "Unknown device id")
        key, dev = found
        if self.guest is not None:
            self.guest.remove(dev["id"])
        self.config[key].remove(dev)
        for fd in self.net_fds.pop(dev["id"], []):
            os.close(fd)
        return Response(204)

    def api_vm_snapshot(self, body, fds):
        if self.guest is None:
            return error(500, E, "The VM could not be snapshotted", "VM is not running")
        if not self.paused:
            return error(500, E, "The VM could not be snapshotted", "Cannot snapshot VM",
                         "Failed to snapshot migratable component",
                         "Trying to snapshot while VM is running")
        url = body.get("destination_url", "")
        if not url.startswith("file://") or not os.path.isdir(url[7:]):
            return error(500, E, "The VM could not be snapshotted",
                         "Invalid snapshot destination %s" % url)
        directory = url[7:]
        try:
            with open(os.path.join(directory, "config.json"), "x") as f:
                json.dump(self.config, f)
            with open(os.path.join(directory, "state.json"), "x") as f:
                json.dump({"standin": True}, f)
            fd = os.open(os.path.join(directory, "memory-ranges"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as e:
            return error(500, E, "The VM could not be snapshotted", str(e))
        try:
            self.guest.save(fd)
        finally:
            os.close(fd)
        self.event("vm", "snapshotted")
        return Response(204)

    def api_vm_restore(self, body, fds):
        if self.config is not None:
            return error(500, E, "The VM could not be restored", "VM is already created")
        url = body.get("source_url", "")
        directory = url[7:] if url.startswith("file://") else None
        try:
            with open(os.path.join(directory, "config.json")) as f:
                config = json.load(f)
        except (OSError, TypeError, ValueError) as e:
            return error(500, E, "The VM could not be restored", str(e))
        wanted = body.get("net_fds") or []
        if sum(n["num_fds"] for n in wanted) != len(fds):
            return error(400, E, "The VM could not be restored",
                         "Number of FDs passed does not match the config")
        fds = list(fds)
        for n in wanted:
            self.net_fds[n["id"]] = [fds.pop(0) for _ in range(n["num_fds"])]
        self.config = config
        try:
            self._start_guest(incoming=True)
            fd = os.open(os.path.join(directory, "memory-ranges"), os.O_RDONLY)
            try:
                self.guest.load(fd)
            finally:
                os.close(fd)
        except (OSError, guest_mod.GuestError) as e:
            self._stop_guest()
            self.config = None
            return error(500, E, "The VM could not be restored", str(e))
        self.paused = True
        if body.get("resume"):
            self.guest.cmd("cont")
            self.paused = False
        self.event("vm", "restored")
        return Response(204)
