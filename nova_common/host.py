"""Host resources and the compute node's provider inventory.

Reads only /proc and statvfs (nova's tests forbid uname and /sys), so it is the same code
in production and under nova's functional framework.
"""
import os
import shutil

from nova import exception
import nova.conf
from nova.objects import fields
import os_resource_classes as orc

CONF = nova.conf.CONF
GiB = 1024 ** 3


def memory_mb(meminfo="/proc/meminfo"):
    """(total, available) MiB of host memory."""
    values = {}
    with open(meminfo) as f:
        for line in f:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0])    # kB
    return values["MemTotal"] // 1024, values.get("MemAvailable", values["MemFree"]) // 1024


def uptime(proc="/proc"):
    """The host's uptime and load, worded like uptime(1): ``up 3 days, 4:05, load
    average: 0.10, 0.20, 0.30``."""
    with open(os.path.join(proc, "uptime")) as f:
        seconds = int(float(f.read().split()[0]))
    with open(os.path.join(proc, "loadavg")) as f:
        loads = f.read().split()[:3]
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    up = "%d day%s, " % (days, "" if days == 1 else "s") if days else ""
    return "up %s%d:%02d, load average: %s" % (up, hours, minutes, ", ".join(loads))


def disk_gb(path):
    """(total, free) GiB of the filesystem holding ``path`` (created if missing)."""
    os.makedirs(path, exist_ok=True)
    usage = shutil.disk_usage(path)
    return usage.total // GiB, usage.free // GiB


def available_resource(nodename, hypervisor_type, hypervisor_version, arch,
                       vcpus_used=0, memory_mb_used=None, local_gb_used=None):
    """The dict nova's resource tracker expects from ``get_available_resource``."""
    mem_total, mem_free = memory_mb()
    disk_total, disk_free = disk_gb(CONF.instances_path)
    return {
        "vcpus": os.cpu_count() or 1,
        "memory_mb": mem_total,
        "local_gb": disk_total,
        "vcpus_used": vcpus_used,
        "memory_mb_used": mem_total - mem_free if memory_mb_used is None else memory_mb_used,
        "local_gb_used": disk_total - disk_free if local_gb_used is None else local_gb_used,
        "hypervisor_type": hypervisor_type,
        "hypervisor_version": hypervisor_version,
        "hypervisor_hostname": nodename,
        "cpu_info": "{}",
        "disk_available_least": disk_free,
        "supported_instances": [(arch, hypervisor_type, fields.VMMode.HVM)],
        "numa_topology": None,
    }


def update_provider_tree(driver, provider_tree, nodename, resources):
    """Inventory of VCPU, MEMORY_MB and DISK_GB with configured ratios and reserves."""
    inventory = provider_tree.data(nodename).inventory
    ratios = driver._get_allocation_ratios(inventory)
    totals = {orc.VCPU: resources["vcpus"], orc.MEMORY_MB: resources["memory_mb"],
              orc.DISK_GB: resources["local_gb"]}
    reserved = {orc.VCPU: CONF.reserved_host_cpus,
                orc.MEMORY_MB: CONF.reserved_host_memory_mb,
                orc.DISK_GB: driver._get_reserved_host_disk_gb_from_config()}
    inv = {}
    for rc, total in totals.items():
        if total <= 0:
            raise exception.InvalidInput(reason="no %s on this host" % rc)
        inv[rc] = {"total": total, "min_unit": 1, "max_unit": total, "step_size": 1,
                   "allocation_ratio": ratios[rc], "reserved": reserved[rc]}
    provider_tree.update_inventory(nodename, inv)
