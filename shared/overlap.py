"""One small thread pool for overlapping a request's independent work: storage calls (network
I/O) and hashing (hashlib releases the GIL), which run beside the request's own thread.

Built on first use, never at import. A task runs in a copy of the submitting context, so its log
lines carry the request's correlation id. `later` is for work whose loss costs nothing but a
later clean-up (the sweep settles whatever it did not do), never for work an answer relies on.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
# Each request overlaps at most two calls; requests beyond what this serves at once wait a moment
# for a worker (their own thread would otherwise do the work in turn anyway).
WORKERS = 32
log = logging.getLogger(__name__)
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="overlap")
    return _pool


def beside[**P, T](fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """Start `fn` now on another thread; `.result()` waits for it (and raises what it raised)."""
    context = contextvars.copy_context()
    return _workers().submit(lambda: context.run(fn, *args, **kwargs))


def later[**P](fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
    """Run `fn` after the answer, on another thread; a failure is logged, not raised."""
    beside(fn, *args, **kwargs).add_done_callback(_log_failure)


def _log_failure(done: Future[object]) -> None:
    error = done.exception()
    if error is not None:
        log.warning("background work failed: %s", error, exc_info=error)
