"""QMP connections: one native thread running an asyncio loop owns one persistent
``qemu.qmp.QMPClient`` per instance and reads its events.

Callers (any thread or greenthread) run commands with ``execute()``, which waits for the
loop's result in a native thread under eventlet. Events and lost connections go to
``on_event(uuid, name, data)`` from the loop thread (which must not block or log).
``execute_and_wait()`` runs a command and waits for the QMP event it causes (e.g.
``DEVICE_DELETED`` after ``device_del``), registered before the command is sent so it
cannot be missed.
"""
import asyncio
import os
import selectors

from nova import utils
from qemu.qmp import QMPClient
from qemu.qmp import QMPError

from nova_common import lifecycle


class MonitorError(Exception):
    pass


def _native_poll_selector(eventlet):
    """A poll(2) selector for a native thread while eventlet has patched ``select``.

    Eventlet replaces ``select.select`` and removes ``poll``/``epoll`` from the module in
    place, so the standard selectors cannot be built even from eventlet's "original"
    ``selectors``; ``poll`` from the original ``select`` module is used directly.
    """
    real = eventlet.patcher.original("select")

    class NativePollSelector(selectors._PollLikeSelector):
        _selector_cls = real.poll
        _EVENT_READ = real.POLLIN
        _EVENT_WRITE = real.POLLOUT

    return NativePollSelector()


class Monitor:
    def __init__(self, on_event, timeout=30):
        self._on_event = on_event
        self._timeout = timeout
        self._clients = {}
        self._waiters = {}          # uuid -> [(event name, match, future)]
        self._tasks = {}            # client -> its event reader and connection watcher
        self._calls = set()         # other tasks on the loop (held until they end)
        eventlet = utils.get_eventlet()
        if eventlet:
            # the loop runs in a native thread: it needs a selector on the real poll(2)
            self._loop = asyncio.SelectorEventLoop(_native_poll_selector(eventlet))
        else:
            self._loop = asyncio.new_event_loop()
        self._thread = lifecycle.native_threading().Thread(
            target=self._loop.run_forever, name="nova-qmp-monitor", daemon=True)
        self._thread.start()

    # -- plumbing ---------------------------------------------------------------------------
    def _wait(self, coro, timeout=None):
        timeout = timeout or self._timeout
        eventlet = utils.get_eventlet()
        if not eventlet:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
            try:
                return future.result(timeout)
            except TimeoutError:
                future.cancel()
                raise MonitorError("QMP call timed out after %ss" % timeout)
        # eventlet: no thread-shared futures (their locks are green); the loop reports
        # completion through a pipe this greenthread waits on cooperatively
        box = {}
        read_fd, write_fd = os.pipe()

        async def runner():
            try:
                box["value"] = await asyncio.wait_for(coro, timeout)
            except BaseException as e:  # noqa: B036 - handed to the caller
                box["error"] = e
            finally:
                os.write(write_fd, b".")

        try:
            self._loop.call_soon_threadsafe(self._spawn, runner())
            eventlet.hubs.trampoline(read_fd, read=True, timeout=timeout + 5)
        except eventlet.Timeout:
            raise MonitorError("QMP call timed out after %ss" % timeout)
        finally:
            os.close(read_fd)
            os.close(write_fd)
        if "error" in box:
            if isinstance(box["error"], asyncio.TimeoutError):
                raise MonitorError("QMP call timed out after %ss" % timeout)
            raise box["error"]
        return box["value"]

    def _spawn(self, coro):
        """A task on the loop (from the loop thread), referenced until it ends: the loop
        itself holds tasks weakly."""
        task = self._loop.create_task(coro)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return task

    def close(self):
        """Drop every connection (the QEMU processes keep running) and end the loop."""
        async def close_all():
            clients, self._clients = list(self._clients.values()), {}
            for client in clients:
                await self._close(client)
            # the connections' tasks; calls (this one's runner among them) end with
            # their connections
            tasks = [t for ts in self._tasks.values() for t in ts if not t.done()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            try:
                self._wait(close_all())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(self._timeout)

    # -- connections ------------------------------------------------------------------------
    async def _connect(self, uuid, path):
        client = QMPClient(uuid)
        await asyncio.wait_for(client.connect(path), self._timeout)
        self._clients[uuid] = client
        self._tasks[client] = [self._loop.create_task(coro) for coro in (
            self._read_events(uuid, client), self._watch(uuid, client))]

    async def _read_events(self, uuid, client):
        try:
            async for event in client.events:
                name, data = event["event"], event.get("data") or {}
                for waiter in list(self._waiters.get(uuid, ())):
                    wanted, match, future = waiter
                    if wanted == name and not future.done() and match(data):
                        future.set_result(data)
                self._on_event(uuid, name, data)
        except (QMPError, EOFError, asyncio.CancelledError):
            pass

    async def _watch(self, uuid, client):
        """Report a connection that drops (QEMU exited or was killed)."""
        while client.runstate.name == "RUNNING":
            await client.runstate_changed()
        if self._clients.get(uuid) is client:
            del self._clients[uuid]
            # no event can come any more: whoever waits for one learns it now
            for _, _, future in list(self._waiters.get(uuid, ())):
                if not future.done():
                    future.set_exception(EOFError("the QMP connection was lost"))
            await self._close(client)
            self._on_event(uuid, "DISCONNECTED", {})

    def connect(self, uuid, path):
        """Open the persistent connection to an instance's QMP socket."""
        if uuid in self._clients:
            return
        try:
            self._wait(self._connect(uuid, path))
        except (TimeoutError, QMPError, OSError) as e:
            raise MonitorError("cannot connect to %s: %s" % (path, e)) from e

    def connected(self, uuid):
        return uuid in self._clients

    async def _close(self, client):
        """Disconnect ``client`` and end its tasks: none outlives its connection."""
        try:
            await client.disconnect()
        except (QMPError, EOFError, OSError):
            pass    # after 'quit' the peer is gone: expected
        current = asyncio.current_task()       # the watcher closes its own client
        tasks = [t for t in self._tasks.pop(client, ())
                 if t is not current and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def disconnect(self, uuid):
        client = self._clients.pop(uuid, None)
        if client is not None:
            self._wait(self._close(client))

    # -- commands ---------------------------------------------------------------------------
    def execute(self, uuid, command, arguments=None, timeout=None):
        client = self._clients.get(uuid)
        if client is None:
            raise MonitorError("no QMP connection to instance %s" % uuid)
        try:
            return self._wait(client.execute(command, arguments), timeout)
        except (QMPError, EOFError) as e:
            raise MonitorError("%s on %s failed: %s" % (command, uuid, e)) from e

    def execute_and_wait(self, uuid, command, arguments, event, match, timeout,
                         reply_match=None):
        """Run ``command``; then wait up to ``timeout`` seconds for ``event`` whose data
        satisfies ``match(data)``. Returns the event's data, or None if it did not come.
        With ``reply_match``, a reply of ``command`` satisfying it is returned at once
        instead (the state waited for was reached before; the event is listened for
        from before the command is sent, so nothing falls between the two)."""
        client = self._clients.get(uuid)
        if client is None:
            raise MonitorError("no QMP connection to instance %s" % uuid)

        async def run():
            future = self._loop.create_future()
            waiter = (event, match, future)
            self._waiters.setdefault(uuid, []).append(waiter)
            try:
                reply = await client.execute(command, arguments)
                if reply_match is not None and reply_match(reply):
                    return reply
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                return None
            finally:
                self._waiters[uuid].remove(waiter)

        try:
            return self._wait(run(), timeout + self._timeout)
        except (QMPError, EOFError) as e:
            raise MonitorError("%s on %s failed: %s" % (command, uuid, e)) from e

    def execute_soon(self, uuid, command, arguments=None):
        """From the loop thread (an event callback): run a command without waiting; a
        failure is ignored (used to release what a late event freed)."""
        client = self._clients.get(uuid)
        if client is None:
            return

        async def run():
            try:
                await client.execute(command, arguments)
            except (QMPError, EOFError, OSError):
                pass

        self._spawn(run())

    def execute_with_fd_and_wait(self, uuid, fd, fdname, command, arguments, event,
                                 match, timeout):
        """Pass ``fd`` to QEMU as ``fdname`` (SCM_RIGHTS + ``getfd``), run a command that
        uses it (e.g. ``migrate`` to ``fd:<fdname>``) and wait up to ``timeout`` for
        ``event`` matching ``match(data)``; its data, or None if it did not come."""
        client = self._clients.get(uuid)
        if client is None:
            raise MonitorError("no QMP connection to instance %s" % uuid)

        async def run():
            future = self._loop.create_future()
            waiter = (event, match, future)
            self._waiters.setdefault(uuid, []).append(waiter)
            try:
                client.send_fd_scm(fd)
                await client.execute("getfd", {"fdname": fdname})
                await client.execute(command, arguments)
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                return None
            finally:
                self._waiters[uuid].remove(waiter)

        try:
            return self._wait(run(), timeout + self._timeout)
        except (QMPError, EOFError, OSError) as e:
            raise MonitorError("%s on %s failed: %s" % (command, uuid, e)) from e

    def execute_with_fd(self, uuid, fd, fdname, command, arguments, timeout=None):
        """Pass ``fd`` to QEMU as ``fdname`` (SCM_RIGHTS + ``getfd``), then run a command
        that uses it (e.g. ``migrate`` to ``fd:<fdname>``)."""
        client = self._clients.get(uuid)
        if client is None:
            raise MonitorError("no QMP connection to instance %s" % uuid)

        async def run():
            client.send_fd_scm(fd)
            await client.execute("getfd", {"fdname": fdname})
            return await client.execute(command, arguments)

        try:
            return self._wait(run(), timeout)
        except (QMPError, EOFError, OSError) as e:
            raise MonitorError("%s on %s failed: %s" % (command, uuid, e)) from e
