"""The `func.Context` a test passes to a function shim, as the Functions worker passes one to
every invocation: the shims declare `context: func.Context` (the worker refuses `Context | None`),
and `shared.logs.invocation` logs under its invocation id."""

import threading
import uuid

import azure.functions as func
from azure.functions._abc import RetryContext, RpcException, TraceContext


class _NoException(RpcException):
    """What the worker reports as the previous attempt's exception on a first attempt."""

    @property
    def source(self) -> str:
        return ""

    @property
    def stack_trace(self) -> str:
        return ""

    @property
    def message(self) -> str:
        return ""


class _FirstAttempt(RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> RpcException:
        return _NoException()


class _Trace(TraceContext):
    def __init__(self) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _ThreadLocalStorage(threading.local):
    invocation_id: str | None = None


class InvocationContext(func.Context):
    """One invocation's context: a fresh invocation id and trace, a first attempt."""

    def __init__(self, function_name: str = "test") -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._trace = _Trace()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return _ThreadLocalStorage

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> TraceContext:
        return self._trace

    @property
    def retry_context(self) -> RetryContext:
        return _FirstAttempt()


def invocation_context(function_name: str = "test") -> func.Context:
    """A new invocation's context, for a shim's `context` argument."""
    return InvocationContext(function_name)
