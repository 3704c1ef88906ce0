"""The executor boundary for unit tests of code above the ZFS client."""
from zfs_common import allowlist
from zfs_common import executor

#: commands the privsep daemon runs on a local ZFS host
PRIVILEGED_COMMANDS = ("zfs", "exportfs", "udevadm")


class RecordingExecutor(executor.Executor):
    """Records every argv and answers from a script of (exit code, stdout, stderr).

    ``respond`` (argv -> result or None) is asked first; ``paths`` are the paths that
    exist on the fake host; ``files`` holds what was written. Every zfs, exportfs and
    udevadm command must pass the privileged side's allow-list, as it must on a local
    host, so every unit test above the client also checks the drivers' real command
    lines against it.
    """

    respond = None

    def __init__(self, *results, paths=()):
        self.calls = []
        self.results = list(results)
        self.paths = set(paths)
        self.path_checks = 0
        self.files = {}

    def argv(self, argv):
        return list(argv)

    def path_exists(self, path):
        self.path_checks += 1
        return path in self.paths

    def write_file(self, path, content):
        self.files[path] = content

    def remove_file(self, path):
        self.files.pop(path, None)

    def chmod(self, path, mode):
        self.files[path + "#mode"] = oct(mode)

    def _run(self, argv, process_input, timeout):
        if argv[0] in PRIVILEGED_COMMANDS:
            allowlist.check(argv)
        self.calls.append(argv)
        if self.respond is not None:
            result = self.respond(argv)
            if result is not None:
                return result
        return self.results.pop(0) if self.results else (0, "", "")
