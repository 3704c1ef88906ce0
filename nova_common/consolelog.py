"""Bounded console logs, as virtlogd keeps them for libvirt.

The hypervisor writes the guest's serial output into a FIFO in the instance directory
(``console.fifo``); the guest's supervisor (``nova_common.supervisor``, in the guest's own
unit and uid, so a nova-compute restart never interrupts it) reads it in a thread and
appends to ``console.log``. When that file reaches ``max_bytes`` it becomes
``console.log.0`` (replacing the older one) and a new ``console.log`` starts, so a guest
printing without end never uses more than twice ``max_bytes`` of ``instances_path``.
``tail()`` returns the newest output across both. Only the standard library is used.
"""
import os
import select

FIFO = "console.fifo"
LOG = "console.log"
ROTATED = LOG + ".0"
# what get_console_output returns: the newest 100 KiB, as nova's libvirt and VMware
# drivers (their MAX_CONSOLE_BYTES; importing nova's libvirt driver for it is too heavy)
MAX_CONSOLE_BYTES = 100 * 1024
POLL_SECONDS = 1.0
CHUNK = 65536


def tail(directory, max_bytes):
    """The newest ``max_bytes`` of the console output (the rotated file, then the
    current one)."""
    out = b""
    for name in (LOG, ROTATED):
        if len(out) >= max_bytes:
            break
        try:
            with open(os.path.join(directory, name), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - (max_bytes - len(out))))
                out = f.read() + out
        except FileNotFoundError:
            continue
    return out[-max_bytes:] if max_bytes else b""


class Writer:
    """Appends to the log file, rotating it at ``max_bytes``."""

    def __init__(self, path, max_bytes):
        self.path, self.max_bytes = path, max_bytes
        self.fd = None
        self._open()

    def _open(self):
        # group bits for the directory's default ACL (nova's user reads it)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o660)
        self.size = os.fstat(self.fd).st_size

    def write(self, data):
        while data:
            if self.size >= self.max_bytes:
                os.close(self.fd)
                os.replace(self.path, self.path + ".0")
                self._open()
            room = self.max_bytes - self.size
            written = os.write(self.fd, data[:room])
            self.size += written
            data = data[written:]

    def close(self):
        os.close(self.fd)


def _same_file(fd, path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def run(fd, fifo, log, max_bytes):
    """Copy the FIFO to the log until the writer closes it or the FIFO is replaced."""
    writer = Writer(log, max_bytes)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    try:
        while True:
            events = poller.poll(POLL_SECONDS * 1000)
            if not events:
                # no writer yet (or a quiet one): still ours?
                if not _same_file(fd, fifo):
                    return
                continue
            hangup = False
            for _fd, event in events:
                hangup = hangup or bool(event & select.POLLHUP)
            while True:
                try:
                    data = os.read(fd, CHUNK)
                except BlockingIOError:
                    break
                if not data:
                    break
                try:
                    writer.write(data)
                except FileNotFoundError:
                    return           # the instance directory is gone
                except OSError:
                    pass             # e.g. a full disk: drop it, never block the guest
            if hangup:
                return
    finally:
        writer.close()
        os.close(fd)
