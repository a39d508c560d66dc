"""The independent trainings of one `cli.py train` command, and what is built from them afterwards.

    runs, ensembles = plan_runs("emotion", Path("runs/emo"), emotion="all", seeds=[1, 2, 3])
    results = run_plan(data, runs, ensembles)

One command may ask for several trainings: `--emotion all` (one run per emotion), `--seeds 1,2,3` (one run
per seed, combined into an ensemble) and `--grid lr=1e-4,1e-3 dropout=0.25,0.5` (one run, or ensemble, per
combination of settings, the best on validation selected). `plan_runs` lists them as RunSpecs and the
ensembles to assemble; `run_plan` trains each (in this process, one after another; `runner` lets another
backend run them, e.g. pipeline.training.runs_ray's RayRunner, all at once on a Ray cluster), then writes each
ensemble: one checkpoint holding the members (model.checkpoint), evaluated as one model (the mean of the
members' probabilities or scores) on the validation split the members share and on the test split; then,
for a grid, selects in each group the candidate with the best validation loss (or headline metric, with
--select metric), never looking at the test split.

With --finetune-text, --seeds is one run instead (the seeds' networks train together with one fine-tuned text
encoder, pipeline.training.finetune), whose checkpoint is the ensemble; there are no seed-<n>/ folders.

Layout: `OUT/` for one run; `OUT/<emotion>/` with --emotion all; with --seeds the ensemble's checkpoint.pt
and metrics.json are in that folder and its members in `seed-<n>/` below it (predict and evaluate treat a
folder with a checkpoint.pt as one model and do not look further down). With --grid each combination is a
folder `grid-lr=1e-3,dropout=0.5/` of that folder (a run, or an ensemble with its members), and the folder
itself receives a copy of the selected candidate's checkpoint.pt, metrics.json (and config.json), plus
selection.json: every candidate's validation figures and which was selected.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from data.dataset import EMOTIONS, load_dataset
from core.errors import CheckpointError, UserError
from core.fileio import atomic_write_bytes, atomic_write_json, check_writable_folder, refuse_overwrite
from core.options import COUNT, NON_NEGATIVE, POSITIVE, RATIO, TUNED_LAYERS, WIDTH, Number
from core.progress import Progress
from model.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class RunSpec:
    """One training: `name` is how results are keyed ("regression", "fear", "fear/seed-2")."""

    name: str
    out: Path
    tcfg: TrainConfig
    model_overrides: dict = field(default_factory=dict)
    group: str = ""  # with --grid: the name the selected candidate is reported under ("regression", "fear")
    grid: str = ""  # with --grid: this candidate's settings, "lr=1e-3,dropout=0.5"
    source: str = "dataset"  # how messages name the data (its file, when it came from one)


@dataclass
class EnsembleSpec:
    name: str
    out: Path
    members: list[str]  # RunSpec names
    seeds: list[int]
    group: str = ""
    grid: str = ""


# --grid KEY=V1,V2: the settings a grid may vary -> (TrainConfig field, or "model:<ModelConfig field>"; the values it
# takes: the option's own Number type, or the choices of a word)
GRID_KEYS: dict[str, tuple[str, Number | tuple[str, ...]]] = {
    "lr": ("lr", POSITIVE),
    "l2": ("l2", NON_NEGATIVE),
    "batch-size": ("batch_size", COUNT),
    "epochs": ("epochs", COUNT),
    "patience": ("patience", COUNT),
    "modality-dropout": ("modality_dropout", RATIO),
    "class-weights": ("class_weights", ("inverse", "sqrt", "none")),
    "dropout": ("model:dropout", RATIO),
    "rec-dropout": ("model:recurrent_dropout", RATIO),
    "hidden-size": ("model:hidden_size", WIDTH),
    "finetune-text": ("finetune_text", TUNED_LAYERS),
    "text-lr": ("text_lr", POSITIVE),
}
RUN_FILES = ("checkpoint.pt", "last.pt", "config.json", "metrics.json")  # a folder holding any of them holds a run
WRITTEN = (*RUN_FILES, "curves.png", "summary.json", "summary.md", "selection.json")  # what a command writes in a run folder


def hidden_size_overrides(n: int) -> dict[str, int]:
    """ModelConfig overrides of --hidden-size N: D_e = D_h = N, D_g = D_p = 1.5 N (the paper's N is 100)."""
    return {"d_emotion": n, "d_hidden": n, "d_global": round(1.5 * n), "d_party": round(1.5 * n)}


def parse_grid(items: list[str]) -> dict[str, list[tuple[str, Any]]]:
    """`["lr=1e-4,1e-3", "dropout=0.25,0.5"]` -> {"lr": [("1e-4", 1e-4), ("1e-3", 1e-3)], "dropout": [...]}: each
    key's values as spelled and as parsed, in the order given. UserError naming the item and the fix."""
    grid: dict[str, list[tuple[str, Any]]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("_", "-")
        if not sep or key not in GRID_KEYS:
            raise UserError(f"--grid {item}: expected KEY=V1,V2,... with KEY one of {', '.join(GRID_KEYS)}")
        if key in grid:
            raise UserError(f"--grid {item}: {key} is given twice; list all its values in one item")
        _, kind = GRID_KEYS[key]
        spelled = [v.strip() for v in values.split(",") if v.strip()]
        if not spelled or len(set(spelled)) != len(spelled):
            raise UserError(f"--grid {item}: give distinct values, comma-separated, e.g. {key}=V1,V2")
        parsed = []
        for v in spelled:
            if isinstance(kind, Number):
                parsed.append((v, kind.parse(v, f"--grid {item}")))
            elif v in kind:
                parsed.append((v, v))
            else:
                raise UserError(f"--grid {item}: {v!r} is not a valid {key} (one of {', '.join(kind)})")
        grid[key] = parsed
    return grid


def _grid_points(grid: dict[str, list[tuple[str, Any]]] | None) -> list[tuple[str, dict, dict]]:
    """Every combination as (label "lr=1e-3,dropout=0.5", TrainConfig overrides, ModelConfig overrides)."""
    if not grid:
        return [("", {}, {})]
    points = []
    for combo in itertools.product(*([(k, s, v) for s, v in values] for k, values in grid.items())):
        train, model = {}, {}
        for key, _, value in combo:
            target = GRID_KEYS[key][0]
            if target == "model:hidden_size":
                model.update(hidden_size_overrides(value))
            elif target.startswith("model:"):
                model[target[len("model:"):]] = value
            else:
                train[target] = value
        points.append((",".join(f"{k}={s}" for k, s, _ in combo), train, model))
    return points


def plan_runs(task: str, out: Path, *, emotion: str | None = None, seeds: list[int] | None = None, train: dict | None = None,
              model_overrides: dict | None = None, grid: dict[str, list[tuple[str, Any]]] | None = None,
              ) -> tuple[list[RunSpec], list[EnsembleSpec]]:
    """The runs of one command. train: TrainConfig overrides (None values ignored); with `seeds`, every member
    shares the validation split of `train["seed"]` (default 0), so the ensemble's validation figures are honest.
    grid: parse_grid's {key: [(spelling, value)]}; each combination is a candidate (a run, or an ensemble with
    `seeds`) in OUT[/<emotion>]/grid-<label>/, all candidates of a group sharing one validation split.
    Raises UserError when a grid key is also given as its own option, or there is no validation split."""
    train = {k: v for k, v in (train or {}).items() if v is not None}
    model_overrides = dict(model_overrides or {})
    for key in grid or {}:
        target = GRID_KEYS[key][0].removeprefix("model:")
        if train.get(target) is not None or model_overrides.get(target) is not None or (target == "hidden_size" and model_overrides.get("d_hidden")):
            raise UserError(f"--{key} and --grid {key}=...: give the values in --grid only")
    if grid and train.get("valid_ratio", TrainConfig.valid_ratio) <= 0:
        raise UserError("--grid selects on the validation split; --valid-ratio must be > 0")
    emotions = list(EMOTIONS) if emotion == "all" else [emotion]
    runs: list[RunSpec] = []
    ensembles: list[EnsembleSpec] = []
    for e in emotions:
        base = out / e if emotion == "all" else out
        name = e or task
        for label, t_over, m_over in _grid_points(grid):
            where, key, group = (base / f"grid-{label}", f"{name}/grid-{label}", name) if label else (base, name, "")
            settings, model = {**train, **t_over}, {**model_overrides, **m_over}
            if not seeds:
                runs.append(RunSpec(key, where, TrainConfig.for_task(task, emotion=e, **settings), model, group, label))
                continue
            split_seed = train.get("seed", 0)
            if settings.get("finetune_text"):  # one run: the seeds' networks train together on one fine-tuned encoder
                tcfg = TrainConfig.for_task(task, emotion=e, **{**settings, "seed": split_seed, "split_seed": split_seed, "joint_seeds": list(seeds)})
                runs.append(RunSpec(key, where, tcfg, dict(model), group, label))
                continue
            members = []
            for s in seeds:
                tcfg = TrainConfig.for_task(task, emotion=e, **{**settings, "seed": s, "split_seed": split_seed})
                runs.append(RunSpec(f"{key}/seed-{s}", where / f"seed-{s}", tcfg, dict(model)))
                members.append(runs[-1].name)
            ensembles.append(EnsembleSpec(key, where, members, list(seeds), group, label))
    return runs, ensembles


def top_level(runs: list[RunSpec], ensembles: list[EnsembleSpec]) -> list[tuple[str, Path]]:
    """(name, folder) of what a command reports: the grid selections, else the ensembles, else the runs."""
    candidates = [c for c in [*ensembles, *runs] if c.group]  # grid points: ensembles, runs, or joint runs (--finetune-text --seeds)
    if candidates:
        groups = {c.group: c.out.parent for c in candidates}
        return list(groups.items())
    return [(e.name, e.out) for e in ensembles] or [(r.name, r.out) for r in runs]


def run_local(data: Any, spec: RunSpec, progress: Progress | None, resume: bool) -> dict:
    from pipeline.training.train import run_training

    return run_training(data, spec.out, spec.tcfg, spec.model_overrides, progress=progress, resume=resume, source=spec.source)


def run_plan(data: str | Path | dict, runs: list[RunSpec], ensembles: list[EnsembleSpec], *, resume: bool = False,
             start_new: bool = False, overwrite: bool = False, progress: Progress | None = None, on_done: Callable[[str, dict], None] | None = None,
             runner: Callable[..., dict] = run_local, inputs: list[Path] | tuple = ()) -> dict[str, dict]:
    """Train every run, then assemble the ensembles, then select the best of each grid group. Returns {name:
    metrics} for runs, ensembles and grid groups.

    Before any training, check_plan refuses the whole plan when one run cannot train or one folder cannot be
    written (so nothing is half-written), and a folder that already holds a run unless `resume` (continue it)
    or `overwrite` (its run files are removed first). With `resume`, a run with a resume state continues from
    it (a finished one only re-reads its best checkpoint and rewrites its metrics) and a run not begun starts;
    with a single run, resume without a resume state is an error (nothing to resume, as `train --resume` says)
    unless `start_new` (a caller that continues whatever was started, e.g. `make pretrained`: a run stopped before
    its first epoch was saved starts again). `runner(ds, spec,
    progress, resume) -> metrics` trains one run; a runner with a `run_all(ds, [(spec, resume)], progress,
    on_done) -> {name: metrics}` method is given all the runs at once, to train them concurrently. inputs: the
    command's data files, which no run file may be.
    """
    ds = data if isinstance(data, dict) else load_dataset(data)
    source = "dataset" if isinstance(data, dict) else str(data)
    for spec in runs:
        spec.source = source
    check_plan(ds, runs, ensembles, resume=resume, overwrite=overwrite, inputs=inputs, source=source)
    results: dict[str, dict] = {}
    jobs = [(spec, resume and ((len(runs) == 1 and not start_new) or (spec.out / "last.pt").exists())) for spec in runs]
    if hasattr(runner, "run_all"):
        results.update(runner.run_all(ds, jobs, progress, on_done))
    else:
        for spec, again in jobs:
            results[spec.name] = runner(ds, spec, progress, again)
            if on_done is not None:
                on_done(spec.name, results[spec.name])
    for ens in ensembles:
        results[ens.name] = build_ensemble(ds, ens, {r.name: r for r in runs})
        if on_done is not None:
            on_done(ens.name, results[ens.name])
    select = {r.name: r.tcfg.select for r in runs}
    for group, folder in top_level(runs, ensembles) if any(r.group for r in runs + ensembles) else []:
        candidates = [c for c in [*ensembles, *runs] if c.group == group]
        criterion = select[candidates[0].members[0] if isinstance(candidates[0], EnsembleSpec) else candidates[0].name]
        results[group] = select_best(folder, [(c.grid, c.out, results[c.name]) for c in candidates], criterion)
        if on_done is not None:
            on_done(group, results[group])
    return results


def check_plan(ds: dict, runs: list[RunSpec], ensembles: list[EnsembleSpec], *, resume: bool = False, overwrite: bool = False,
               inputs: list[Path] | tuple = (), source: Any = "dataset") -> None:
    """Refuse a plan before any of it trains: a run the data cannot train (e.g. an emotion without labels), a
    folder that cannot be written or would write over an input, or a folder already holding a run (neither
    `resume` nor `overwrite`). With `overwrite`, the run files of every folder of the plan are removed."""
    from pipeline.training.train import check_trainable

    for spec in runs:
        check_trainable(ds, spec.tcfg, source)
    folders = list(dict.fromkeys([r.out for r in runs] + [e.out for e in ensembles] + [f for _, f in top_level(runs, ensembles)]))
    for folder in folders:
        check_writable_folder(folder, "--out")
        for name in WRITTEN:
            refuse_overwrite(folder / name, inputs, "--out")
    if resume:
        return
    held = [f for f in folders if any((f / name).exists() for name in RUN_FILES)]
    if held and not overwrite:
        more = f" (and {len(held) - 1} more run folder(s) of this command)" if len(held) > 1 else ""
        raise UserError(f"--out {held[0]} already holds a run ({describe_run(held[0])}){more}; add --resume to continue it, "
                        "--overwrite to replace it, or choose another --out")
    for folder in held:
        log.info("--overwrite: removing the run in %s (%s)", folder, describe_run(folder))
        for name in WRITTEN:
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / "tensorboard", ignore_errors=True)


def describe_run(folder: Path) -> str:
    """What a run folder holds, for messages: e.g. "emotion/fear, finished" or "regression, interrupted"."""
    try:
        train = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("train", {})
        what = str(train.get("task", "unknown task")) + (f"/{train['emotion']}" if train.get("emotion") else "")
    except (OSError, ValueError, AttributeError):
        what = "no readable config.json"
    state = "finished" if (folder / "metrics.json").is_file() else "interrupted; last.pt can resume it" if (folder / "last.pt").is_file() else "not finished"
    return f"{what}, {state}"


def _score(metrics: dict, criterion: str) -> float:
    """Validation score to minimise: the loss, or the task's headline metric (negated when higher is better)."""
    from model.tasks import get_task

    valid = metrics.get("valid", {})
    if criterion == "metric":
        name, higher = get_task(metrics["task"]).primary
        value = valid.get(name)
        return math.inf if not _finite(value) else (-value if higher else value)
    value = valid.get("loss")
    return float(value) if _finite(value) else math.inf


def _finite(value: Any) -> bool:
    """A number that is not NaN or infinite (metrics.json holds null where a figure was NaN)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def select_best(folder: Path, candidates: list[tuple[str, Path, dict]], criterion: str = "loss") -> dict:
    """Pick the candidate (label, run folder, metrics) with the best validation score (the first on a tie; the
    test split is never looked at), copy its checkpoint.pt, metrics.json and config.json into `folder` (which
    then reads as that model) and write folder/selection.json. Returns the selected metrics plus "selected"."""
    scores = [_score(m, criterion) for _, _, m in candidates]
    best = min(range(len(candidates)), key=lambda i: scores[i])
    label, where, metrics = candidates[best]
    for name in ("checkpoint.pt", "config.json"):
        if (where / name).is_file():
            atomic_write_bytes(folder / name, (where / name).read_bytes())
    selected = {**metrics, "selected": label}
    atomic_write_json(folder / "metrics.json", selected)
    if criterion == "metric":
        from model.tasks import get_task

        name, higher = get_task(metrics["task"]).primary
        what = f"validation {name} ({'higher' if higher else 'lower'} is better)"
    else:
        what = "validation loss (lower is better)"
    summary = {"selected": label, "criterion": what,
               "candidates": {lb: {"folder": w.name, "valid": m.get("valid", {})} for lb, w, m in candidates}}
    atomic_write_json(folder / "selection.json", summary)
    log.info("%s: selected %s on %s", folder, label, what)
    return selected


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

    from model.dialogues import DialogueDataset
    from model.checkpoint import load_model, make_ensemble_checkpoint, read_checkpoint, save_checkpoint
    from pipeline.training.train import _save_json, class_weights, evaluate, split_validation

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
    train_ids, valid_ids = split_validation(ds["train"], tcfg.valid_ratio, tcfg.split_seed if tcfg.split_seed is not None else tcfg.seed, ds["meta"].get("groups"))
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
