"""Extraction's local backend: pipeline.extract_step.process_clip over the clips, in worker processes of this machine.

    run_pool(jobs, settings, workers=2, on_result=callback)

Workers fork from a server that has already loaded the heavy libraries and the text extractor
(pipeline._preload), each running torch on one thread. A worker that dies (a crash in a native library, the
out-of-memory killer) breaks its pool: the clips not finished are retried in a fresh pool, and on the last
try each clip gets a pool of its own, so only a clip that kills its worker fails.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator

from pipeline.extract_step import THREAD_ENV, init_worker, process_clip
from pipeline.lifeline import PARENT_ENV, die_with_parent

log = logging.getLogger(__name__)
OnResult = Callable[[int, dict], bool]
DIED = "a worker process died on it repeatedly (crash or out of memory)"


@contextlib.contextmanager
def _thread_env(extra: dict[str, str] | None = None) -> Iterator[None]:
    """Set THREAD_ENV (and `extra`) in this process while worker processes start (they inherit it), then restore."""
    env = {**THREAD_ENV, **(extra or {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_pool(jobs: list[tuple[str, bool]], settings: dict, workers: int, on_result: OnResult) -> None:
    """Run process_clip over `jobs` ((clip path, audio_only) each), calling on_result(index, outcome) as each
    finishes; on_result returns False to stop. workers <= 1 runs the clips in this process."""
    if workers <= 1:
        init_worker(settings, False, logging.getLogger().getEffectiveLevel())
        for i, (clip, audio_only) in enumerate(jobs):
            if not on_result(i, process_clip(clip, audio_only)):
                return
        return
    pending = list(range(len(jobs)))
    pending.sort(key=lambda i: -file_size(jobs[i][0]))  # longest files first packs the workers better
    ctx = _worker_context(settings)
    _start_server(ctx)
    for attempt in range(3):
        # The last try gives each clip a pool of its own, so only a clip that kills its worker fails,
        # not the clips that happened to share a pool with it.
        isolate = attempt == 2
        done: set[int] = set()
        for group in ([[i] for i in pending] if isolate else [pending]):
            pool = ProcessPoolExecutor(min(workers, len(group)), mp_context=ctx, initializer=_init_pool_worker,
                                       initargs=(settings, logging.getLogger().getEffectiveLevel()))
            try:
                # workers start on the first submissions; an interrupt waits until they have (see _interrupts_deferred)
                with _thread_env(getattr(ctx, "preload_env", None)), _interrupts_deferred():
                    futures = {pool.submit(process_clip, *jobs[i]): i for i in group}
                for fut in as_completed(futures):
                    i = futures[fut]
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        break
                    done.add(i)
                    if not on_result(i, outcome):
                        return
            except BaseException:  # Ctrl-C, SIGTERM (cli.py), an error: the workers stop now, not after their clip
                _terminate(pool)
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        pending = [i for i in pending if i not in done]
        if not pending:
            return
        if attempt < 2:
            log.warning("a worker process died (crash or out of memory); retrying %d clip(s) in a fresh pool", len(pending))
    for i in pending:
        if not on_result(i, {"status": "failed", "reason": f"{jobs[i][0]}: {DIED}"}):
            return


def _start_server(ctx: multiprocessing.context.BaseContext) -> None:
    """Start the fork server (it spends seconds loading libraries) with a process that carries nothing, so the
    pool's workers start in a fraction of a second and Ctrl-C meanwhile stops the command at once."""
    if ctx.get_start_method() != "forkserver":
        return
    with _thread_env(getattr(ctx, "preload_env", None)):
        proc = ctx.Process(target=os.getpid)
        proc.start()
    proc.join()


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM that arrive while the block runs take effect right after it.

    Starting a pool worker is not atomic: the fork server forks the child, which then unpickles the pool's
    queues. An interrupt in between would shut the pool down and unlink the queues' semaphores under the
    starting child, which then prints a traceback after "interrupted" and never becomes a worker that
    _terminate could stop. Deferring the signal's handler (it always runs in the main thread) for the
    moment the workers take to start closes that window.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: a handler not set from Python
        if caught:
            signal.raise_signal(caught[0])  # now handled as it would have been: KeyboardInterrupt (cli.py)


def _init_pool_worker(settings: dict, log_level: int) -> None:
    """A pool worker's start: die with the fork server that forked it (pipeline.lifeline), then init_worker."""
    server = getattr(sys.modules.get("pipeline._preload"), "SERVER_PID", None)
    die_with_parent(server if server is not None and server != os.getpid() else os.getppid())
    init_worker(settings, True, log_level)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """End a pool's worker processes at once (SIGTERM; they hold nothing that needs a clean exit)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.terminate()
        except (OSError, ValueError, AttributeError):  # already gone
            pass


def _worker_context(settings: dict) -> multiprocessing.context.BaseContext:
    """Workers fork from a clean single-threaded server that has the heavy libraries and the text vectors
    loaded (pipeline._preload): they start in a fraction of a second and share those pages. Forking this
    process instead could deadlock once torch or mediapipe run threads here; where forkserver does not
    exist (Windows, macOS defaults aside), workers are spawned and load everything themselves."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from pipeline._preload import ENV

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline._preload"])
    # read by the server when it starts (first pool of this process); later pools reuse the warm server
    ctx.preload_env = {ENV: json.dumps({"text": settings["choices"]["text"]}, default=str),  # type: ignore[attr-defined]
                       PARENT_ENV: str(os.getpid())}
    return ctx


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under taskset or a container limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
