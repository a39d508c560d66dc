"""Extraction's local backend: pipeline.extraction.step.process_clip over the clips, in worker processes of this machine.

    run_pool(jobs, settings, workers=2, on_result=callback)

Workers fork from a server (multiprocessing's forkserver) that has already imported the heavy libraries the
chosen extractors use (torch, spaCy, gensim, mediapipe, openSMILE, ...): they start in a fraction of a second and
share those pages. Each worker runs one thread (its share of the cores), receives the run's ExtractSettings with
every clip and builds its extractors on the first one (ExtractSettings.build). A worker that dies (a crash in a
native library, the out-of-memory killer) breaks its pool: the clips not finished are retried in a fresh pool,
and on the last try each clip gets a pool of its own, so only a clip that kills its worker fails.

Nothing outlives the command: the fork server exits when the command's end of its pipe closes (multiprocessing's
own rule), and each worker asks the kernel to kill it when the fork server dies (pipeline.extraction.lifeline).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator

from pipeline.extraction.lifeline import die_with_parent, parent_of
from pipeline.extraction.settings import ExtractSettings
from pipeline.extraction.step import process_clip

log = logging.getLogger(__name__)
OnResult = Callable[[int, dict], bool]
DIED = "a worker process died on it repeatedly (crash or out of memory)"
# One thread per worker, since the workers already fill the cores. Set in this process while the fork server
# starts (it and every worker inherit them), so numpy's BLAS and torch, imported there, obey from the start.
THREAD_ENV = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS")}
# the libraries the fork server imports before forking workers: whichever of these are installed. faster-whisper
# reads HF_HUB_OFFLINE when imported, so the server starts with it set (its model is a local folder).
PRELOAD = ("numpy", "torch", "spacy", "gensim", "opensmile", "pocketsphinx", "ffmpeg", "mediapipe", "ai_edge_litert.interpreter",
           "faster_whisper", "tokenizers", "safetensors")
SERVER_ENV = {"HF_HUB_OFFLINE": "1"}


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


def run_pool(jobs: list[tuple[str, bool]], settings: ExtractSettings, workers: int, on_result: OnResult) -> None:
    """Run process_clip with `settings` over `jobs` ((clip path, audio_only) each), calling on_result(index, outcome)
    as each finishes; on_result returns False to stop. workers <= 1 runs the clips in this process, on all cores."""
    if workers <= 1:
        for i, (clip, audio_only) in enumerate(jobs):
            if not on_result(i, process_clip(settings, clip, audio_only)):
                return
        return
    pending = list(range(len(jobs)))
    pending.sort(key=lambda i: -file_size(jobs[i][0]))  # longest files first packs the workers better
    ctx = _worker_context()
    _start_server(ctx)
    for attempt in range(3):
        # The last try gives each clip a pool of its own, so only a clip that kills its worker fails,
        # not the clips that happened to share a pool with it.
        isolate = attempt == 2
        done: set[int] = set()
        for group in ([[i] for i in pending] if isolate else [pending]):
            pool = ProcessPoolExecutor(min(workers, len(group)), mp_context=ctx, initializer=_init_pool_worker,
                                       initargs=(os.getpid(), logging.getLogger().getEffectiveLevel()))
            try:
                # workers start on the first submissions; an interrupt waits until they have (see _interrupts_deferred)
                with _thread_env(SERVER_ENV), _interrupts_deferred():
                    futures = {pool.submit(process_clip, settings, *jobs[i], threads=1): i for i in group}
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
    with _thread_env(SERVER_ENV):
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


def _init_pool_worker(command: int, log_level: int) -> None:
    """A pool worker's start: die with the process that forked it (the fork server, whose parent is the command;
    spawned workers are the command's own children), one thread, the command's log level."""
    parent = os.getppid()
    if die_with_parent(parent) and parent != command and parent_of(parent) != command:
        os._exit(1)  # the fork server died before the request took effect (this worker was re-parented): no signal will come
    if "torch" in sys.modules:  # imported by the fork server before THREAD_ENV could matter to it
        sys.modules["torch"].set_num_threads(1)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")


def _terminate(pool: ProcessPoolExecutor) -> None:
    """End a pool's worker processes at once (SIGTERM; they hold nothing that needs a clean exit)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.terminate()
        except (OSError, ValueError, AttributeError):  # already gone
            pass


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers fork from a clean single-threaded server that has the heavy libraries imported (PRELOAD): they
    start in a fraction of a second and share those pages. Forking this process instead could deadlock once
    torch or mediapipe run threads here; where forkserver does not exist, workers are spawned and import
    everything themselves."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # read when the server starts (the first pool of this process); later pools reuse the warm server
    ctx.set_forkserver_preload([m for m in PRELOAD if _installed(m)])
    return ctx


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


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
