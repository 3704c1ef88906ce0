"""Lifecycle events from a hypervisor's native event thread to nova, in both of nova's
concurrency modes.

The hypervisor side (a native thread) calls ``post()``; a dispatcher delivers each event to
the driver's ``emit_event`` in nova's context: a native thread in threading mode, a
greenthread that waits for the native queue through eventlet's thread pool otherwise.
"""
import os
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
        self._wakeup = None        # eventlet mode: (read fd, write fd) of a pipe
        self._started = False

    def post(self, uuid, transition):
        """Queue a lifecycle event (safe from any native thread; never logs)."""
        self._queue.put((uuid, transition, time.time()))
        if self._wakeup is not None:
            os.write(self._wakeup[1], b".")

    def start(self):
        if self._started:
            return
        self._started = True
        eventlet = utils.get_eventlet()
        if eventlet:
            # a greenthread sleeping on a pipe the native side writes to: no thread of
            # eventlet's pool is held (a pool thread blocked for ever stops the process
            # from exiting)
            self._wakeup = os.pipe()
            os.set_blocking(self._wakeup[0], False)
            eventlet.spawn_n(self._run_green, eventlet)
        else:
            threading.Thread(target=self._run, daemon=True,
                             name="nova-common-events").start()

    def _run(self):
        while True:
            self._deliver(*self._queue.get())

    def _run_green(self, eventlet):
        while True:
            eventlet.hubs.trampoline(self._wakeup[0], read=True)
            try:
                os.read(self._wakeup[0], 4096)
            except BlockingIOError:
                pass
            while not self._queue.empty():
                self._deliver(*self._queue.get())

    def _deliver(self, uuid, transition, _when):
        try:
            self._emit(virtevent.LifecycleEvent(uuid, transition))
        except Exception:
            LOG.exception("delivering lifecycle event %s for %s failed", transition, uuid)
