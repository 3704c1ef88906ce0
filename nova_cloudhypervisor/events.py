"""Lifecycle events of the instances' VMMs: their event-monitor logs and their processes.

A native thread reads what each VMM appended to its ``--event-monitor`` file (a stream of
pretty-printed JSON objects ``{timestamp, source, event, properties}``) and checks that
its process still lives; a VMM that exits without the driver asking shows as stopped at
once. Callbacks run on that thread: they must only queue (``lifecycle.Dispatcher.post``).
"""
import json
import os

from nova_cloudhypervisor import process
from nova_common import lifecycle

POLL = 0.2


def split_records(buf):
    """(complete records, the rest) of a concatenated JSON object stream."""
    decoder = json.JSONDecoder()
    records, pos = [], 0
    while True:
        while pos < len(buf) and buf[pos].isspace():
            pos += 1
        if pos >= len(buf):
            return records, ""
        try:
            record, end = decoder.raw_decode(buf, pos)
        except ValueError:
            return records, buf[pos:]
        records.append(record)
        pos = end


class Watcher:
    def __init__(self, on_event, on_exit):
        """``on_event(uuid, source, event)``; ``on_exit(uuid)`` when the process ends."""
        self._on_event, self._on_exit = on_event, on_exit
        self._watched = {}            # uuid -> [idir, pid, offset, partial text]
        self._lock = lifecycle.native_threading().Lock()
        self._stop = lifecycle.native_threading().Event()
        self._thread = None

    def start(self):
        if self._thread is None:
            self._thread = lifecycle.native_threading().Thread(
                target=self._run, daemon=True, name="nova-ch-events")
            self._thread.start()

    def stop(self):
        self._stop.set()

    def watch(self, uuid, idir, pid, from_end=False):
        offset = 0
        if from_end:
            try:
                offset = os.path.getsize(idir.file(process.EVENTS))
            except FileNotFoundError:
                pass
        with self._lock:
            self._watched[uuid] = [idir, pid, offset, ""]

    def unwatch(self, uuid):
        with self._lock:
            self._watched.pop(uuid, None)

    def _run(self):
        while not self._stop.wait(POLL):
            self.poll()

    def poll(self):
        with self._lock:
            items = list(self._watched.items())
        for uuid, entry in items:
            pid = entry[1]
            self._read(uuid, entry)
            if not process.alive(pid, uuid):
                self._read(uuid, entry)       # what it wrote before it went
                with self._lock:
                    gone = self._watched.get(uuid) is entry
                    if gone:
                        del self._watched[uuid]
                if gone:
                    self._on_exit(uuid)

    def _read(self, uuid, entry):
        try:
            with open(entry[0].file(process.EVENTS), "rb") as f:
                f.seek(entry[2])
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        entry[2] += len(data)
        records, entry[3] = split_records(entry[3] + data.decode("utf-8", "replace"))
        for record in records:
            if isinstance(record, dict):
                self._on_event(uuid, record.get("source"), record.get("event"))
