"""Locks shared by every cinder-volume process that drives one ZFS host.

In an active-active cluster several cinder-volume services (on several hosts) drive the
same remote ZFS host, so a lock that guards state on that host must hold across
processes and hosts: cinder's coordination lock (tooz; cluster-wide with a distributed
``[coordination]backend_url`` such as etcd, a file lock with the default ``file://``).
A process that never started cinder's coordinator (tools, tests of the driver alone)
takes a file lock under ``[oslo_concurrency]lock_path``, or without one an in-process
lock: neither excludes another host, so clusters need coordination (cinder requires it
for active-active anyway).

Lock names carry the ZFS host (the executor's ``user@host``), never the cinder host:
two backends or two services on one ZFS host meet on the same name.
"""
from cinder import coordination
from oslo_concurrency import lockutils
from oslo_config import cfg

PREFIX = "zfs-cinder-"


def name(what, executor, scope=None):
    """``zfs-cinder-<what>-<executor>[-<scope>]``, e.g. the LIO lock of one ZFS host."""
    parts = [PREFIX + what, repr(executor)]
    if scope:
        parts.append(scope)
    return "-".join(parts)


def lock(lock_name):
    """A context manager holding ``lock_name`` across cinder-volume processes."""
    if coordination.COORDINATOR.started:
        return coordination.COORDINATOR.get_lock(lock_name)
    if cfg.CONF.oslo_concurrency.lock_path:
        return lockutils.lock(lock_name, external=True)
    return lockutils.lock(lock_name)


def host_lock(what, executor, scope=None):
    return lock(name(what, executor, scope))
