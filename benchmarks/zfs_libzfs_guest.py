"""Runs inside the OpenZFS test guest (uploaded by zfs_libzfs.py): the drivers' ZFS read
paths through the ``zfs`` CLI and through py-libzfs, timed side by side.

    python3 zfs_libzfs_guest.py ROOT REPEAT OP MODE -> one JSON object on stdout
    python3 zfs_libzfs_guest.py --serve         -> the libzfs helper process (JSON lines)

The CLI side forks ``zfs`` with the arguments zfs_common.client uses. The libzfs side is
timed twice: in the measuring process itself (the best case, which the drivers cannot use:
libzfs is not thread-safe and segfaults without /dev/zfs) and through a separate helper
process answering one JSON request per line on a pipe (how a driver would have to use it).
"""
import json
import statistics
import subprocess
import sys
import time

PROPS = ("used", "available", "referenced", "quota")


def cli(*args):
    return subprocess.run(("zfs",) + args, check=True, capture_output=True,
                          text=True).stdout


class Lib:
    def __init__(self):
        import libzfs  # noqa: PLC0415 - only where /dev/zfs exists
        self.zfs = libzfs.ZFS()

    def exists(self, name):
        try:
            self.zfs.get_object(name)
            return True
        except Exception:
            return False

    def get(self, name):
        ds = self.zfs.get_dataset(name)
        return {p: ds.properties[p].rawvalue for p in PROPS}

    def get_tree(self, root):
        out = {}
        top = self.zfs.get_dataset(root)
        for ds in [top] + list(top.children_recursive):
            out[ds.name] = {p: ds.properties[p].rawvalue for p in PROPS}
        return out

    def list(self, root):
        top = self.zfs.get_dataset(root)
        return [top.name] + [ds.name for ds in top.children_recursive]


def cli_ops(root, one):
    return {
        "exists": lambda: cli("list", "-H", "-o", "name", "-t", "all", one),
        "get (1 dataset, 4 props)": lambda: cli("get", "-H", "-p", "-o",
                                                 "name,property,value", ",".join(PROPS), one),
        "get_tree (all, 4 props)": lambda: cli("get", "-H", "-p", "-r", "-o",
                                                "name,property,value", ",".join(PROPS), root),
        "list (all names)": lambda: cli("list", "-H", "-o", "name", "-t", "filesystem",
                                        "-r", root),
    }


def lib_ops(lib, root, one):
    return {
        "exists": lambda: lib.exists(one),
        "get (1 dataset, 4 props)": lambda: lib.get(one),
        "get_tree (all, 4 props)": lambda: lib.get_tree(root),
        "list (all names)": lambda: lib.list(root),
    }


class Helper:
    """A libzfs helper process: one request line in, one answer line out."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve"], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def call(self, op, arg):
        self.proc.stdin.write(json.dumps([op, arg]) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def helper_ops(helper, root, one):
    return {
        "exists": lambda: helper.call("exists", one),
        "get (1 dataset, 4 props)": lambda: helper.call("get", one),
        "get_tree (all, 4 props)": lambda: helper.call("get_tree", root),
        "list (all names)": lambda: helper.call("list", root),
    }


def serve():
    lib = Lib()
    for line in sys.stdin:
        op, arg = json.loads(line)
        print(json.dumps(getattr(lib, op)(arg)), flush=True)


def median_ms(func, repeat):
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main():
    """ROOT REPEAT OP MODE: the median ms of one operation by one mode, as JSON."""
    root, repeat, op, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    names = cli("list", "-H", "-o", "name", "-t", "filesystem", "-r", root).split()
    one = names[len(names) // 2]
    result = {"datasets": len(names), "op": op, "mode": mode}
    if mode == "cli":
        result["ms"] = median_ms(cli_ops(root, one)[op], repeat)
    elif mode == "libzfs_in_process":
        t0 = time.perf_counter()
        lib = Lib()
        result["init_ms"] = (time.perf_counter() - t0) * 1000
        if op == "list (all names)":      # same answers as the CLI before timing
            assert sorted(lib.list(root)) == sorted(names), "libzfs lists other datasets"
        result["ms"] = median_ms(lib_ops(lib, root, one)[op], repeat)
    else:
        helper = Helper()
        try:
            helper.call("exists", one)      # started and warm
            result["ms"] = median_ms(helper_ops(helper, root, one)[op], repeat)
        finally:
            helper.close()
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main()
