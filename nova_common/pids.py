"""Hypervisor processes seen through /proc: pidfiles and liveness.

A zombie counts as gone (it may wait for its reaper), and a pid is only taken as the
instance's process while its command line still names the instance (pids are reused).
"""


def read_pid(path):
    """The pid in the pidfile ``path``; None if it is missing or unreadable."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def live_cmdline(pid):
    """The raw command line (NUL-separated) of process ``pid`` if it is alive and not a
    zombie, else None."""
    if not pid:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return None if state in ("Z", "X") else cmdline
