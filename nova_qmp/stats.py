"""A running QEMU's counters for nova's diagnostics (``nova_common.diagnostics``): vCPU
time from each vCPU thread (QMP ``query-cpus-fast`` gives the thread ids; /proc their
time), memory from the balloon if the guest has one (``query-balloon``), and the block
devices' counters (``query-blockstats``)."""
from nova import exception

from nova_common import diagnostics


def _cpus(qmp, pid):
    cpus = []
    for cpu in qmp("query-cpus-fast"):
        ns = diagnostics.thread_cpu_ns(pid, cpu["thread-id"]) if pid else None
        cpus.append((cpu["cpu-index"], ns))
    return sorted(cpus)


def _memory_mb(qmp):
    try:
        return qmp("query-balloon")["actual"] // (1024 * 1024)
    except exception.InternalError:       # no balloon device: all of it is the guest's
        return None


def _disks(qmp):
    disks = []
    for dev in qmp("query-blockstats"):
        # -drive disks have a device name (root, config); -blockdev volumes the path
        # of their device (/machine/peripheral/vol-<id>/virtio-backend); block nodes
        # no device uses (a snapshot's target) neither
        parts = (dev.get("qdev") or "").split("/")
        name = dev.get("device") or (parts[3] if parts[1:3] == ["machine", "peripheral"]
                                     and len(parts) > 3 else "")
        if not name:
            continue
        s = dev["stats"]
        disks.append({"name": name, "read_bytes": s["rd_bytes"],
                      "read_requests": s["rd_operations"], "write_bytes": s["wr_bytes"],
                      "write_requests": s["wr_operations"],
                      "errors": s.get("failed_rd_operations", 0) +
                      s.get("failed_wr_operations", 0)})
    return disks


def collect(qmp, pid):
    """``qmp(command, **arguments)`` runs a QMP command on the guest."""
    return {"cpus": _cpus(qmp, pid), "memory_used_mb": _memory_mb(qmp),
            "disks": _disks(qmp)}
