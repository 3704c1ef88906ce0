"""Lifecycle events from a hypervisor's native event thread to nova, in both of nova's
concurrency modes.

The hypervisor side (a native thread) calls ``post()``; a dispatcher delivers each event to
the driver's ``emit_event`` in nova's context: a native thread in threading mode, a
greenthread that waits for the native queue through eventlet's thread pool otherwise.
"""
import queue
import threading
import time

from nova import utils
from nova.virt import event as virtevent
from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def native_threading():
    eventlet = utils.get_eventlet()
    return eventlet.patcher.original("threading") if eventlet else threading


def native_queue():
    eventlet = utils.get_eventlet()
    return eventlet.patcher.original("queue").Queue() if eventlet else queue.Queue()


class Dispatcher:
    def __init__(self, emit):
        self._emit = emit
        self._queue = native_queue()
        self._started = False

    def post(self, uuid, transition):
        """Queue a lifecycle event (safe from any native thread; never logs)."""
        self._queue.put((uuid, transition, time.time()))

    def start(self):
        if self._started:
            return
        self._started = True
        eventlet = utils.get_eventlet()
        if eventlet:
            eventlet.spawn_n(self._run, lambda: eventlet.tpool.execute(self._queue.get))
        else:
            threading.Thread(target=self._run, args=(self._queue.get,), daemon=True,
                             name="nova-common-events").start()

    def _run(self, get):
        while True:
            uuid, transition, _when = get()
            try:
                self._emit(virtevent.LifecycleEvent(uuid, transition))
            except Exception:
                LOG.exception("delivering lifecycle event %s for %s failed", transition,
                              uuid)
