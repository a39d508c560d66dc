"""Evaluate trained runs on what a user holds: a dataset file, a labelled text CSV, or a folder of labelled clips.

    results = evaluate_runs("runs/mine", "labelled_talks/")     # one RunMetrics per checkpoint.pt under runs/mine

- A dataset pickle is used as it is; its features must come from the checkpoint's extractors (for a checkpoint of
  `train --finetune-text`, a dataset of frozen minilm features is read through its fine-tuned encoder).
- A text CSV (the `cli.py import text` layout) and a folder of clips (transcripts and labels.csv, as `cli.py
  extract` reads them) are turned into features with each checkpoint's own extractors, recorded in its feature
  spec, exactly as predict does: checkpoints that share a spec share one extraction.
- `split="auto"`: a dataset's test split; for a CSV or a clip folder, every video not marked `train` in its
  split column (data the model never saw). "train", "test" and "all" pick explicitly.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from data.dataset import MODALITIES, feature_dims, load_dataset
from core.errors import DatasetError, UserError
from core.progress import Progress

log = logging.getLogger(__name__)
EXTRACT_CACHE = Path.home() / ".cache" / "multilogue" / "extract"  # clips evaluated again reuse their features
SPLITS = ("auto", "train", "test", "all")


@dataclass
class RunMetrics:
    """One run's result: `run` names it (its folder relative to --checkpoint), `title` says on what."""

    run: str
    path: Path
    title: str
    metrics: dict[str, float]


def data_kind(data: str | Path) -> str:
    """"clips" for a folder, "csv" for a .csv file, else "dataset"."""
    data = Path(data)
    if data.is_dir():
        return "clips"
    if data.suffix.lower() == ".csv":
        return "csv"
    return "dataset"


def evaluate_runs(checkpoint: str | Path, data: str | Path, *, split: str = "auto", device: str = "auto",
                  modalities: list[str] | None = None, runtime: dict[str, dict] | None = None, workers: int | None = None,
                  cache_dir: str | Path | None = None, progress: Progress | None = None, diarize: str = "auto",
                  speakers: int | None = None) -> list[RunMetrics]:
    """Metrics of every checkpoint under `checkpoint` (a file, a run folder or a folder of runs) on `data`.

    cache_dir: where features computed from a CSV or clips are cached (default ~/.cache/multilogue/...).
    diarize, speakers: for a clip folder, as predict's (auto: as each checkpoint's training data was diarized).

    Raises UserError subclasses (one line) for a missing checkpoint or data, features that do not match a
    checkpoint, or a split without labelled utterances for a run's task.
    """
    from model.checkpoint import check_features, locate_models, load_model
    from pipeline.prediction.predict import check_spec
    from pipeline.training.train import evaluate, pick_device

    if split not in SPLITS:
        raise UserError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
    data = Path(data)
    if not data.exists():
        raise DatasetError(f"{data}: no such file or folder; pass a dataset .pkl, a labelled text .csv or a folder of labelled clips")
    located = locate_models(checkpoint)
    files, root = located.files, located.root
    dev = pick_device(device)
    kind = data_kind(data)
    loaded = [(f, *load_model(f, dev)) for f in files]
    built: dict[str, dict] = {}  # feature spec -> dataset computed with it
    results = []
    for f, model, ckpt in loaded:
        if kind == "dataset":
            ds = built.setdefault("", load_dataset(data))
            if "text_delta" in ckpt:  # a fine-tuned text encoder: the dataset's sentences through it
                ds = _through_delta(ds, ckpt, data, cache_dir)
            check_features(ckpt, feature_dims(ds), ds["meta"].get("features", {}), data)
        else:
            spec = check_spec(ckpt)
            recorded_asr = (ckpt.get("feature_spec") or {}).get("asr")
            if isinstance(recorded_asr, dict):
                spec["asr"] = recorded_asr
            if kind == "clips":
                from pipeline.prediction.predict import LoadedModel, choose_diarize

                recorded = (ckpt.get("feature_spec") or {}).get("diarize")
                stand_in = LoadedModel(Path(f), ckpt["task"], ckpt.get("emotion"), model, spec, diarize=recorded if isinstance(recorded, dict) else None)
                spec["diarize"] = choose_diarize([stand_in], diarize, speakers)
            key = json.dumps(spec, sort_keys=True, default=str)
            if key not in built:
                built[key] = _featurise(kind, data, spec, f, runtime, workers, cache_dir, progress)
            ds = built[key]
        which = ("test" if split == "auto" else split)
        videos = {"train": ds["train"], "test": ds["test"], "all": ds["ID"]}[which]
        if not videos:
            raise DatasetError(f"{data}: the {which} split is empty; pick another --split (train, test, all)")
        from model.dialogues import DialogueDataset

        dataset = DialogueDataset(ds, videos, ckpt["task"], ckpt.get("emotion"), modalities=modalities)
        result = evaluate(model, dataset, ckpt["task"], dev)
        name = ckpt["task"] + (f"/{ckpt['emotion']}" if ckpt.get("emotion") else "")
        if result["n"] == 0:
            column = ckpt.get("emotion") or "sentiment"
            raise DatasetError(f"{data}: no utterance of the {which} split has a '{column}' label, so {f} ({name}) cannot be scored; "
                               "label the data or pick another --split")
        title = f"{name} on {which} ({len(videos)} videos, {result['n']} utterances)"
        if modalities is not None and set(modalities) != set(MODALITIES):
            title += f" with {'+'.join(m for m in MODALITIES if m in modalities)} only"
        run = f.parent.relative_to(root).as_posix() if f.parent != root and root in f.parents else f.parent.name
        results.append(RunMetrics(run, f, title, {"loss": result["loss"], **result["metrics"]}))
    return results


def _through_delta(ds: dict, ckpt: dict, data: Path, cache_dir: str | Path | None) -> dict:
    """A dataset of frozen minilm features as a fine-tuned checkpoint sees it: its texts through the checkpoint's encoder
    (the lower layers' token states cached in cache_dir/token-states, default ~/.cache/multilogue/token-states)."""
    from pipeline.training.finetune import DEFAULT_CACHE, adapted_dataset

    text = (ds["meta"].get("features") or {}).get("text") or {}
    if text.get("name") != "minilm" or (text.get("params") or {}).get("delta"):
        return ds  # other features: check_features says what differs
    cache = DEFAULT_CACHE if cache_dir is None else Path(cache_dir) / "token-states"
    return adapted_dataset(ds, ckpt["text_delta"], cache, source=data)


def _featurise(kind: str, data: Path, spec: dict[str, dict], source: Path, runtime: dict[str, dict] | None, workers: int | None,
               cache_dir: str | Path | None, progress: Progress | None) -> dict:
    """A dataset of a CSV or a clip folder, computed with the extractors of a checkpoint's feature spec."""
    from pipeline.prediction.predict import build_spec_extractors, with_delta_file

    runtime = with_delta_file(spec, runtime, source)  # a fine-tuned text encoder: its weights are in the checkpoint
    extractors = build_spec_extractors(spec, source, runtime)  # one line when the spec cannot be reproduced here
    if kind == "csv":
        from pipeline.importers.text import text_dataset

        return text_dataset(data, extractors["text"], dims={m: spec[m]["dim"] for m in ("audio", "visual")}, all_test=True,
                            cache_dir=None if cache_dir is None else Path(cache_dir) / "text", progress=progress)
    from pipeline.extraction.folder import extract_folder
    from extractors.asr import DEFAULT as DEFAULT_ASR
    from pipeline.extraction.settings import ExtractSettings

    choices = {m: (s["name"], {**s["params"], **(runtime or {}).get(m, {})}) for m, s in spec.items() if m in MODALITIES}
    settings = ExtractSettings.create(choices=choices, fps=float(spec["visual"]["params"].get("fps", 5.0)),
                                      asr=spec["asr"] if isinstance(spec.get("asr"), dict) else DEFAULT_ASR,  # as the training data was
                                      diarize=spec.get("diarize", "auto"),
                                      cache_dir=EXTRACT_CACHE if cache_dir is None else Path(cache_dir) / "extract")
    with tempfile.TemporaryDirectory(prefix="multilogue-evaluate-") as tmp:
        report = extract_folder(data, Path(tmp) / "data.pkl", settings, all_test=True, workers=workers, progress=progress)
        for failure in report.failures:  # the clips that worked are still scored
            log.warning("Skipping %s due to %s", failure["clip"], failure["reason"])
        return load_dataset(report.out)
