"""Local Knative Brokers: an HTTP ingress plus fan-out of each event to every matching Trigger.

Semantics follow the MT channel-based broker. The ingress stamps ``knativearrivaltime`` and
``knativebrokerttl`` (255 when absent, else one less) and refuses (400) an event whose TTL is
spent. The TTL is hidden from subscribers and re-attached to their replies, which are stored
like any event at the ingress, so a reply loop ends in a refusal. Failed deliveries go to the
dead-letter sink or, without one, into ``dead_letters``; a reply the broker refuses sends the
ORIGINAL event there (Knative's dispatcher does the same), naming the broker as the destination.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cloudevents.http import CloudEvent
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

from amtd_stack.eventing.connections import ConnectionPool
from amtd_stack.eventing.deliveries import DeliverySpec
from amtd_stack.eventing.delivering import (
    AttemptLog,
    Delivery,
    DeliveryResult,
    dead_letter_event,
    deliver,
    make_sender,
)
from amtd_stack.eventing.filtering import Filter, is_match
from amtd_stack.eventing.messages import EventError, copy_event, event_attributes, parse_event
from amtd_stack.serving import QuietHandler, RunningServer

LOG = logging.getLogger(__name__)
TTL = "knativebrokerttl"
DEFAULT_TTL = 255
# Deliveries in flight at once, over all Triggers. Knative's dispatchers send each event
# concurrently rather than through a small fixed pool; a pool of 8 made the stand-in, not the
# functions, the limit of an alert storm (P6: ~45 alerts/s at 8, ~55-60 at 32).
MAX_WORKERS = 32


@dataclass(frozen=True)
class TriggerRoute:
    """A Trigger resolved for the data plane: filter, subscriber URL, effective delivery."""

    namespace: str
    name: str
    broker: str
    filter: Filter
    subscriber_url: str
    delivery: DeliverySpec
    dead_letter_url: str | None = None

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class DeadLetter:
    """An event that failed finally and could not be handed to a dead-letter sink."""

    trigger: str
    event: CloudEvent
    status: int | None
    error: str


class RefusalError(Exception):
    """The ingress will not store an event; ``status`` is its HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def next_ttl(event: CloudEvent) -> int:
    """The TTL the ingress stores: 255 when absent or not a number, else one less, never < 0."""
    raw = event.get_attributes().get(TTL)
    try:
        return DEFAULT_TTL if raw is None else max(int(raw) - 1, 0)
    except (TypeError, ValueError):
        return DEFAULT_TTL


def stamp_arrival(event: CloudEvent) -> CloudEvent:
    """The event as the ingress stores it (arrival time, TTL); RefusalError(400) at TTL 0."""
    ttl = next_ttl(event)
    if ttl <= 0:
        raise RefusalError(400, f"event {event['id']}: {TTL} exhausted (an event loop?)")
    return copy_event(event, {"knativearrivaltime": now_rfc3339(), TTL: str(ttl)})


def name_broker(namespace: str, broker: str) -> str:
    """How a broker without an HTTP ingress is named in dead letters."""
    return f"broker {namespace}/{broker}"


def now_rfc3339() -> str:
    """Current UTC time as RFC 3339 with a Z suffix."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class EventRouter:
    """Brokers, their Triggers, and the bounded worker pool that delivers to subscribers."""

    def __init__(self, brokers: Iterable[tuple[str, str]], routes: Iterable[TriggerRoute]) -> None:
        self.brokers = set(brokers)
        self.routes = list(routes)
        self.attempts = AttemptLog()
        self.dead_letters: list[DeadLetter] = []
        self.address_of = name_broker  # the ingress replaces it with its broker URLs
        self.stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="delivery")
        self.connections = ConnectionPool()  # kept alive per subscriber, shared by the workers
        self._send = make_sender(self.connections)
        self._idle = threading.Condition()
        self._pending = 0

    def ingest(self, namespace: str, broker: str, event: CloudEvent) -> None:
        """Store an event as the ingress does, then fan out; RefusalError once its TTL is spent."""
        self.publish(namespace, broker, stamp_arrival(event))

    def publish(self, namespace: str, broker: str, event: CloudEvent) -> None:
        """Fan a stored (stamped) event out to every matching Trigger of the broker."""
        if (namespace, broker) not in self.brokers:
            raise KeyError(f"no broker {namespace}/{broker}")
        attributes = event_attributes(event)
        for route in self.routes:
            if (route.namespace, route.broker) == (namespace, broker) and is_match(
                route.filter, attributes
            ):
                self._submit(route, event)

    def _submit(self, route: TriggerRoute, event: CloudEvent) -> None:
        with self._idle:
            self._pending += 1
        try:
            self._pool.submit(self._dispatch, route, event)
        except RuntimeError:  # pool already shut down: the stack is stopping
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _dispatch(self, route: TriggerRoute, event: CloudEvent) -> None:
        try:
            self._deliver_route(route, event)
        except Exception:  # a delivery bug must not kill the worker silently
            LOG.exception("delivery to trigger %s crashed", route.key)
        finally:
            self._done()

    def _deliver_route(self, route: TriggerRoute, event: CloudEvent) -> None:
        headers = {"Prefer": "reply", "Kn-Namespace": route.namespace}
        hidden = copy_event(event, remove=(TTL,))
        delivery = Delivery(route.key, route.subscriber_url, hidden, route.delivery, headers)
        result = deliver(delivery, self.attempts, self.stopping, self._send)
        if result.ok and result.reply is not None:
            self._store_reply(route, event, hidden, result.reply)
        elif not result.ok and not self.stopping.is_set():
            self._dead_letter(route, hidden, result, route.subscriber_url)

    def _store_reply(
        self, route: TriggerRoute, event: CloudEvent, original: CloudEvent, reply: CloudEvent
    ) -> None:
        """Store the reply with the delivered event's TTL; if refused, dead-letter the original.

        In a cluster a retryable refusal is retried under the Trigger's delivery first; here
        the store is in-process and refuses only finally (400, TTL spent).
        """
        try:
            self.ingest(route.namespace, route.broker, copy_event(reply, {TTL: str(event[TTL])}))
        except RefusalError as refusal:
            LOG.warning("broker refused the reply of trigger %s: %s", route.key, refusal)
            failure = DeliveryResult(False, refusal.status, str(refusal), str(refusal).encode())
            self._dead_letter(
                route, original, failure, self.address_of(route.namespace, route.broker)
            )

    def _dead_letter(
        self, route: TriggerRoute, event: CloudEvent, result: DeliveryResult, destination: str
    ) -> None:
        letter = dead_letter_event(event, destination, result)
        if route.dead_letter_url:
            # retried under the Trigger's delivery, as Knative's dispatcher does
            sink = Delivery(
                f"{route.key} dead-letter sink", route.dead_letter_url, letter, route.delivery
            )
            if deliver(sink, self.attempts, self.stopping, self._send).ok:
                return
        LOG.error(
            "DEAD LETTER: trigger %s could not deliver event %s (%s) to %s: %s",
            route.key,
            event["id"],
            event["type"],
            destination,
            result.error,
        )
        self.dead_letters.append(DeadLetter(route.key, letter, result.status, result.error))

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no delivery is pending (replies included); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def stop(self, wait: bool = True) -> None:
        """Abort backoffs, drop queued deliveries, optionally wait for running ones."""
        self.stopping.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self.connections.close()


class BrokerIngress:
    """HTTP ingress ``POST /<namespace>/<broker>``: 202 stored; 400 not a CloudEvent or TTL
    spent; 404 no such broker; 405 not a POST."""

    def __init__(self, router: EventRouter, host: str = "127.0.0.1", port: int = 0) -> None:
        self.router = router
        # no access log: every delivery is in the attempt log (a line per POST cost a storm ~5%)
        self._server = RunningServer(self._app, host, port, handler=QuietHandler).start()
        router.address_of = self.broker_url  # dead letters of refused replies name this ingress

    @property
    def url(self) -> str:
        """Base URL of the ingress."""
        return self._server.url

    def broker_url(self, namespace: str, broker: str) -> str:
        """The address event producers POST to for one broker."""
        return f"{self.url}/{namespace}/{broker}"

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Validate the path and the event, then hand it to the router."""
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or tuple(parts) not in self.router.brokers:
            return Response(f"no broker at {request.path}\n", status=404)
        if request.method != "POST":
            return Response("use POST\n", status=405, headers={"Allow": "POST"})
        try:
            event = parse_event(dict(request.headers), request.get_data())
            self.router.ingest(parts[0], parts[1], event)
        except EventError as error:
            return Response(f"{error}\n", status=400)
        except RefusalError as refusal:
            return Response(f"{refusal}\n", status=refusal.status)
        return Response(status=202)
