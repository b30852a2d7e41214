"""A small stand-in for the Azure Functions host, for machines without Core Tools (`func`).

Everything it knows about routes, methods and triggers it reads from `host.json` and each
`*/function.json`; it builds real `azure.functions` binding objects and calls the same `main`
functions the Azure runtime would. Development only (excluded from deployment by .funcignore).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

ROOT = Path(__file__).resolve().parent.parent
AZURE_MAX_REQUEST_BYTES = 100 * 1024 * 1024  # Azure Functions' HTTP request body limit
log = logging.getLogger("localhost")

_PARAM = re.compile(r"^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)((?::[^}?=]+)*)(\?)?\}$")
_CONSTRAINTS = {
    "guid": r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}",
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?:true|false|True|False)",
}


class LocalContext(func.Context):
    """The invocation context the real worker passes to a `context` parameter."""

    def __init__(self, function_name: str, directory: Path) -> None:
        self._id = str(uuid.uuid4())
        self._name = function_name
        self._dir = str(directory)
        self._tls = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return self._dir

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return self._tls


@dataclass
class Function:
    """One function folder: its bindings as function.json states them, and its entry point."""

    name: str
    directory: Path
    bindings: list[dict[str, Any]]
    entry: str = "main"
    _main: Callable[..., Any] | None = field(default=None, repr=False)

    @property
    def trigger(self) -> dict[str, Any]:
        triggers = [b for b in self.bindings if str(b.get("type", "")).endswith("Trigger")]
        if len(triggers) != 1:
            raise ValueError(f"{self.name}: function.json must have exactly one trigger")
        return triggers[0]

    @property
    def main(self) -> Callable[..., Any]:
        if self._main is None:
            module = sys.modules.get(self.name)
            if module is None:
                spec = importlib.util.spec_from_file_location(
                    self.name,
                    self.directory / "__init__.py",
                    submodule_search_locations=[str(self.directory)],
                )
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[self.name] = module
                spec.loader.exec_module(module)
            self._main = getattr(module, self.entry)
        return self._main

    def invoke(self, trigger_value: Any) -> Any:
        """Bind parameters by name, as the Python worker does: the trigger and `context`."""
        params = inspect.signature(self.main).parameters
        kwargs: dict[str, Any] = {}
        for name in params:
            if name == self.trigger["name"]:
                kwargs[name] = trigger_value
            elif name == "context":
                kwargs[name] = LocalContext(self.name, self.directory)
            else:
                raise TypeError(f"{self.name}: parameter {name!r} has no binding the host serves")
        return self.main(**kwargs)


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


def route_prefix(root: Path = ROOT) -> str:
    host = json.loads((root / "host.json").read_text())
    prefix: str = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return prefix.strip("/")


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
        unsupported = {f.trigger["type"] for f in self.functions} - {"httpTrigger"}
        if unsupported:
            log.warning("triggers not served by this host: %s", sorted(unsupported))

    def handle_http(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> func.HttpResponse:
        parsed = urlsplit(url)
        for route in self.routes:
            match = route.pattern.match(parsed.path)
            if not match or (route.methods is not None and method.upper() not in route.methods):
                continue
            request = func.HttpRequest(
                method=method.upper(),
                url=url,
                headers=headers,
                params=dict(parse_qsl(parsed.query, keep_blank_values=True)),
                route_params={k: v for k, v in match.groupdict().items() if v is not None},
                body=body,
            )
            response: func.HttpResponse = route.function.invoke(request)
            return response
        return func.HttpResponse(status_code=404)


def make_server(host: LocalHost, port: int, bind: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "media-api-localhost"

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

    server = ThreadingHTTPServer((bind, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    args = parser.parse_args(argv)

    from shared.app import App, install
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
    for route in host.routes:
        methods = ",".join(sorted(route.methods or {"*"}))
        log.info("%s %s -> %s", methods, route.pattern.pattern, route.function.name)
    log.info("serving on http://localhost:%d", args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
