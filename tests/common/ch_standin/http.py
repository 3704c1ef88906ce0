"""The transport of the stand-in: HTTP/1.1 on a UNIX socket, as micro_http does it."""
import array
import json
import os
import select
import socket

MAX_CONNECTIONS = 10
MAX_BODY = 51200
METHODS = (b"GET", b"PUT", b"PATCH", b"DELETE")


class Request:
    def __init__(self, method, path, headers, body, fds):
        self.method, self.path, self.headers = method, path, headers
        self.body, self.fds = body, fds


class Response:
    def __init__(self, status, body=None, close=False, raw_length=True):
        self.status, self.body, self.close = status, body, close
        self.raw_length = raw_length     # False: no Content-Length (vmm.shutdown's 200)

    def encode(self):
        head = ["HTTP/1.1 %d " % self.status, "Server: Cloud Hypervisor API",
                "Connection: %s" % ("close" if self.close else "keep-alive")]
        data = b""
        if self.body is not None:
            data = self.body if isinstance(self.body, bytes) else json.dumps(
                self.body).encode()
            head.append("Content-Type: application/json")
            head.append("Content-Length: %d" % len(data))
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.fds = []

    def fileno(self):
        return self.sock.fileno()

    def receive(self):
        fds = array.array("i")
        data, ancdata, _flags, _addr = self.sock.recvmsg(
            65536, socket.CMSG_SPACE(16 * fds.itemsize))
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(cdata[:len(cdata) - (len(cdata) % fds.itemsize)])
        self.fds.extend(fds)
        self.buf += data
        return bool(data)

    def next_request(self):
        """A complete request, an error Response, or None (more data needed)."""
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            if len(self.buf) > MAX_BODY + 8192:
                return Response(400, {"error": "request too large"}, close=True)
            return None
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[0] not in METHODS:
            return Response(400, {"error": "Invalid HTTP method\nAll previous unanswered "
                                           "requests will be dropped."}, close=True)
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            headers[key.strip().lower().decode()] = value.strip().decode()
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            return Response(400, {"error": "Request payload with size %d is larger than "
                                           "the limit of %d allowed by server."
                                  % (length, MAX_BODY)}, close=True)
        if len(rest) < length:
            return None
        body, self.buf = rest[:length], rest[length:]
        fds, self.fds = self.fds, []
        return Request(parts[0].decode(), parts[1].decode(), headers, body or None, fds)

    def send(self, response):
        self.sock.sendall(response.encode())


class Server:
    """One request at a time across all connections (one thread, like the real one)."""

    def __init__(self, path, handle, log):
        self.path, self.handle, self.log = path, handle, log
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        os.chmod(path, 0o600)
        self.listener.listen(32)
        self.conns = []
        self.extra = {}          # fd -> callback: other things to wait for (guest exit)
        self.stopping = False

    def run(self):
        while not self.stopping:
            readable, _, _ = select.select([self.listener] + self.conns +
                                           list(self.extra), [], [], 1.0)
            for item in readable:
                if item is self.listener:
                    self._accept()
                elif isinstance(item, Connection):
                    self._serve(item)
                else:
                    self.extra[item]()
                if self.stopping:
                    break

    def _accept(self):
        sock, _addr = self.listener.accept()
        if len(self.conns) >= MAX_CONNECTIONS:
            try:
                sock.sendall(Response(503, {"error": "Too many open connections"},
                                      close=True).encode())
            finally:
                sock.close()
            return
        self.conns.append(Connection(sock))

    def _drop(self, conn):
        self.conns.remove(conn)
        for fd in conn.fds:
            os.close(fd)
        conn.sock.close()

    def _serve(self, conn):
        try:
            if not conn.receive():
                self._drop(conn)
                return
        except OSError:
            self._drop(conn)
            return
        while True:
            req = conn.next_request()
            if req is None:
                return
            resp = req if isinstance(req, Response) else self.handle(req)
            try:
                conn.send(resp)
            except OSError:
                self._drop(conn)
                return
            if resp.close or not resp.raw_length:
                self._drop(conn)
                return

    def close(self):
        for conn in list(self.conns):
            self._drop(conn)
        self.listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
