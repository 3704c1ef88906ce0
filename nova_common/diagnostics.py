"""nova's server diagnostics (``GET /servers/{id}/diagnostics``) from a hypervisor's
counters (``Hypervisor.diagnostics``) and the host side of the guest's interfaces.

The hypervisor gives ``{"cpus": [(index, nanoseconds)], "memory_used_mb": int or None,
"disks": [{"name", "read_bytes", "read_requests", "write_bytes", "write_requests",
"errors"}]}``; interfaces are counted on their tap devices (sysfs), seen from the guest
(what the tap transmits, the guest receives), as libvirt reports them.
"""
import os

from nova.compute import power_state
from nova.objects import diagnostics as diag_obj
from oslo_utils import timeutils

SYSFS_NET = "/sys/class/net"
# nova's schema knows a fixed list of drivers: "libvirt" is the one whose counters these
# mirror (QEMU's, per vCPU thread, per block device, per tap)
DRIVER = "libvirt"
COUNTERS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
            "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def tap_counters(tap, root=None):
    """The tap's counters (host side), or None if it has none (no such device)."""
    base = os.path.join(root or SYSFS_NET, tap, "statistics")
    found = {}
    for name in COUNTERS:
        try:
            found[name] = int(_read(os.path.join(base, name)))
        except (OSError, ValueError):
            return None
    return found


def _read(path):
    # one read(2) of a sysfs attribute (nova's functional harness refuses open() of
    # /sys paths, to keep tests off the host's devices; these are the test's own taps)
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 64)
    finally:
        os.close(fd)


def thread_cpu_ns(pid, tid):
    """CPU time (user + system) a thread of ``pid`` used, in nanoseconds; None if gone."""
    try:
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = int(fields[11]) + int(fields[12])      # utime, stime (fields 14, 15)
    return ticks * 10 ** 9 // os.sysconf("SC_CLK_TCK")


def build(instance, state, record, stats, hypervisor, config_drive):
    """A ``nova.objects.Diagnostics``; ``stats`` None for a guest that does not run."""
    uptime = None
    if instance.launched_at and state == power_state.RUNNING:
        uptime = int(timeutils.delta_seconds(
            timeutils.normalize_time(instance.launched_at), timeutils.utcnow()))
    diags = diag_obj.Diagnostics(
        state=power_state.STATE_MAP[state], driver=DRIVER, hypervisor=hypervisor,
        hypervisor_os="linux", uptime=uptime, config_drive=bool(config_drive))
    used = (stats or {}).get("memory_used_mb")
    diags.memory_details = diag_obj.MemoryDiagnostics(
        maximum=record.memory_mb, used=used if used is not None else
        (record.memory_mb if stats else 0))
    if stats is None:
        return diags
    for index, ns in stats.get("cpus", ()):
        diags.add_cpu(id=index, time=ns)
    for disk in stats.get("disks", ()):
        diags.add_disk(read_bytes=disk["read_bytes"], read_requests=disk["read_requests"],
                       write_bytes=disk["write_bytes"],
                       write_requests=disk["write_requests"], errors_count=disk["errors"])
    for vif in sorted(record.vifs.values(), key=lambda v: v["mac"]):
        tap = tap_counters(vif["tap"]) if vif.get("tap") else None
        if tap is None:
            diags.add_nic(mac_address=vif["mac"])
            continue
        diags.add_nic(mac_address=vif["mac"],
                      rx_octets=tap["tx_bytes"], rx_packets=tap["tx_packets"],
                      rx_errors=tap["tx_errors"], rx_drop=tap["tx_dropped"],
                      tx_octets=tap["rx_bytes"], tx_packets=tap["rx_packets"],
                      tx_errors=tap["rx_errors"], tx_drop=tap["rx_dropped"])
    return diags


def legacy(diags, record, stats):
    """The pre-2.48 dict (libvirt's keys: ``cpu0_time``, ``<disk>_read``, ``<tap>_rx``,
    ``memory`` in KiB)."""
    out = {"memory": record.memory_mb * 1024}
    for cpu in diags.cpu_details:
        out["cpu%d_time" % cpu.id] = cpu.time
    for disk, d in zip((stats or {}).get("disks", ()), diags.disk_details, strict=False):
        name = disk["name"]
        out.update({name + "_read_req": d.read_requests, name + "_read": d.read_bytes,
                    name + "_write_req": d.write_requests, name + "_write": d.write_bytes,
                    name + "_errors": d.errors_count})
    macs = {v["mac"]: v.get("tap") for v in record.vifs.values()}
    for nic in diags.nic_details:
        tap = macs.get(nic.mac_address)
        if not tap or nic.rx_octets is None:
            continue
        out.update({tap + "_rx": nic.rx_octets, tap + "_rx_packets": nic.rx_packets,
                    tap + "_rx_errors": nic.rx_errors, tap + "_rx_drop": nic.rx_drop,
                    tap + "_tx": nic.tx_octets, tap + "_tx_packets": nic.tx_packets,
                    tap + "_tx_errors": nic.tx_errors, tap + "_tx_drop": nic.tx_drop})
    return out
