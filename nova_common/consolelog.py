"""Bounded console logs: a small logger process per guest, as virtlogd is for libvirt.

The hypervisor writes the guest's serial output into a FIFO in the instance directory
(``console.fifo``); a logger process reads it and appends to ``console.log``. When that
file reaches ``max_bytes`` it becomes ``console.log.0`` (replacing the older one) and a new
``console.log`` starts, so a guest printing without end never uses more than twice
``max_bytes`` of ``instances_path``. ``tail()`` returns the newest output across both.

The logger is detached (its own session, like a daemonized QEMU): a nova-compute restart
leaves it running. It exits when the hypervisor closes the FIFO (the guest stopped), or
when its FIFO is no longer in the directory (a newer start replaced it, or the instance
directory was removed). ``start()`` returns once the logger holds the FIFO open for
reading, so the hypervisor's open for writing does not block.

Only the standard library is imported: the logger runs this file as a script
(``python -I .../consolelog.py FIFO LOG MAX_BYTES``) and stays small.
"""
import os
import select
import subprocess
import sys

FIFO = "console.fifo"
LOG = "console.log"
ROTATED = LOG + ".0"
# what get_console_output returns: the newest 100 KiB, as nova's libvirt and VMware
# drivers (their MAX_CONSOLE_BYTES; importing nova's libvirt driver for it is too heavy)
MAX_CONSOLE_BYTES = 100 * 1024
POLL_SECONDS = 1.0
CHUNK = 65536


def start(directory, max_bytes):
    """A fresh FIFO in ``directory`` with a detached logger reading it; returns the
    FIFO's path (for the hypervisor's serial log)."""
    fifo = os.path.join(directory, FIFO)
    try:
        os.unlink(fifo)          # an older logger still draining keeps its own FIFO
    except FileNotFoundError:
        pass
    os.mkfifo(fifo, 0o600)
    # the first process opens the FIFO and forks the logger, so a zero exit means a
    # reader is in place
    subprocess.run([sys.executable, "-I", os.path.abspath(__file__), fifo,
                    os.path.join(directory, LOG), str(int(max_bytes))],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, close_fds=True, timeout=60)
    return fifo


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
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
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


def main(argv):
    fifo, log, max_bytes = argv[0], argv[1], int(argv[2])
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    if os.fork():
        os._exit(0)              # the caller sees a reader in place
    os.setsid()
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(null, std)
    try:
        run(fd, fifo, log, max_bytes)
    except FileNotFoundError:
        pass                     # the instance directory is gone
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
