"""The web server's work queue: a bounded number of requests in the building, predictions on 1-2 workers.

    queue = PredictionQueue(start_workers(checkpoint, 1), max_queue=4)
    with queue.admit() as slot:                  # ApiError 503 when workers + max_queue requests are already in
        ...receive the upload...
        result = await slot.run(lambda worker: worker.predict(clip), request.is_disconnected)
    queue.stop()                                 # at shutdown (signal-safe): running predictions killed, no new ones

A request holds a slot from before its upload is read until its prediction has finished, so the disk the uploads
take and the work waiting are both bounded: at most `workers + max_queue` requests at once, the others get 503 at
once (with Retry-After) instead of piling up. Each worker is used by one job at a time, from a thread of its own:
a pipeline.serving.worker.PredictionWorker (a child process with its own copy of the models, killed at its time
limit or when the server stops), or, in tests, any object with a `predict(clip, transcript=None)` method (which
cannot be stopped midway).

A job whose client went away while it waited is dropped before it starts; one already running finishes and the
request's clean-up runs after it, so its files are removed then. After stop(), jobs that have not started are
refused with Stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue as stdqueue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterator, TypeVar

from pipeline.serving.upload import ApiError
from pipeline.serving.worker import Stopped

log = logging.getLogger(__name__)

T = TypeVar("T")
POLL_S = 0.25  # how often a waiting request checks whether its client is still there


class Cancelled(Exception):
    """The client left before its job started."""


class PredictionQueue:
    """Admission control and worker threads for predictions. `predictors`: one per worker (1 or 2)."""

    def __init__(self, predictors: list[Any], max_queue: int = 4):
        if not 1 <= len(predictors) <= 8 or max_queue < 0:
            raise ValueError(f"need 1-8 predictors and max_queue >= 0, got {len(predictors)} and {max_queue}")
        self.members = list(predictors)
        self.workers = len(predictors)
        self.stopping = False
        self.max_queue = max_queue
        self._free: stdqueue.SimpleQueue = stdqueue.SimpleQueue()
        for p in predictors:
            self._free.put(p)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="predict")
        self._lock = threading.Lock()
        self._inside = 0  # admitted requests: uploading, waiting or running
        self._running = 0
        self.done = 0
        self.refused = 0
        self.started = time.time()

    @property
    def capacity(self) -> int:
        return self.workers + self.max_queue

    def state(self) -> dict[str, int]:
        """{"workers", "running", "waiting" (admitted, not yet running: uploading or queued), "max_queue", "done", "refused"}."""
        with self._lock:
            return {"workers": self.workers, "running": self._running, "waiting": self._inside - self._running,
                    "max_queue": self.max_queue, "done": self.done, "refused": self.refused}

    @contextlib.contextmanager
    def admit(self) -> Iterator["Slot"]:
        """Hold one slot for a request; ApiError 503 when all are taken. The slot is freed on exit, or, when a job
        submitted under it is still running then, when that job ends."""
        with self._lock:
            if self._inside >= self.capacity:
                self.refused += 1
                raise ApiError(503, "busy", f"the server is busy ({self.workers} clip{'s' if self.workers > 1 else ''} in work and "
                               f"{self.max_queue} waiting); try again in a minute", {"retry_after": 30})
            self._inside += 1
        slot = Slot(self)
        try:
            yield slot
        finally:
            slot.leave()

    def _release(self) -> None:
        with self._lock:
            self._inside -= 1

    def _job(self, fn: Callable[[Any], T], cancelled: threading.Event) -> T:
        if cancelled.is_set():
            raise Cancelled()
        if self.stopping:
            raise Stopped("the server is stopping")
        predictor = self._free.get_nowait()  # never empty: one predictor per worker thread
        with self._lock:
            self._running += 1
        try:
            return fn(predictor)
        finally:
            self._free.put(predictor)
            with self._lock:
                self._running -= 1
                self.done += 1

    def stop(self) -> None:
        """Refuse jobs that have not started and kill the running ones (workers that can be stopped). Safe in a signal
        handler: it only sets flags and sends signals."""
        self.stopping = True
        for member in self.members:
            stop = getattr(member, "stop", None)
            if stop is not None:
                stop()

    def shutdown(self) -> None:
        """stop(), drop jobs that have not started, wait for the running ones to end, and close the workers (their
        processes reaped, their temporary folders removed)."""
        self.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)
        for member in self.members:
            close = getattr(member, "close", None)
            if close is not None:
                close()


class Slot:
    """One admitted request; `run` submits its job."""

    def __init__(self, owner: PredictionQueue):
        self.owner = owner
        self.future: Future | None = None
        self._after: list[Callable[[], None]] = []
        self._left = False

    def after(self, fn: Callable[[], None]) -> None:
        """Run `fn` when the request is over: when the slot is left, or after its job when that runs longer."""
        self._after.append(fn)

    def _finish(self, *_: Any) -> None:
        for fn in self._after:
            try:
                fn()
            except Exception:  # clean-up must not hide the request's outcome
                log.exception("clean-up after a request failed")
        self.owner._release()

    def leave(self) -> None:
        if self._left:
            return
        self._left = True
        if self.future is not None and not self.future.done():
            self.future.add_done_callback(self._finish)  # still running: clean up when it ends
        else:
            self._finish()

    async def run(self, fn: Callable[[Any], T], is_disconnected: Callable[[], Any] | None = None) -> T:
        """Run fn(predictor) on a worker thread and return its result. While it waits, `is_disconnected` (an async
        callable) is polled: when the client has gone, a job not yet started is dropped (Cancelled)."""
        cancelled = threading.Event()
        self.future = self.owner._executor.submit(self.owner._job, fn, cancelled)
        wrapped = asyncio.wrap_future(self.future)
        try:
            while True:
                done, _ = await asyncio.wait({wrapped}, timeout=POLL_S)
                if done:
                    return wrapped.result()
                if is_disconnected is not None and await is_disconnected():
                    raise Cancelled()
        except (Cancelled, asyncio.CancelledError):  # the client left, or the server is stopping this request
            cancelled.set()
            self.future.cancel()  # only succeeds when it has not started; a running job ends, then leave() cleans up
            wrapped.cancel()
            raise


__all__ = ["Cancelled", "PredictionQueue", "Slot"]
