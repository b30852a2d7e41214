"""Microsoft's Python worker for the folder-per-function model (`azure-functions-runtime-v1`), run
in this process and spoken to in the Functions host's own FunctionRpc messages.

The local host keeps routing, queue leasing and scheduling; this module turns each trigger into
the `FunctionLoadRequest` and `InvocationRequest` the host builds from `function.json` (binding
names, directions and data types; `RpcHttp`; the trigger metadata of queue messages, Event Grid
blobs and timers) and reads back what the runtime answers: the `$return` value, output bindings,
the exception of a failed invocation, and the log records made while it ran.

The protobuf classes come from the installed runtime distribution: its wheel ships the generated
`FunctionRpc_pb2` under a top-level `tests/protos/` folder, which this project's own `tests`
package shadows, so they are loaded from the distribution's files under a private module name.
The runtime keeps its registry and the `__app__` namespace in module globals, hence one `Worker`
per process (`worker()`). Development only (excluded from deployment by .funcignore).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure_functions_runtime_v1 as runtime

RUNTIME_DISTRIBUTION = "azure-functions-runtime-v1"
_PROTOS_FOLDER = "tests/protos"  # where the runtime's wheel puts the generated messages
_PROTOS_MODULE = "_functions_rpc"
_DIRECTIONS = frozenset({"in", "out", "inout"})  # BindingInfo.Direction
_DATA_TYPES = {"string": "string", "binary": "binary", "stream": "stream"}
# The capabilities the Functions host announces in its WorkerInitRequest.
_HOST_CAPABILITIES: dict[str, str] = {}
_HOST_VERSION = "4.0.0-localhost"


class WorkerError(Exception):
    """The runtime answered a request with `StatusResult.Failure`."""

    def __init__(self, message: str, stack_trace: str = "") -> None:
        super().__init__(f"{message}\n{stack_trace}".rstrip())
        self.message = message
        self.stack_trace = stack_trace


class LoadFailed(WorkerError):
    """A `FunctionLoadRequest` failed: the folder's module or its bindings are wrong."""


class FunctionFailed(WorkerError):
    """An invocation failed: the function raised, or its value could not be converted."""


@dataclass(frozen=True)
class LoadedFunction:
    """A function folder the runtime has loaded, under the id the host gave it."""

    function_id: str
    name: str
    directory: Path
    trigger: Mapping[str, Any]


@dataclass(frozen=True)
class Invocation:
    """What the runtime answered for one invocation, converted back from `TypedData`."""

    invocation_id: str
    return_value: Any
    outputs: Mapping[str, Any]
    logs: tuple[logging.LogRecord, ...] = field(repr=False)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def load_protos() -> ModuleType:
    """The runtime wheel's generated FunctionRpc messages, as a private package."""
    if _PROTOS_MODULE in sys.modules:
        return sys.modules[f"{_PROTOS_MODULE}.FunctionRpc_pb2"]
    folder = Path(str(importlib.metadata.distribution(RUNTIME_DISTRIBUTION).locate_file("")))
    folder = folder / _PROTOS_FOLDER
    if not (folder / "FunctionRpc_pb2.py").is_file():
        raise ImportError(f"{RUNTIME_DISTRIBUTION} ships no FunctionRpc_pb2 under {folder}")
    # A namespace-style parent: its __init__ (which imports grpc) never runs, while the
    # generated modules' relative imports (`.identity`, `..shared`) resolve inside it.
    spec = importlib.machinery.ModuleSpec(_PROTOS_MODULE, None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    package = importlib.util.module_from_spec(spec)
    sys.modules[_PROTOS_MODULE] = package
    messages = importlib.import_module(f"{_PROTOS_MODULE}.FunctionRpc_pb2")
    nullable = importlib.import_module(f"{_PROTOS_MODULE}.shared.NullableTypes_pb2")
    for name in ("NullableString", "NullableBool", "NullableDouble", "NullableTimestamp"):
        setattr(messages, name, getattr(nullable, name))  # the runtime asks `protos` for these
    return messages


@dataclass(frozen=True)
class _WorkerRequest:
    """What the Python proxy worker hands a library runtime: the host's message and context."""

    name: str
    request: Any
    properties: Mapping[str, Any]


class _InvocationLogs(logging.Handler):
    """Collects the records made under each running invocation id (the runtime sets
    `invocation_id_cv` around a synchronous function), as the proxy worker streams them as
    `RpcLog` messages to the host."""

    def __init__(self) -> None:
        super().__init__()
        self._open: dict[str, list[logging.LogRecord]] = {}

    @contextmanager
    def collecting(self, invocation_id: str) -> Iterator[list[logging.LogRecord]]:
        records: list[logging.LogRecord] = []
        self._open[invocation_id] = records
        try:
            yield records
        finally:
            self._open.pop(invocation_id, None)

    def emit(self, record: logging.LogRecord) -> None:
        invocation_id = runtime.invocation_id_cv.get()
        if invocation_id is not None and invocation_id in self._open:
            self._open[invocation_id].append(record)


class Worker:
    """The runtime on its own event loop thread, as in the worker process Azure starts."""

    def __init__(self, app_directory: Path) -> None:
        self.protos = load_protos()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="functions-worker"
        )
        self._thread.start()
        self._loaded: dict[Path, LoadedFunction] = {}
        self._lock = threading.Lock()
        self._logs = _InvocationLogs()
        logging.getLogger().addHandler(self._logs)
        # The runtime's per-invocation system lines are the host's debug output, not the app's.
        logging.getLogger("azure.functions").setLevel(logging.WARNING)
        runtime.start_threadpool_executor()
        answer = self._send(
            runtime.worker_init_request,
            worker_init_request=self.protos.WorkerInitRequest(
                host_version=_HOST_VERSION,
                capabilities=_HOST_CAPABILITIES,
                function_app_directory=str(app_directory),
            ),
        )
        _raise_on_failure(answer.result, WorkerError)
        self.capabilities = dict(answer.capabilities)

    def _send(self, handler: Any, **message: Any) -> Any:
        request = _WorkerRequest(
            name=next(iter(message)),
            request=self.protos.StreamingMessage(request_id=uuid.uuid4().hex, **message),
            properties={"protos": self.protos, "host": "localhost"},
        )
        return asyncio.run_coroutine_threadsafe(handler(request), self._loop).result()

    def load(self, directory: Path, config: Mapping[str, Any]) -> LoadedFunction:
        """Send the `FunctionLoadRequest` the host builds from a folder's function.json."""
        directory = directory.resolve()
        with self._lock:
            if directory in self._loaded:
                return self._loaded[directory]
            function_id = str(uuid.uuid4())
            bindings = list(config["bindings"])
            metadata = self.protos.RpcFunctionMetadata(
                name=directory.name,
                directory=str(directory),
                script_file=str(directory / config.get("scriptFile", "__init__.py")),
                entry_point=config.get("entryPoint", ""),
                function_id=function_id,
                language="python",
                bindings={str(b["name"]): self._binding_info(b) for b in bindings},
                raw_bindings=[json.dumps(b) for b in bindings],
            )
            answer = self._send(
                runtime.function_load_request,
                function_load_request=self.protos.FunctionLoadRequest(
                    function_id=function_id, metadata=metadata
                ),
            )
            _raise_on_failure(answer.result, LoadFailed)
            triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
            if len(triggers) != 1:
                raise LoadFailed(f"{directory.name}: function.json must have exactly one trigger")
            loaded = LoadedFunction(function_id, directory.name, directory, triggers[0])
            self._loaded[directory] = loaded
            return loaded

    def _binding_info(self, binding: Mapping[str, Any]) -> Any:
        info = self.protos.BindingInfo
        direction = str(binding.get("direction", "in")).lower()
        if direction not in _DIRECTIONS:
            raise LoadFailed(f"binding {binding.get('name')!r}: unknown direction {direction!r}")
        data_type = _DATA_TYPES.get(str(binding.get("dataType", "")).lower(), "undefined")
        return info(
            type=binding["type"],
            direction=getattr(info, direction),
            data_type=getattr(info, data_type),
        )

    def invoke(
        self, function: LoadedFunction, trigger: Any, metadata: Mapping[str, Any]
    ) -> Invocation:
        """Send one `InvocationRequest`: the trigger as `TypedData`, its trigger metadata, and
        the `sys` entry the host adds to every invocation's binding data."""
        protos = self.protos
        invocation_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        trigger_metadata = dict(metadata)
        trigger_metadata["sys"] = _json(
            {"MethodName": function.name, "UtcNow": _timestamp(now), "RandGuid": invocation_id}
        )
        with self._logs.collecting(invocation_id) as records:
            answer = self._send(
                runtime.invocation_request,
                invocation_request=protos.InvocationRequest(
                    invocation_id=invocation_id,
                    function_id=function.function_id,
                    input_data=[
                        protos.ParameterBinding(name=function.trigger["name"], data=trigger)
                    ],
                    trigger_metadata={k: _typed(protos, v) for k, v in trigger_metadata.items()},
                ),
            )
        _raise_on_failure(answer.result, FunctionFailed)
        return Invocation(
            invocation_id=invocation_id,
            return_value=_python(answer.return_value) if answer.HasField("return_value") else None,
            outputs={b.name: _python(b.data) for b in answer.output_data},
            logs=tuple(records),
        )

    def invoke_http(
        self,
        function: LoadedFunction,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        route_params: Mapping[str, str],
    ) -> HttpAnswer:
        """An HTTP request as the host sends it to a worker that announced `RawHttpBodyBytes`
        and `RpcHttpBodyOnly`: the body as raw bytes, header names in lower case, the route's
        values both as `params` and as trigger metadata."""
        protos = self.protos
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        http = protos.RpcHttp(
            method=method.upper(),
            url=url,
            headers={name.lower(): value for name, value in headers.items()},
            params=dict(route_params),
            query=query,
        )
        if body:
            http.body.CopyFrom(protos.TypedData(bytes=body))
        answer = self.invoke(function, protos.TypedData(http=http), dict(route_params))
        return _http_answer(answer.return_value)

    def invoke_queue(
        self,
        function: LoadedFunction,
        body: str | bytes,
        *,
        message_id: str,
        dequeue_count: int,
        insertion_time: datetime | None,
        expiration_time: datetime | None,
        next_visible_time: datetime | None,
        pop_receipt: str | None,
    ) -> Invocation:
        """A queue message with the trigger metadata the Storage Queues extension gives."""
        protos = self.protos
        data = (
            protos.TypedData(string=body) if isinstance(body, str) else protos.TypedData(bytes=body)
        )
        metadata: dict[str, Any] = {
            "QueueTrigger": body if isinstance(body, str) else body.decode("utf-8", "replace"),
            "Id": message_id,
            "DequeueCount": _json(dequeue_count),
            "InsertionTime": _json_time(insertion_time),
            "ExpirationTime": _json_time(expiration_time),
            "NextVisibleTime": _json_time(next_visible_time),
            "PopReceipt": pop_receipt,
        }
        return self.invoke(function, data, {k: v for k, v in metadata.items() if v is not None})

    def invoke_blob(
        self,
        function: LoadedFunction,
        path: str,
        data: bytes,
        *,
        uri: str,
        properties: Mapping[str, Any],
        metadata: Mapping[str, str],
    ) -> Invocation:
        """A blob (`path` is container/name) with the trigger metadata the Event Grid source
        gives: `BlobTrigger`, `Uri`, `Properties`, `Metadata`, and the values of the trigger
        path's `{placeholders}`."""
        trigger_metadata: dict[str, Any] = {
            **_path_values(str(function.trigger["path"]), path),
            "BlobTrigger": path,
            "Uri": uri,
            "Properties": _json(dict(properties)),
            "Metadata": _json(dict(metadata)),
        }
        return self.invoke(function, self.protos.TypedData(bytes=data), trigger_metadata)

    def invoke_timer(
        self,
        function: LoadedFunction,
        *,
        past_due: bool,
        last: datetime | None,
        next_due: datetime,
    ) -> Invocation:
        """A timer tick as the host serialises its `TimerInfo`, schedule status included."""
        now = datetime.now(UTC)
        info = {
            "Schedule": {"AdjustForDST": True},
            "ScheduleStatus": {
                "Last": _timestamp(last or datetime.min.replace(tzinfo=UTC)),
                "Next": _timestamp(next_due),
                "LastUpdated": _timestamp(now),
            },
            "IsPastDue": past_due,
        }
        return self.invoke(function, self.protos.TypedData(json=json.dumps(info)), {})


class _Json(str):
    """A trigger metadata value the host sends as `TypedData.json`."""


def _json(value: Any) -> _Json:
    return _Json(json.dumps(value))


def _json_time(value: datetime | None) -> _Json | None:
    return None if value is None else _json(_timestamp(value))


def _timestamp(value: datetime) -> str:
    return (value if value.tzinfo else value.astimezone()).isoformat()  # naive: local time


def _path_values(pattern: str, path: str) -> dict[str, str]:
    """The `{placeholder}` values of a blob trigger path such as `attachments/{name}`."""
    regex = "".join(
        f"(?P<{part[1:-1]}>.+?)" if part.startswith("{") else re.escape(part)
        for part in re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", pattern)
        if part
    )
    match = re.fullmatch(regex, path)
    return dict(match.groupdict()) if match else {}


def _typed(protos: ModuleType, value: Any) -> Any:
    if isinstance(value, _Json):
        return protos.TypedData(json=str(value))
    if isinstance(value, bytes):
        return protos.TypedData(bytes=value)
    return protos.TypedData(string=str(value))


def _python(data: Any) -> Any:
    """A `TypedData` the runtime answered, as a Python value (`RpcHttp` stays a message)."""
    kind = data.WhichOneof("data")
    if kind is None:
        return None
    if kind == "json":
        return json.loads(data.json)
    return getattr(data, kind)


def _http_answer(value: Any) -> HttpAnswer:
    if value is None:  # the host answers an HTTP function that returned nothing with 204
        return HttpAnswer(204, [], b"")
    if isinstance(value, str):
        return HttpAnswer(200, [("content-type", "text/plain; charset=utf-8")], value.encode())
    headers = list(value.headers.items())
    headers += [("set-cookie", _set_cookie(cookie)) for cookie in value.cookies]
    body = _python(value.body) if value.HasField("body") else b""
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return HttpAnswer(int(value.status_code or 200), headers, body)


def _set_cookie(cookie: Any) -> str:
    parts = [f"{cookie.name}={cookie.value}"]
    if cookie.HasField("domain"):
        parts.append(f"Domain={cookie.domain.value}")
    if cookie.HasField("path"):
        parts.append(f"Path={cookie.path.value}")
    if cookie.HasField("max_age"):
        parts.append(f"Max-Age={int(cookie.max_age.value)}")
    if cookie.HasField("secure") and cookie.secure.value:
        parts.append("Secure")
    if cookie.HasField("http_only") and cookie.http_only.value:
        parts.append("HttpOnly")
    return "; ".join(parts)


def _raise_on_failure(result: Any, error: type[WorkerError]) -> None:
    if result.status != result.Success:
        raise error(result.exception.message, result.exception.stack_trace)


_WORKER: Worker | None = None
_WORKER_LOCK = threading.Lock()


def worker(app_directory: Path | None = None) -> Worker:
    """The process's one runtime, initialised on first use."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = Worker(app_directory or Path(__file__).resolve().parent.parent)
        return _WORKER
