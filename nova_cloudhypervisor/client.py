"""A typed client of the Cloud Hypervisor REST API over its UNIX socket (httpx).

One method per endpoint; request and response bodies are the models of
``nova_cloudhypervisor.models``. Errors are mapped from the status code
(``BEHAVIOUR.md``: the server answers 500 for a wrong state, 404 for a VM or device that
does not exist, 400 for a bad request) and keep the server's error chain (a JSON array of
strings, outermost first) for the log. Calls that hand file descriptors to the VMM
(``vm.add-net``, ``vm.restore`` with ``net_fds``) go over a plain socket with
``SCM_RIGHTS``, as httpx cannot attach descriptors.
"""
import array
import collections
import json
import socket

import h11
import httpx

from nova_cloudhypervisor import models

API = "/api/v1/"
# micro_http's request size limit in every release (HEAD raises it to 4 MiB)
MAX_BODY = 51200

Endpoint = collections.namedtuple("Endpoint", "method request response")
ENDPOINTS = {
    "vmm.ping": Endpoint("GET", None, models.VmmPingResponse),
    "vmm.shutdown": Endpoint("PUT", None, None),
    "vm.info": Endpoint("GET", None, models.VmInfo),
    "vm.counters": Endpoint("GET", None, dict),
    "vm.create": Endpoint("PUT", models.VmConfig, None),
    "vm.delete": Endpoint("PUT", None, None),
    "vm.boot": Endpoint("PUT", None, None),
    "vm.shutdown": Endpoint("PUT", None, None),
    "vm.reboot": Endpoint("PUT", None, None),
    "vm.power-button": Endpoint("PUT", None, None),
    "vm.pause": Endpoint("PUT", None, None),
    "vm.resume": Endpoint("PUT", None, None),
    "vm.nmi": Endpoint("PUT", None, None),
    "vm.resize": Endpoint("PUT", models.VmResize, None),
    "vm.resize-disk": Endpoint("PUT", models.VmResizeDisk, None),
    "vm.add-disk": Endpoint("PUT", models.DiskConfig, models.PciDeviceInfo),
    "vm.add-net": Endpoint("PUT", models.NetConfig, models.PciDeviceInfo),
    "vm.remove-device": Endpoint("PUT", models.VmRemoveDevice, None),
    "vm.snapshot": Endpoint("PUT", models.VmSnapshotConfig, None),
    "vm.restore": Endpoint("PUT", models.RestoreConfig, None),
}


class ApiError(Exception):
    """The server refused a call (or could not be reached): ``endpoint``, ``status``
    (None if there was no answer) and ``messages`` (its error chain)."""

    def __init__(self, endpoint, status, messages):
        self.endpoint = endpoint
        self.status = status
        self.messages = list(messages)
        super().__init__("%s: %s%s" % (endpoint, status if status else "no answer",
                                       (": " + ": ".join(self.messages)) if self.messages
                                       else ""))


class BadRequest(ApiError):
    """400: the body (or its absence) was refused."""


class NotFound(ApiError):
    """404: no VM created (v53+), unknown device id (HEAD), or no such endpoint."""


class Conflict(ApiError):
    """409: a device id or path that is already used (HEAD)."""


class Busy(ApiError):
    """429: a vCPU removal is still pending."""


class InternalError(ApiError):
    """500: the VMM refused the call in the VM's current state, or the action failed."""


class Unavailable(ApiError):
    """503: the server's connection limit (10) is reached."""


class ConnectionFailed(ApiError):
    """No answer: the socket is missing, refuses connections or closed mid-call."""


STATUS_ERRORS = {400: BadRequest, 404: NotFound, 409: Conflict, 429: Busy,
                 500: InternalError, 503: Unavailable}


def error_messages(content):
    """The error chain of an error body: a JSON array (v47+), a JSON object with
    ``error`` (micro_http's own errors), or plain text (up to v46)."""
    if not content:
        return []
    text = content.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return [text.strip()]
    if isinstance(data, list):
        return [str(m) for m in data]
    if isinstance(data, dict) and "error" in data:
        return [str(data["error"])]
    return [text.strip()]


def _raise_for(endpoint, status, content):
    cls = STATUS_ERRORS.get(status, ApiError)
    raise cls(endpoint, status, error_messages(content))


class Client:
    def __init__(self, socket_path, timeout=30.0):
        self.socket_path = socket_path
        self.timeout = timeout
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=socket_path),
            base_url="http://localhost" + API, timeout=timeout)

    def close(self):
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- transport --------------------------------------------------------------------------
    def _encode(self, name, body):
        endpoint = ENDPOINTS[name]
        if body is None:
            return None
        if not isinstance(body, endpoint.request):
            raise TypeError("%s takes a %s, not %r" % (name, endpoint.request.__name__,
                                                       body))
        data = json.dumps(body.to_json()).encode()
        if len(data) > MAX_BODY:
            raise BadRequest(name, None, ["request body of %d bytes is over the server's "
                                          "limit of %d" % (len(data), MAX_BODY)])
        return data

    def _decode(self, name, status, content):
        endpoint = ENDPOINTS[name]
        if status == 204 or not content or endpoint.response is None:
            return None
        data = json.loads(content)
        if endpoint.response is dict:
            return data
        return endpoint.response.from_json(data)

    def call(self, name, body=None):
        endpoint = ENDPOINTS[name]
        data = self._encode(name, body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            response = self._http.request(endpoint.method, name, content=data,
                                          headers=headers)
        except (httpx.TransportError, OSError) as e:
            raise ConnectionFailed(name, None, [str(e) or type(e).__name__])
        if response.status_code >= 300:
            _raise_for(name, response.status_code, response.content)
        return self._decode(name, response.status_code, response.content)

    def call_with_fds(self, name, body, fds):
        """PUT ``body`` with ``fds`` attached (SCM_RIGHTS) on a connection of its own."""
        endpoint = ENDPOINTS[name]
        data = self._encode(name, body)
        conn = h11.Connection(h11.CLIENT)
        wire = conn.send(h11.Request(
            method=endpoint.method, target=API + name,
            headers=[("Host", "localhost"), ("Content-Type", "application/json"),
                     ("Content-Length", str(len(data)))]))
        wire += conn.send(h11.Data(data=data)) + conn.send(h11.EndOfMessage())
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
            sock.sendmsg([wire], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                   array.array("i", fds))])
            status, content = self._read_response(conn, sock)
        except (OSError, h11.ProtocolError) as e:
            raise ConnectionFailed(name, None, [str(e) or type(e).__name__])
        finally:
            sock.close()
        if status >= 300:
            _raise_for(name, status, content)
        return self._decode(name, status, content)

    @staticmethod
    def _read_response(conn, sock):
        status, content = None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return status, content

    # -- endpoints --------------------------------------------------------------------------
    def ping(self):
        return self.call("vmm.ping")

    def shutdown_vmm(self):
        """Ends the VMM process. Its 200 has no length, so the answer ends when the
        process closes the socket: a dropped connection counts as success."""
        try:
            self.call("vmm.shutdown")
        except ConnectionFailed:
            pass

    def info(self):
        return self.call("vm.info")

    def counters(self):
        return self.call("vm.counters")

    def create(self, config):
        self.call("vm.create", config)

    def delete(self):
        self.call("vm.delete")

    def boot(self):
        self.call("vm.boot")

    def shutdown(self):
        self.call("vm.shutdown")

    def reboot(self):
        self.call("vm.reboot")

    def power_button(self):
        self.call("vm.power-button")

    def pause(self):
        self.call("vm.pause")

    def resume(self):
        self.call("vm.resume")

    def nmi(self):
        self.call("vm.nmi")

    def resize(self, resize):
        self.call("vm.resize", resize)

    def resize_disk(self, device_id, size):
        self.call("vm.resize-disk", models.VmResizeDisk(id=device_id, desired_size=size))

    def add_disk(self, disk):
        """A ``PciDeviceInfo`` when hot-plugged into a booted VM, None when cold-plugged."""
        return self.call("vm.add-disk", disk)

    def add_net(self, net, fds=()):
        if fds:
            return self.call_with_fds("vm.add-net", net, fds)
        return self.call("vm.add-net", net)

    def remove_device(self, device_id):
        self.call("vm.remove-device", models.VmRemoveDevice(id=device_id))

    def snapshot(self, directory):
        self.call("vm.snapshot", models.VmSnapshotConfig(destination_url="file://" +
                                                         directory))

    def restore(self, restore, fds=()):
        if fds:
            return self.call_with_fds("vm.restore", restore, fds)
        return self.call("vm.restore", restore)
