"""Training fan-out on Ray: the independent runs of one `train` command (--emotion all, --seeds, --grid) as Ray
tasks, all at once.

    results = run_plan(data, runs, ensembles, runner=RayRunner("10.0.0.5:6379"))

The dataset goes to the cluster's object store once and every task reads it from there. Each task asks for
one CPU and, when the cluster has GPUs, one GPU (`gpus_per_run`, which may be a fraction to share a GPU); it
trains with pipeline.training.train.run_training into a temporary folder on its worker and returns that folder's
files, which the driver writes into the run's folder (metrics.json last, as run_training writes it): the run
folders on the driver are what a local run writes, and nothing needs to be shared between the machines.
With --resume, a run's folder (its last.pt) is sent to the worker and the run continues there. A driver that
is stopped keeps the runs that had finished; the runs in flight start again, from the last.pt they were
given, on the next --resume. Ensembles and grid selections are then built on the driver by run_plan.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from core.errors import UserError
from core.fileio import atomic_write_bytes
from core.options import GPUS
from core.progress import Progress
from pipeline.cluster import LOCAL, ray_cluster, task_failure, user_error_of

log = logging.getLogger(__name__)
LAST_FILE = "metrics.json"  # written last: run_plan and resume read a run as finished once it is there


class RayRunner:
    """A runner for pipeline.training.runs.run_plan that trains all the runs of a plan as Ray tasks.

    address: "local" (a Ray instance on this machine with `workers` CPUs), "auto" or HOST:PORT.
    gpus_per_run: GPUs each run asks for; None: 1 when the cluster has GPUs, else 0 (CPU).
    """

    def __init__(self, address: str | None = LOCAL, gpus_per_run: float | None = None, workers: int | None = None) -> None:
        if gpus_per_run is not None:
            GPUS.check(gpus_per_run, "--gpus-per-run")
        self.address, self.gpus_per_run, self.workers = address or LOCAL, gpus_per_run, workers

    def __call__(self, ds: dict, spec: Any, progress: Progress | None, resume: bool) -> dict:
        return self.run_all(ds, [(spec, resume)], progress, None)[spec.name]

    def run_all(self, ds: dict, jobs: list[tuple[Any, bool]], progress: Progress | None,
                on_done: Callable[[str, dict], None] | None) -> dict[str, dict]:
        """Train every (RunSpec, resume) of `jobs` as a Ray task; write each run folder here as its task
        finishes, then call on_done(name, metrics). progress(done, total) counts finished runs."""
        import ray
        from ray import exceptions as rex

        with ray_cluster(self.address, num_cpus=self.workers) as cluster:
            gpus = self.gpus_per_run if self.gpus_per_run is not None else (1.0 if cluster.gpus else 0.0)
            if gpus > cluster.gpus:
                raise UserError(f"--gpus-per-run {gpus:g}: {cluster.describe()} has {cluster.gpus:g} GPUs; train on CPUs with --gpus-per-run 0")
            if not gpus and any(spec.tcfg.device == "cuda" for spec, _ in jobs):
                raise UserError("--device cuda with --ray: the runs get no GPU (--gpus-per-run 0, or a cluster without GPUs); use --device auto or cpu")
            log.info("training %d run(s) on %s, %s per run", len(jobs), cluster.describe(), f"{gpus:g} GPU" if gpus else "1 CPU")
            ds_ref = ray.put(ds)
            task = ray.remote(_train_task).options(num_cpus=1, num_gpus=gpus, max_retries=1, retry_exceptions=False)
            pending = {}
            for spec, resume in jobs:
                files = _read_folder(spec.out) if resume and spec.out.is_dir() else {}
                pending[task.remote(ds_ref, spec, resume, files)] = spec
            results: dict[str, dict] = {}
            if progress is not None:
                progress(0, len(jobs), stage=f"runs on Ray ({len(jobs)})")
            try:
                while pending:
                    (ref,), _ = ray.wait(list(pending), num_returns=1)
                    spec = pending.pop(ref)
                    try:
                        metrics, files = ray.get(ref)
                    except rex.RayTaskError as e:
                        if user_error_of(e) is not None:
                            raise user_error_of(e) from None
                        raise RuntimeError(f"{spec.out}: training failed on a Ray worker ({task_failure(e.cause or e)})") from e
                    except rex.RayError as e:
                        raise RuntimeError(f"{spec.out}: training failed on Ray ({task_failure(e)}); rerun with --resume") from e
                    _write_folder(spec.out, files)
                    results[spec.name] = metrics
                    if on_done is not None:
                        on_done(spec.name, metrics)
                    if progress is not None:
                        progress(len(results), len(jobs), stage=f"runs on Ray ({len(jobs)})")
            finally:
                for ref in pending:
                    ray.cancel(ref, force=True)
        return results


def _read_folder(folder: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file below `folder`."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Write a run's files below `folder`, each atomically, metrics.json last."""
    for rel in sorted(files, key=lambda r: r == LAST_FILE):
        atomic_write_bytes(folder / rel, files[rel])


def _train_task(ds: dict, spec: Any, resume: bool, files: dict[str, bytes]) -> tuple[dict, dict[str, bytes]]:
    """In a Ray worker: run_training of `spec` in a temporary folder seeded with `files` (the run folder, to
    resume); returns (metrics, the folder's files). A UserError is raised again naming the driver's folder."""
    import ray

    if not ray.get_gpu_ids():  # a run given no GPU must not take one Ray has not assigned to it
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    from pipeline.training.train import run_training

    with tempfile.TemporaryDirectory(prefix="multilogue-run-") as tmp:
        out = Path(tmp) / "run"
        for rel, data in files.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(data)
        try:
            metrics = run_training(ds, out, spec.tcfg, spec.model_overrides, resume=resume, source=spec.source)
        except UserError as e:
            raise type(e)(str(e).replace(str(out), str(spec.out))) from None
        return metrics, _read_folder(out)
