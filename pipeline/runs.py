"""The independent trainings of one `cli.py train` command, and what is built from them afterwards.

    runs, ensembles = plan_runs("emotion", Path("runs/emo"), emotion="all", seeds=[1, 2, 3])
    results = run_plan(data, runs, ensembles)

One command may ask for several trainings: `--emotion all` (one run per emotion) and `--seeds 1,2,3` (one run
per seed, combined into an ensemble). `plan_runs` lists them as RunSpecs and the ensembles to assemble;
`run_plan` trains each (in this process, one after another; `runner` lets another backend run them), then
writes each ensemble: one checkpoint holding the members (model.checkpoint), evaluated as one model (the mean
of the members' probabilities or scores) on the validation split the members share and on the test split.

Layout: `OUT/` for one run; `OUT/<emotion>/` with --emotion all; with --seeds the ensemble's checkpoint.pt
and metrics.json are in that folder and its members in `seed-<n>/` below it (predict and evaluate treat a
folder with a checkpoint.pt as one model and do not look further down).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from data.dataset import EMOTIONS, load_dataset
from data.errors import CheckpointError
from model.config import TrainConfig

log = logging.getLogger(__name__)
Progress = Callable[..., None]


@dataclass
class RunSpec:
    """One training: `name` is how results are keyed ("regression", "fear", "fear/seed-2")."""

    name: str
    out: Path
    tcfg: TrainConfig
    model_overrides: dict = field(default_factory=dict)


@dataclass
class EnsembleSpec:
    name: str
    out: Path
    members: list[str]  # RunSpec names
    seeds: list[int]


def plan_runs(task: str, out: Path, *, emotion: str | None = None, seeds: list[int] | None = None, train: dict | None = None,
              model_overrides: dict | None = None) -> tuple[list[RunSpec], list[EnsembleSpec]]:
    """The runs of one command. train: TrainConfig overrides (None values ignored); with `seeds`, every member
    shares the validation split of `train["seed"]` (default 0), so the ensemble's validation figures are honest."""
    train = {k: v for k, v in (train or {}).items() if v is not None}
    emotions = list(EMOTIONS) if emotion == "all" else [emotion]
    runs: list[RunSpec] = []
    ensembles: list[EnsembleSpec] = []
    for e in emotions:
        base = out / e if emotion == "all" else out
        name = e or task
        if not seeds:
            runs.append(RunSpec(name, base, TrainConfig.for_task(task, emotion=e, **train), dict(model_overrides or {})))
            continue
        split_seed = train.get("seed", 0)
        members = []
        for s in seeds:
            tcfg = TrainConfig.for_task(task, emotion=e, **{**train, "seed": s, "split_seed": split_seed})
            runs.append(RunSpec(f"{name}/seed-{s}", base / f"seed-{s}", tcfg, dict(model_overrides or {})))
            members.append(runs[-1].name)
        ensembles.append(EnsembleSpec(name, base, members, list(seeds)))
    return runs, ensembles


def run_local(data: Any, spec: RunSpec, progress: Progress | None, resume: bool) -> dict:
    from pipeline.train import run_training

    return run_training(data, spec.out, spec.tcfg, spec.model_overrides, progress=progress, resume=resume)


def run_plan(data: str | Path | dict, runs: list[RunSpec], ensembles: list[EnsembleSpec], *, resume: bool = False,
             progress: Progress | None = None, on_done: Callable[[str, dict], None] | None = None,
             runner: Callable[..., dict] = run_local) -> dict[str, dict]:
    """Train every run, then assemble the ensembles. Returns {name: metrics} for runs and ensembles.

    With `resume`, a run with a resume state continues from it (a finished one only re-reads its best
    checkpoint and rewrites its metrics) and a run not begun starts; with a single run, resume without a
    resume state is an error (nothing to resume).
    """
    ds = data if isinstance(data, dict) else load_dataset(data)
    results: dict[str, dict] = {}
    for spec in runs:
        again = resume and (len(runs) == 1 or (spec.out / "last.pt").exists())
        results[spec.name] = runner(ds, spec, progress, again)
        if on_done is not None:
            on_done(spec.name, results[spec.name])
    for ens in ensembles:
        results[ens.name] = build_ensemble(ds, ens, {r.name: r for r in runs})
        if on_done is not None:
            on_done(ens.name, results[ens.name])
    return results


def _finished(out: Path) -> dict | None:
    """The metrics of a run that completed (metrics.json written after its checkpoint), else None."""
    import json

    path = out / "metrics.json"
    if not (path.is_file() and (out / "checkpoint.pt").is_file()):
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def build_ensemble(ds: dict, ens: EnsembleSpec, runs: dict[str, RunSpec]) -> dict:
    """Write ens.out/checkpoint.pt (the members together) and metrics.json; return the metrics."""
    import torch

    from data.torchdata import DialogueDataset
    from model.checkpoint import load_model, make_ensemble_checkpoint, read_checkpoint, save_checkpoint
    from pipeline.train import _save_json, class_weights, evaluate, split_validation

    members = [runs[name] for name in ens.members]
    ckpts = [read_checkpoint(m.out / "checkpoint.pt") for m in members]
    tcfg = members[0].tcfg
    path = ens.out / "checkpoint.pt"
    save_checkpoint(make_ensemble_checkpoint(ckpts, {"seeds": ens.seeds}), path)
    try:
        model, ckpt = load_model(path)
    except CheckpointError:
        path.unlink(missing_ok=True)
        raise
    task, emotion = ckpt["task"], ckpt.get("emotion")
    train_ids, valid_ids = split_validation(ds["train"], tcfg.valid_ratio, tcfg.split_seed if tcfg.split_seed is not None else tcfg.seed)
    device = torch.device("cpu")
    weights = class_weights(DialogueDataset(ds, train_ids, task, emotion), task, tcfg.class_weights)
    valid = evaluate(model, DialogueDataset(ds, valid_ids, task, emotion), task, device, weights) if valid_ids else {"loss": float("nan"), "metrics": {}}
    test = evaluate(model, DialogueDataset(ds, ds["test"], task, emotion), task, device, weights)
    member_metrics = [_finished(m.out) or {} for m in members]
    metrics = {
        "task": task, "emotion": emotion, "ensemble": ens.seeds,
        "best_epoch": [m.get("best_epoch") for m in member_metrics], "epochs_run": [m.get("epochs_run") for m in member_metrics],
        "valid": {"loss": valid["loss"], **valid["metrics"]},
        "test": {"loss": test["loss"], **test["metrics"]},
        "members": {str(s): m.get("test", {}) for s, m in zip(ens.seeds, member_metrics)},
    }
    _save_json(ens.out / "metrics.json", metrics)
    return metrics
