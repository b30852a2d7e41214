"""A small stand-in for the Azure Functions host, for machines without Core Tools (`func`).

Everything it knows about routes, methods and triggers it reads from `host.json` and each
`*/function.json`. Routing, queue leasing and scheduling are its own; loading each function,
converting its bindings and invoking it are left to Microsoft's Python worker, spoken to in the
host's FunctionRpc messages (tools/functions_worker.py). Development only (excluded from
deployment by .funcignore).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueClient
from croniter import croniter
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

from shared.storage import Storage
from tools.functions_worker import LoadedFunction, worker

ROOT = Path(__file__).resolve().parent.parent
AZURE_MAX_REQUEST_BYTES = 100 * 1024 * 1024  # Azure Functions' HTTP request body limit
SERVED_TRIGGERS = frozenset({"httpTrigger", "queueTrigger", "blobTrigger", "timerTrigger"})
BLOB_POISON_QUEUE = "webjobs-blobtrigger-poison"  # where the runtime parks blobs that keep failing
log = logging.getLogger("localhost")

_PARAM = re.compile(r"^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)((?::[^}?=]+)*)(\?)?\}$")
_CONSTRAINTS = {
    "guid": r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}",
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?:true|false|True|False)",
}


@dataclass
class Function:
    """One function folder: its bindings as function.json states them, and its entry point."""

    name: str
    directory: Path
    bindings: list[dict[str, Any]]
    entry: str = "main"

    @property
    def trigger(self) -> dict[str, Any]:
        triggers = [b for b in self.bindings if str(b.get("type", "")).endswith("Trigger")]
        if len(triggers) != 1:
            raise ValueError(f"{self.name}: function.json must have exactly one trigger")
        return triggers[0]

    @property
    def loaded(self) -> LoadedFunction:
        """The folder as Microsoft's worker loaded it (once per process)."""
        return worker().load(self.directory, {"bindings": self.bindings, "entryPoint": self.entry})


def load_functions(root: Path = ROOT) -> list[Function]:
    functions = []
    for spec in sorted(root.glob("*/function.json")):
        config = json.loads(spec.read_text())
        if config.get("disabled"):
            continue
        if config.get("scriptFile", "__init__.py") != "__init__.py":
            raise ValueError(f"{spec}: only __init__.py script files are supported")
        functions.append(
            Function(
                name=spec.parent.name,
                directory=spec.parent,
                bindings=config["bindings"],
                entry=config.get("entryPoint", "main"),
            )
        )
    return functions


def host_json(root: Path = ROOT) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((root / "host.json").read_text())
    return config


def route_prefix(root: Path = ROOT) -> str:
    prefix: str = host_json(root).get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return prefix.strip("/")


def timespan_seconds(value: str) -> float:
    """host.json timespans ("hh:mm:ss")."""
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass
class HttpRoute:
    function: Function
    pattern: re.Pattern[str]
    methods: frozenset[str] | None  # None: every method
    literal_segments: int

    @classmethod
    def compile(cls, function: Function, prefix: str) -> HttpRoute:
        trigger = function.trigger
        template = str(trigger.get("route") or function.name).strip("/")
        parts, literals = [], 0
        for segment in ([prefix] if prefix else []) + template.split("/"):
            match = _PARAM.match(segment)
            if not match:
                parts.append(re.escape(segment))
                literals += 1
                continue
            catch_all, name, constraints, optional = match.groups()
            regex = ".*" if catch_all else "[^/]+"
            for constraint in filter(None, constraints.split(":")):
                regex = _CONSTRAINTS.get(constraint.split("(")[0].lower(), regex)
            part = f"(?P<{name}>{regex})"
            parts.append(f"(?:{part})?" if optional else part)
        pattern = re.compile("^/" + "/?".join(parts) + "/?$", re.IGNORECASE)
        methods = trigger.get("methods")
        allowed = frozenset(m.upper() for m in methods) if methods else None
        return cls(function, pattern, allowed, literals)


class LocalHost:
    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self.functions = load_functions(root)
        prefix = route_prefix(root)
        http = [f for f in self.functions if f.trigger["type"] == "httpTrigger"]
        # Literal segments win over parameters, as in ASP.NET routing.
        self.routes = sorted(
            (HttpRoute.compile(f, prefix) for f in http), key=lambda r: -r.literal_segments
        )
        self.queue_functions = [f for f in self.functions if f.trigger["type"] == "queueTrigger"]
        self.blob_functions = [f for f in self.functions if f.trigger["type"] == "blobTrigger"]
        self.timer_functions = [f for f in self.functions if f.trigger["type"] == "timerTrigger"]
        self.queue_settings = host_json(root).get("extensions", {}).get("queues", {})
        unsupported = {f.trigger["type"] for f in self.functions} - SERVED_TRIGGERS
        if unsupported:
            raise ValueError(f"triggers this host cannot serve: {sorted(unsupported)}")
        for function in self.functions:  # as the host does at start: a broken folder fails here
            function.loaded  # noqa: B018

    def handle_http(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> func.HttpResponse:
        parsed = urlsplit(url)
        for route in self.routes:
            match = route.pattern.match(parsed.path)
            if not match or (route.methods is not None and method.upper() not in route.methods):
                continue
            route_params = {k: v for k, v in match.groupdict().items() if v is not None}
            answer = worker().invoke_http(
                route.function.loaded, method, url, headers, body, route_params
            )
            response = func.HttpResponse(answer.body, status_code=answer.status)
            for name, value in answer.headers:
                response.headers.add_header(name, value)
            return response
        return func.HttpResponse(status_code=404)


class TriggerRunner:
    """Runs queue, blob and timer triggers against the app's storage, as the runtime would:
    queue messages are leased, handed to the worker with their trigger metadata, deleted on
    success and, after `maxDequeueCount` failures, moved to `<queue>-poison`; new blobs in a
    trigger's container are handed over with the metadata of an Event Grid blob event (the
    source in Azure; polling here), retried the same number of times, then reported on
    `webjobs-blobtrigger-poison`."""

    def __init__(
        self,
        host: LocalHost,
        storage: Storage,
        poll_seconds: float = 0.2,
        lease_seconds: float | None = None,
    ) -> None:
        self.host = host
        self.storage = storage
        self.poll_seconds = poll_seconds
        settings = host.queue_settings
        self.max_dequeue = int(settings.get("maxDequeueCount", 5))
        self.retry_delay = int(timespan_seconds(settings.get("visibilityTimeout", "00:00:00")))
        self.batch = int(settings.get("batchSize", 16))
        # How long a received message stays invisible; if the host dies, it is delivered again
        # after this. The Functions host takes messages for 10 minutes and renews that while the
        # function runs; here the lease is the functionTimeout unless a shorter one is asked for.
        timeout = host_json(host.root).get("functionTimeout", "00:10:00")
        self.lease = int(lease_seconds if lease_seconds is not None else timespan_seconds(timeout))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="trigger")
        self._blob_attempts: dict[tuple[str, str], int] = {}

    def start(self) -> None:
        loops = [(self._queue_loop, f) for f in self.host.queue_functions]
        loops += [(self._blob_loop, f) for f in self.host.blob_functions]
        loops += [(self._timer_loop, f) for f in self.host.timer_functions]
        for loop, function in loops:
            thread = threading.Thread(
                target=loop, args=(function,), daemon=True, name=function.name
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def _queue_loop(self, function: Function) -> None:
        queue = self.storage.queue(function.trigger["queueName"])
        # Up to `batchSize` messages in flight; new ones are fetched as soon as slots free up.
        slots = threading.BoundedSemaphore(self.batch)
        while not self._stop.is_set():
            free = 1 if slots.acquire(timeout=self.poll_seconds) else 0
            while 0 < free < self.batch and slots.acquire(blocking=False):
                free += 1
            if free == 0:
                continue
            try:
                messages = list(
                    queue.receive_messages(max_messages=free, visibility_timeout=self.lease)
                )
            except AzureError:
                log.warning("queue %s unreachable; retrying", queue.queue_name)
                messages = []
            for _ in range(free - len(messages)):
                slots.release()
            for message in messages:
                future = self._pool.submit(self._run_queue_message, function, queue, message)
                future.add_done_callback(lambda _: slots.release())
            if not messages:
                self._stop.wait(self.poll_seconds)

    def _run_queue_message(self, function: Function, queue: QueueClient, message: Any) -> None:
        content = message.content
        try:
            worker().invoke_queue(
                function.loaded,
                content,
                message_id=message.id,
                dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                next_visible_time=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
        except Exception:  # the runtime's contract: any failure means retry, then poison
            log.exception("%s failed on message %s", function.name, message.id)
            try:
                if message.dequeue_count >= self.max_dequeue:
                    self.storage.queue(f"{queue.queue_name}-poison").send_message(content)
                    queue.delete_message(message)
                else:
                    queue.update_message(message, visibility_timeout=self.retry_delay)
            except AzureError:
                log.warning("could not return message %s; its lease will expire", message.id)
            return
        try:
            queue.delete_message(message)
        except AzureError:
            log.warning("could not delete message %s; it will be delivered again", message.id)

    def _timer_loop(self, function: Function) -> None:
        """Fire on the function's NCRONTAB schedule (seconds first), and at start-up with
        `runOnStartup`; a failed run is logged and the schedule goes on, as in Azure."""
        schedule = croniter(function.trigger["schedule"], datetime.now(), second_at_beginning=True)
        due = (
            datetime.now() if function.trigger.get("runOnStartup") else schedule.get_next(datetime)
        )
        last: datetime | None = None
        while not self._stop.wait(max(0.0, (due - datetime.now()).total_seconds())):
            following = schedule.get_next(datetime)
            try:
                worker().invoke_timer(
                    function.loaded,
                    past_due=datetime.now() - due > timedelta(seconds=1),
                    last=last,
                    next_due=following,
                )
            except Exception:  # the runtime's contract: log it, keep the schedule
                log.exception("%s failed", function.name)
            last, due = due, following

    def _blob_loop(self, function: Function) -> None:
        container_name, _, _ = function.trigger["path"].partition("/")
        container = self.storage.container(container_name)
        seen: dict[str, str] = {}
        while not self._stop.is_set():
            try:
                blobs = list(container.list_blobs())
            except AzureError:
                blobs = []
            fresh = [b for b in blobs if seen.get(b.name) != b.etag]
            for blob in fresh:
                if self._run_blob(function, container_name, blob.name, blob.etag):
                    seen[blob.name] = blob.etag
            self._stop.wait(self.poll_seconds)

    def _run_blob(self, function: Function, container: str, name: str, etag: str) -> bool:
        """True when this version of the blob is dealt with (succeeded, gone, or poisoned)."""
        client = self.storage.blobs.get_blob_client(container, name)
        try:
            downloader = client.download_blob()
            data = downloader.readall()
        except ResourceNotFoundError:
            return True
        except AzureError:
            return False
        props = downloader.properties
        key = (name, etag)
        try:
            worker().invoke_blob(
                function.loaded,
                f"{container}/{name}",
                data,
                uri=client.url,
                properties={
                    "ETag": props.etag,
                    "ContentType": props.content_settings.content_type,
                    "ContentLength": props.size,
                    "LastModified": props.last_modified.isoformat(),
                    "BlobType": "BlockBlob",
                },
                metadata=dict(props.metadata or {}),
            )
        except Exception:  # the runtime's contract: retry, then report on the poison queue
            attempts = self._blob_attempts.get(key, 0) + 1
            self._blob_attempts[key] = attempts
            log.exception("%s failed on blob %s (attempt %d)", function.name, name, attempts)
            if attempts < self.max_dequeue:
                return False
            poison = {"FunctionId": function.name, "BlobType": "BlockBlob",
                      "ContainerName": container, "BlobName": name, "ETag": etag}  # fmt: skip
            self.storage.queue(BLOB_POISON_QUEUE).send_message(json.dumps(poison))
        self._blob_attempts.pop(key, None)
        return True


@dataclass(frozen=True)
class ServerLimits:
    """What one client, and all clients together, can hold of the HTTP server.

    At most `max_concurrent_requests` connections are served at once, each on a worker thread
    (host.json's `extensions.http.maxConcurrentRequests`, as the Functions host reads it); further
    connections wait unaccepted in the listen backlog. A connection must deliver its request
    within `read_seconds`, with no pause longer than `idle_seconds`: headers that stall are answered
    408, as is a body that stalls. Bodies over `max_body_bytes` are answered 413 unread."""

    max_concurrent_requests: int = 100
    idle_seconds: float = 10.0
    read_seconds: float = 60.0
    max_body_bytes: int = AZURE_MAX_REQUEST_BYTES
    linger_seconds: float = 1.0  # how long the unread rest of a refused request is discarded

    @classmethod
    def from_host_json(cls, root: Path = ROOT, **changes: Any) -> ServerLimits:
        http = host_json(root).get("extensions", {}).get("http", {})
        cap = int(http.get("maxConcurrentRequests", cls.max_concurrent_requests))
        return cls(**{"max_concurrent_requests": cap, **changes})


class _DeadlineReader(io.RawIOBase):
    """Socket reads that give up (TimeoutError) after `idle` seconds without data or once the
    request's `deadline` (time.monotonic) has passed: a slow client holds a worker for a bounded
    time, however it dribbles its bytes."""

    def __init__(self, sock: socket.socket, idle: float, deadline: float) -> None:
        self._sock = sock
        self._idle = idle
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request was not received in time")
        self._sock.settimeout(min(self._idle, remaining))
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._idle)  # replies are written under the idle timeout


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's request handler with the limits a front end enforces: framing headers checked
    before the application runs, and every read under the request's deadline."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        limits = self.server.limits
        self.rfile.close()  # replaced: the socket's own reader has no deadline
        self._reader = _DeadlineReader(
            self.connection, limits.idle_seconds, time.monotonic() + limits.read_seconds
        )
        self.rfile = io.BufferedReader(self._reader)

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return "media-api-localhost"

    def parse_request(self) -> bool:
        try:
            return super().parse_request()
        except TimeoutError:  # the request line arrived, its headers did not
            self.send_error(HTTPStatus.REQUEST_TIMEOUT)
            return False

    def handle_expect_100(self) -> bool:
        return True  # run_wsgi answers `Expect: 100-continue` once the framing is checked

    def send_response(self, code: int, message: str | None = None) -> None:
        # The answer has started: whatever of the request is still unread is discarded (so the
        # client sees the answer rather than a reset), for a moment at most.
        linger = time.monotonic() + self.server.limits.linger_seconds
        self._reader.deadline = min(self._reader.deadline, linger)
        super().send_response(code, message)

    def run_wsgi(self) -> None:
        refusal = self._framing_refusal()
        if refusal is None:
            super().run_wsgi()
            return
        self.send_error(*refusal)
        with contextlib.suppress(OSError):
            while self.rfile.read1(65536):
                pass

    def _framing_refusal(self) -> tuple[HTTPStatus, str] | None:
        """RFC 9112 section 6: how the body is delimited, or why it cannot be read."""
        codings = ",".join(self.headers.get_all("Transfer-Encoding") or [])
        lengths = ",".join(self.headers.get_all("Content-Length") or []).split(",")
        lengths = [value.strip() for value in lengths if value.strip()]
        if codings:
            names = [c.strip().lower() for c in codings.split(",") if c.strip()]
            if lengths:
                return HTTPStatus.BAD_REQUEST, "Both Transfer-Encoding and Content-Length"
            if not names or names[-1] != "chunked":
                return HTTPStatus.BAD_REQUEST, "The last transfer coding must be chunked"
            if names != ["chunked"]:
                return HTTPStatus.NOT_IMPLEMENTED, "Only the chunked transfer coding is supported"
            return None
        if not all(value.isdigit() and value.isascii() for value in lengths):
            return HTTPStatus.BAD_REQUEST, "Invalid Content-Length"
        if len(set(map(int, lengths))) > 1:
            return HTTPStatus.BAD_REQUEST, "Conflicting Content-Length values"
        if lengths and int(lengths[0]) > self.server.limits.max_body_bytes:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large"
        return None

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.ERROR if type == "error" else logging.INFO
        log.log(level, "%s " + message, self.address_string(), *args)


class _Server(BaseWSGIServer):
    """werkzeug's server with a bounded worker pool instead of a thread per connection."""

    multithread = True
    request_queue_size = 512  # connections beyond the workers wait here, unaccepted

    def __init__(self, bind: str, port: int, app: Any, limits: ServerLimits) -> None:
        self.limits = limits
        super().__init__(bind, port, app, handler=_RequestHandler)
        self._workers = ThreadPoolExecutor(limits.max_concurrent_requests, "http")
        self._free = threading.Semaphore(limits.max_concurrent_requests)

    def get_request(self) -> tuple[socket.socket, Any]:
        # Accept only when a worker is free; the OSError makes the serve loop poll again.
        if not self._free.acquire(timeout=0.2):
            raise OSError("every worker is busy")
        try:
            return super().get_request()
        except BaseException:
            self._free.release()
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        self._workers.submit(self._serve, request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # one broken connection must not take the worker down
            log.exception("serving %s failed", client_address)
        finally:
            self.shutdown_request(request)
            self._free.release()

    def server_close(self) -> None:
        super().server_close()
        self._workers.shutdown(wait=False, cancel_futures=True)


class _TooLarge(Exception):
    pass


def _read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body; TimeoutError when it stalls, _TooLarge past `limit`, OSError or
    ValueError when it is cut short or its chunks are malformed."""
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked, undone by werkzeug's DechunkedInput
        chunks, total = [], 0
        while chunk := stream.read(min(65536, limit + 1 - total)):
            total += len(chunk)
            if total > limit:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)
    length = int(environ.get("CONTENT_LENGTH") or 0)  # checked by _RequestHandler
    body: bytes = stream.read(length) if length else b""
    if len(body) < length:
        raise ValueError("the body ended before Content-Length")
    return body


def _refusal(status: HTTPStatus, message: str) -> tuple[HTTPStatus, list[tuple[str, str]], bytes]:
    body = message.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    return status, headers, body


def wsgi_app(host: LocalHost, limits: ServerLimits) -> Callable[..., list[bytes]]:
    """The WSGI application that turns a request into an `azure.functions.HttpRequest` for the
    function that its route names, and the function's `HttpResponse` into the answer."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            body = _read_body(environ, limits.max_body_bytes)
        except TimeoutError:
            status, headers, payload = _refusal(HTTPStatus.REQUEST_TIMEOUT, "Request timed out")
        except _TooLarge:
            status, headers, payload = _refusal(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large"
            )
        except (OSError, ValueError) as exc:
            status, headers, payload = _refusal(HTTPStatus.BAD_REQUEST, f"Bad request body: {exc}")
        else:
            status, headers, payload = _call_function(host, environ, body)
        start_response(f"{status.value} {status.phrase}", headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [payload]

    return application


def _call_function(
    host: LocalHost, environ: dict[str, Any], body: bytes
) -> tuple[HTTPStatus, list[tuple[str, str]], bytes]:
    headers = {
        key[5:].replace("_", "-").title(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = environ[key]
    # Like the platform's front end: append the address the connection came from, after whatever
    # the client wrote, so only the last hop is ours (shared/auth.py keys throttling on it).
    peer = f"{environ['REMOTE_ADDR']}:{environ.get('REMOTE_PORT', 0)}"
    if ":" in environ["REMOTE_ADDR"]:
        peer = f"[{environ['REMOTE_ADDR']}]:{environ.get('REMOTE_PORT', 0)}"
    claimed = headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{claimed}, {peer}" if claimed else peer
    host_header = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    url = f"http://{host_header}{environ['REQUEST_URI']}"
    try:
        response = host.handle_http(environ["REQUEST_METHOD"], url, headers, body)
    except Exception:  # a crashing function must not kill the host
        log.exception("function raised")
        response = func.HttpResponse(status_code=500)
    payload = response.get_body() or b""
    out = [
        (name, value)
        for name, value in response.headers.items()
        if name.lower() not in ("content-length", "transfer-encoding", "connection")
    ]
    if response.mimetype and "content-type" not in {name.lower() for name, _ in out}:
        charset = f"; charset={response.charset}" if response.charset else ""
        out.append(("Content-Type", f"{response.mimetype}{charset}"))
    out.append(("Content-Length", str(len(payload))))
    return HTTPStatus(response.status_code), out, payload


def make_server(
    host: LocalHost, port: int, bind: str = "127.0.0.1", limits: ServerLimits | None = None
) -> _Server:
    """The HTTP server: werkzeug's, one connection per request (`Connection: close`), under
    `limits` (by default host.json's concurrency and Azure's 100 MB body limit)."""
    limits = limits or ServerLimits.from_host_json(host.root)
    return _Server(bind, port, wsgi_app(host, limits), limits)


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.localhost [--port N] [--queue-lease SECONDS]`: the app's settings come from
    the environment over `local.settings.json` (e.g. MEDIA_STORAGE_CONNECTION_STRING for another
    Azurite); SIGTERM or SIGINT stop it cleanly, and it may be killed at any moment."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument(
        "--queue-lease",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long a received queue message stays invisible, so how soon it is delivered "
        "again after a crash (default: host.json's functionTimeout)",
    )
    args = parser.parse_args(argv)

    from shared.app import App, current, install
    from shared.errors import ConfigurationError
    from shared.logs import configure_json_logging
    from shared.settings import load_settings

    configure_json_logging()
    try:
        settings = load_settings(ROOT / "local.settings.json")
        install(App.build(settings))
    except ConfigurationError as exc:
        print(f"localhost: {exc}", file=sys.stderr)
        return 2
    host = LocalHost()
    limits = ServerLimits.from_host_json(host.root)
    if limits.max_concurrent_requests != settings.max_concurrent_requests:
        log.warning(
            "host.json allows %d concurrent requests but MAX_CONCURRENT_REQUESTS is %d: storage "
            "connection pools are sized from the setting",
            limits.max_concurrent_requests,
            settings.max_concurrent_requests,
        )
    server = make_server(host, args.port, args.bind, limits)
    triggers = TriggerRunner(host, current().storage, lease_seconds=args.queue_lease)
    triggers.start()
    for route in host.routes:
        methods = ",".join(sorted(route.methods or {"*"}))
        log.info("%s %s -> %s", methods, route.pattern.pattern, route.function.name)
    log.info("serving on http://%s:%d", args.bind, server.server_address[1])
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        triggers.stop()
        server.server_close()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
