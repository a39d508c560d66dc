"""Extraction's Ray backend: one Ray task per clip, each running pipeline.extraction.step.process_clip.

    with ray_cluster("10.0.0.5:6379") as cluster:
        run_ray(jobs, settings, on_result, cluster)

Each task gets the run's ExtractSettings (put in Ray's object store once) and runs in a Ray worker process, which
keeps the extractors it built between tasks (ExtractSettings.build, rebuilt only for another run's choices), so
libraries, vectors and models load once per worker process, not per clip. Two ways to reach the clips:

- shared (the default): the clips and the cache folder are on a path every node mounts at the same place
  (NFS, a cluster file system, or one machine). A task reads the clip there, looks it up in the cache and
  writes the cache entry itself, exactly as a local worker does.
- shipped (`ship=True`, `--ray-ship-clips`): the driver hashes each clip, serves cached clips from its own
  cache, and sends the others' bytes (with the transcript beside them) to the workers, which extract from a
  temporary copy; the driver writes the cache entries. Nothing needs to be shared; the clips in flight are
  held in memory.

Both use the same cache key, so a cache filled on a cluster serves a local run and the other way round.
Failure reasons and log lines name the clip as the driver spells it, as locally (a task works from the
driver's working folder, or its mirror under the temporary folder of shipped clips). A worker process that
dies on a clip (a crash in a native library, the out-of-memory killer) is replaced and the clip retried
once; if it dies again only that clip fails. Log records of our packages in the workers are sent back with
each result and logged here.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from core.errors import ExtractionError, UserError
from pipeline.cluster import PACKAGES, Cluster, task_failure, user_error_of
from pipeline.extraction.cache import cache_path, clip_key, read_cache, store
from pipeline.extraction.pool import DIED, THREAD_ENV, file_size
from pipeline.extraction.settings import ExtractSettings
from pipeline.extraction.step import process_clip

log = logging.getLogger(__name__)
OnResult = Callable[[int, dict], bool]


def run_ray(jobs: list[tuple[str, bool]], settings: ExtractSettings, on_result: OnResult, cluster: Cluster, *, ship: bool = False,
            workers: int | None = None) -> dict[str, int]:
    """Run process_clip over `jobs` ((clip path, audio_only) each) as Ray tasks on `cluster` (connected, see
    pipeline.cluster.ray_cluster), calling on_result(index, outcome) as each finishes (it returns False to
    stop; tasks in flight are then cancelled).

    workers caps the clips in flight (default: twice the cluster's CPUs, so the next clip waits beside each
    busy worker). Returns {"host:pid": times that worker process built the extractors}. Raises UserError when,
    without `ship`, a worker cannot see the clips or the cache folder.
    """
    import ray

    limit = int(workers) if workers else max(2, 2 * int(cluster.cpus))
    log.info("extracting %d clips on %s%s", len(jobs), cluster.describe(), ", clips shipped" if ship else "")
    _pickle_by_value(settings)
    settings_ref = ray.put(settings)
    levels = {p: logging.getLogger(p).getEffectiveLevel() for p in PACKAGES}
    task = ray.remote(_clip_task).options(num_cpus=1, max_retries=1, retry_exceptions=False)
    cwd = os.getcwd()  # clips are spelled relative to it, as the user gave the folder
    if not ship:
        Path(settings.cache_dir).mkdir(parents=True, exist_ok=True)  # a worker that cannot see it says so
    order = sorted(range(len(jobs)), key=lambda i: -file_size(jobs[i][0]))  # longest first packs workers better
    in_flight: dict[Any, tuple[int, str | None]] = {}
    builds: dict[str, int] = {}
    try:
        while order or in_flight:
            while order and len(in_flight) < limit:
                i = order.pop(0)
                clip, audio_only = jobs[i]
                if not ship:
                    in_flight[task.remote(settings_ref, levels, cwd, clip, audio_only, None)] = (i, None)
                    continue
                try:
                    _, key, transcript = clip_key(clip, audio_only, settings)
                except ExtractionError as e:
                    if not on_result(i, {"status": "failed", "reason": str(e)}):
                        return builds
                    continue
                cached = read_cache(cache_path(settings.cache_dir, key))
                if cached is not None:
                    if not on_result(i, {"status": "ok", "cached": True, "result": cached}):
                        return builds
                    continue
                files = {Path(p).name: Path(p).read_bytes() for p in (clip, transcript) if p is not None}
                in_flight[task.remote(settings_ref, levels, cwd, clip, audio_only, ray.put(files))] = (i, key)
            if not in_flight:
                continue
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            i, key = in_flight.pop(ref)
            outcome = _collect(ref, jobs[i][0], builds)
            if outcome["status"] == "config":
                raise UserError(outcome["reason"])
            if key is not None and outcome["status"] == "ok" and not outcome["cached"]:
                store(cache_path(settings.cache_dir, key), outcome["result"], jobs[i][0])
            if not on_result(i, outcome):
                return builds
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)
    return builds


def _collect(ref: Any, clip: str, builds: dict[str, int]) -> dict:
    """The outcome of one finished task; its log records are logged here and its worker counted."""
    import ray
    from ray import exceptions as rex

    try:
        reply = ray.get(ref)
    except rex.WorkerCrashedError:
        return {"status": "failed", "reason": f"{clip}: {DIED}"}
    except rex.RayTaskError as e:  # raised outside process_clip, which catches everything a clip can raise
        if user_error_of(e) is not None:
            raise user_error_of(e) from None
        return {"status": "failed", "reason": f"{clip}: the Ray task failed ({task_failure(e.cause or e)})"}
    except rex.RayError as e:  # out of memory, a node lost, ...
        return {"status": "failed", "reason": f"{clip}: the Ray task failed ({task_failure(e)})"}
    for name, level, message in reply["logs"]:
        logging.getLogger(name).handle(logging.makeLogRecord({"name": name, "levelno": level, "levelname": logging.getLevelName(level),
                                                             "msg": message, "args": None}))
    builds[reply["worker"]] = max(builds.get(reply["worker"], 0), reply["builds"])
    return reply["outcome"]


def _pickle_by_value(settings: ExtractSettings) -> None:
    """Extractors registered at run time from a module the workers do not have (a script, a test) travel by
    value, so the workers can build them; those of our packages and installed ones travel by reference."""
    from ray import cloudpickle

    for _, factory in settings.factories.values():
        module = sys.modules.get(getattr(factory, "__module__", "") or "")
        root = (module.__name__.split(".")[0] if module else "")
        if module is None or root in PACKAGES or module.__name__ == "__main__" or _installed(module):
            continue
        cloudpickle.register_pickle_by_value(module)


def _installed(module: Any) -> bool:
    path = str(getattr(module, "__file__", "") or "")
    return "site-packages" in path or "dist-packages" in path


# ------------------------------------------------------------------ in the Ray worker process
class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _clip_task(settings: ExtractSettings, levels: dict[str, int], cwd: str, clip: str, audio_only: bool,
               shipped: dict[str, bytes] | None) -> dict:
    """One clip in a Ray worker: process_clip on the shared path, or on a copy of the shipped files (the clip
    and its transcript) laid out under a temporary folder as they are on the driver. `clip` is spelled as on
    the driver, relative to its working folder `cwd`, so failure reasons and log lines read as locally.
    Returns {"outcome", "logs": [(logger, level, message)], "worker": "host:pid", "builds"}; outcome["status"]
    "config" means the node cannot see the shared clips or cache folder (the driver stops with that message)."""
    host = socket.gethostname()
    handler = _Records()
    loggers = [logging.getLogger(p) for p in PACKAGES]
    for lg in loggers:
        lg.setLevel(levels.get(lg.name, logging.INFO))
        lg.addHandler(handler)
    here, root = os.getcwd(), ""
    try:
        _one_thread()
        if shipped is None:
            outcome = _shared(settings, cwd, clip, audio_only, host)
        else:
            with tempfile.TemporaryDirectory(prefix="multilogue-clip-") as root:
                mirror = _under(root, os.path.dirname(os.path.join(cwd, clip)))
                os.makedirs(mirror, exist_ok=True)
                for name, data in shipped.items():
                    with open(os.path.join(mirror, name), "wb") as f:
                        f.write(data)
                os.makedirs(_under(root, cwd), exist_ok=True)
                os.chdir(_under(root, cwd))
                outcome = process_clip(settings, clip if not os.path.isabs(clip) else _under(root, clip), audio_only, threads=1, cache=False)
    finally:
        os.chdir(here)
        for lg in loggers:
            lg.removeHandler(handler)
    if root:  # the temporary folder's paths, spelled as the driver's
        if outcome.get("reason"):
            outcome["reason"] = outcome["reason"].replace(root, "")
        handler.records = [(n, lv, m.replace(root, "")) for n, lv, m in handler.records]
    return {"outcome": outcome, "logs": handler.records, "worker": f"{host}:{os.getpid()}", "builds": settings.builds()}


def _one_thread() -> None:
    """A Ray worker takes one CPU: one thread for BLAS, torch and ffmpeg."""
    os.environ.update(THREAD_ENV)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _shared(settings: ExtractSettings, cwd: str, clip: str, audio_only: bool, host: str) -> dict:
    """process_clip on the path every node shares, from the driver's working folder (for relative paths)."""
    where = os.path.join(cwd, clip)
    if not os.path.isfile(where):
        return {"status": "config", "reason": f"{clip}: not found on Ray node {host}; put the clips on a path every node "
                                              "mounts at the same place, or pass --ray-ship-clips"}
    if not os.path.isdir(os.path.join(cwd, settings.cache_dir)):
        return {"status": "config", "reason": f"{settings.cache_dir}: the cache folder is not on Ray node {host}; give "
                                              "--cache-dir a folder every node shares, or pass --ray-ship-clips"}
    os.chdir(cwd)
    return process_clip(settings, clip, audio_only, threads=1)


def _under(root: str, path: str) -> str:
    """`path` (absolute) re-rooted under `root`."""
    return os.path.join(root, os.path.abspath(path).lstrip(os.sep))
