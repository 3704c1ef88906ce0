import queue

from nova.virt import event as virtevent

from nova_common import lifecycle
from tests.unit.nova_common import base


class TestDispatcher(base.TestCase):
    def test_events_posted_from_another_thread_reach_emit(self):
        got = queue.Queue()
        dispatcher = lifecycle.Dispatcher(got.put)
        dispatcher.start()
        poster = lifecycle.native_threading().Thread(
            target=dispatcher.post, args=("u1", virtevent.EVENT_LIFECYCLE_STOPPED))
        poster.start()
        poster.join()
        event = got.get(timeout=10)
        self.assertEqual(("u1", virtevent.EVENT_LIFECYCLE_STOPPED),
                         (event.get_instance_uuid(), event.get_transition()))

    def test_a_failing_emit_does_not_stop_delivery(self):
        got = queue.Queue()

        def emit(event):
            if event.get_instance_uuid() == "bad":
                raise RuntimeError("boom")
            got.put(event)

        dispatcher = lifecycle.Dispatcher(emit)
        dispatcher.start()
        dispatcher.post("bad", virtevent.EVENT_LIFECYCLE_STOPPED)
        dispatcher.post("good", virtevent.EVENT_LIFECYCLE_RESUMED)
        self.assertEqual("good", got.get(timeout=10).get_instance_uuid())
