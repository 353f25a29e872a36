"""Local Knative Brokers: an HTTP ingress plus fan-out of each event to every matching Trigger.

Semantics follow the MT channel-based broker (REFERENCE §6.3-6.4): ``knativearrivaltime`` and
``knativebrokerttl`` are added at ingress, the TTL is hidden from subscribers and re-attached
(decremented) to replies, replies are re-published to the same broker, failures go to the
dead-letter sink or, without one, into ``dead_letters``.
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

from amtd_stack.connections import ConnectionPool
from amtd_stack.deliveries import DeliverySpec
from amtd_stack.delivering import (
    AttemptLog,
    Delivery,
    DeliveryResult,
    dead_letter_event,
    deliver,
    make_sender,
)
from amtd_stack.filtering import Filter, is_match
from amtd_stack.messages import EventError, copy_event, event_attributes, parse_event
from amtd_stack.serving import RunningServer

LOG = logging.getLogger(__name__)
TTL = "knativebrokerttl"
DEFAULT_TTL = 255
MAX_WORKERS = 8


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


@dataclass(frozen=True)
class DroppedEvent:
    """An event dropped because its broker TTL ran out."""

    broker: str
    event: CloudEvent


def read_ttl(event: CloudEvent) -> int:
    """The event's broker TTL, or the default for events arriving from outside (pure)."""
    try:
        return int(event.get_attributes().get(TTL, DEFAULT_TTL))
    except (TypeError, ValueError):
        return DEFAULT_TTL


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
        self.dropped: list[DroppedEvent] = []
        self.stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="delivery")
        self.connections = ConnectionPool()  # kept alive per subscriber, shared by the workers
        self._send = make_sender(self.connections)
        self._idle = threading.Condition()
        self._pending = 0

    def ingest(self, namespace: str, broker: str, event: CloudEvent) -> None:
        """Accept an event from outside: stamp arrival time and TTL, then fan out."""
        stamped = copy_event(
            event, {"knativearrivaltime": now_rfc3339(), TTL: str(read_ttl(event))}
        )
        self.publish(namespace, broker, stamped)

    def publish(self, namespace: str, broker: str, event: CloudEvent) -> None:
        """Fan a stamped event out to every matching Trigger of the broker (TTL 0 = drop)."""
        if (namespace, broker) not in self.brokers:
            raise KeyError(f"no broker {namespace}/{broker}")
        if read_ttl(event) <= 0:
            LOG.warning(
                "broker %s/%s dropped event %s: TTL exhausted (event loop?)",
                namespace,
                broker,
                event["id"],
            )
            self.dropped.append(DroppedEvent(f"{namespace}/{broker}", event))
            return
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
        if result.ok:
            self._publish_reply(route, event, result)
        elif not self.stopping.is_set():
            self._dead_letter(route, hidden, result)

    def _publish_reply(
        self, route: TriggerRoute, event: CloudEvent, result: DeliveryResult
    ) -> None:
        if result.reply is None:
            return
        changes = {TTL: str(read_ttl(event) - 1), "knativearrivaltime": now_rfc3339()}
        self.publish(route.namespace, route.broker, copy_event(result.reply, changes))

    def _dead_letter(self, route: TriggerRoute, event: CloudEvent, result: DeliveryResult) -> None:
        letter = dead_letter_event(event, route.subscriber_url, result)
        if route.dead_letter_url:
            sink = Delivery(
                f"{route.key} dead-letter sink",
                route.dead_letter_url,
                letter,
                DeliverySpec(timeout_s=route.delivery.timeout_s),
            )
            if deliver(sink, self.attempts, self.stopping, self._send).ok:
                return
        LOG.error(
            "DEAD LETTER: trigger %s could not deliver event %s (%s) to %s: %s",
            route.key,
            event["id"],
            event["type"],
            route.subscriber_url,
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
    """HTTP ingress ``POST /<namespace>/<broker>``: 202 accepted, 400 not a CloudEvent, 404."""

    def __init__(self, router: EventRouter, host: str = "127.0.0.1", port: int = 0) -> None:
        self.router = router
        self._server = RunningServer(self._app, host, port)

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
        except EventError as error:
            return Response(f"{error}\n", status=400)
        self.router.ingest(parts[0], parts[1], event)
        return Response(status=202)
