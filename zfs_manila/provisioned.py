"""Provisioned capacity of each dataset root, without listing every share per stats update.

Manila asks for stats every minute; summing every share's ``refquota`` each time costs a
``zfs get -r`` that grows with the share count. The sum is counted once, then kept up to
date by the driver's own creates, deletes and resizes, and counted again every
``recount_interval`` seconds (or at the next stats update after an operation whose effect
the driver does not know exactly, e.g. manage or replication), which also picks up
changes made outside manila.
"""
import threading
import time


class ProvisionedBytes:
    def __init__(self, count, recount_interval, clock=time.monotonic):
        """:param count: ``count(root)`` returns the bytes provisioned under ``root``."""
        self._count = count
        self._interval = recount_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._known = {}        # root -> [bytes, counted at]
        self._changes = {}      # root -> changes seen so far

    def total(self, root):
        with self._lock:
            known = self._known.get(root)
            if known is not None and self._clock() - known[1] < self._interval:
                return known[0]
            changes = self._changes.get(root, 0)
        counted_at = self._clock()
        value = self._count(root)
        with self._lock:
            if self._changes.get(root, 0) == changes:
                self._known[root] = [value, counted_at]
            else:
                # changed while counting: ``value`` may or may not include it
                self._known.pop(root, None)
        return value

    def add(self, root, delta):
        """The driver changed the refquotas under ``root`` by ``delta`` bytes."""
        with self._lock:
            self._changes[root] = self._changes.get(root, 0) + 1
            if root in self._known:
                self._known[root][0] += delta

    def forget(self, root=None):
        """Count ``root`` (or every root) again at the next stats update."""
        with self._lock:
            for name in [root] if root else set(self._known) | set(self._changes):
                self._changes[name] = self._changes.get(name, 0) + 1
                self._known.pop(name, None)
