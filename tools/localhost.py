"""A small stand-in for the Azure Functions host, for machines without Core Tools (`func`).

Everything it knows about routes, methods and triggers it reads from `host.json` and each
`*/function.json`. Routing, queue leasing and scheduling are its own; loading each function,
converting its bindings and invoking it are left to Microsoft's Python worker, spoken to in the
host's FunctionRpc messages (tools/functions_worker.py). Development only (excluded from
deployment by .funcignore).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueClient
from croniter import croniter

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

    def __init__(self, host: LocalHost, storage: Storage, poll_seconds: float = 0.2) -> None:
        self.host = host
        self.storage = storage
        self.poll_seconds = poll_seconds
        settings = host.queue_settings
        self.max_dequeue = int(settings.get("maxDequeueCount", 5))
        self.retry_delay = int(timespan_seconds(settings.get("visibilityTimeout", "00:00:00")))
        self.batch = int(settings.get("batchSize", 16))
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
        lease = int(timespan_seconds(host_json(ROOT).get("functionTimeout", "00:10:00")))
        # Up to `batchSize` messages in flight; new ones are fetched as soon as slots free up.
        slots = threading.BoundedSemaphore(self.batch)
        while not self._stop.is_set():
            free = 1 if slots.acquire(timeout=self.poll_seconds) else 0
            while 0 < free < self.batch and slots.acquire(blocking=False):
                free += 1
            if free == 0:
                continue
            try:
                messages = list(queue.receive_messages(max_messages=free, visibility_timeout=lease))
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


def make_server(host: LocalHost, port: int, bind: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "media-api-localhost"
        disable_nagle_algorithm = True  # small replies must not wait for the peer's ACK

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > AZURE_MAX_REQUEST_BYTES:
                self._reply(
                    func.HttpResponse("Request body too large", status_code=413), close=True
                )
                return
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = self._read_chunked()
                if body is None:
                    self._reply(
                        func.HttpResponse("Request body too large", status_code=413), close=True
                    )
                    return
            else:
                body = self.rfile.read(length) if length else b""
            url = f"http://{self.headers.get('Host', f'127.0.0.1:{port}')}{self.path}"
            headers = {k: v for k, v in self.headers.items()}
            headers["X-Forwarded-For"] = self.headers["X-Forwarded-For"] or self.client_address[0]
            try:
                response = host.handle_http(self.command, url, headers, body)
            except Exception:  # a crashing function must not kill the host
                log.exception("function raised")
                response = func.HttpResponse(status_code=500)
            self._reply(response)

        def _read_chunked(self) -> bytes | None:
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > AZURE_MAX_REQUEST_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()

        def _reply(self, response: func.HttpResponse, close: bool = False) -> None:
            body = response.get_body() or b""
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            if response.mimetype and "content-type" not in {
                k.lower() for k, _ in response.headers.items()
            }:
                charset = f"; charset={response.charset}" if response.charset else ""
                self.send_header("Content-Type", f"{response.mimetype}{charset}")
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    server = _Server((bind, port), Handler)
    server.daemon_threads = True
    return server


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # socketserver's default of 5 resets connections under bursts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    args = parser.parse_args(argv)

    from shared.app import App, current, install
    from shared.errors import ConfigurationError
    from shared.logs import configure_json_logging
    from shared.settings import load_settings

    configure_json_logging()
    try:
        install(App.build(load_settings(ROOT / "local.settings.json")))
    except ConfigurationError as exc:
        print(f"localhost: {exc}", file=sys.stderr)
        return 2
    host = LocalHost()
    server = make_server(host, args.port)
    triggers = TriggerRunner(host, current().storage)
    triggers.start()
    for route in host.routes:
        methods = ",".join(sorted(route.methods or {"*"}))
        log.info("%s %s -> %s", methods, route.pattern.pattern, route.function.name)
    log.info("serving on http://localhost:%d", args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        triggers.stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
