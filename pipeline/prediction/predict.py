"""Prediction: clips -> per-utterance sentiment, positive/negative label and emotion probabilities.

    predictor = Predictor("runs/demo")                 # every checkpoint.pt under the folder (None: the shipped model)
    result = predictor.predict("talk.mp4")             # {"clip", "utterances": [...], ...}
    print(format_table([result]))                      # pipeline.prediction.output: table / json / csv, plot

Preprocess, forward, postprocess:
1. `Predictor(checkpoint)` locates the models once (model.checkpoint.locate_models) and loads one checkpoint, or
   every `checkpoint.pt` under a folder (`train --out` lays
   a regression run and `--emotion all` runs out that way; an ensemble's folder is one model): at most one
   per task and emotion. Each
   checkpoint's feature spec is checked and its extractors are rebuilt from it (same extractor, same
   params); a spec that cannot be reproduced from a clip (features imported from .csd files or seed
   pickles, an extractor this installation lacks, different dims) raises CheckpointError in one line.
2. Per clip, `pipeline.extraction.step.extract_clip` (the code `cli.py extract` runs) decodes the clip, places its
   utterances (the transcript given or found beside the clip, else automatic transcription) and extracts
   features: once for all models whose specs agree wherever both have a modality (a text-only model and a
   text+audio model share one extraction; each model sees only the modalities it was trained on), else once
   per group, the utterances of the first reused by the others; each group holds its ExtractSettings. The
   transcriber is the one the checkpoint's training data was transcribed with (its feature spec's "asr"
   entry; Whisper tiny.en when it has none), or `asr` when given (a warning says when that differs). Clips whose
   transcript names no speaker are diarized as the training data was (the spec's "diarize" entry; diarized with the
   default settings when it has none), or as `diarize` / `speakers` say (choose_diarize).
3. Each model runs on its spec's features as one dialogue, (1, T, d) per modality.
4. The outputs are merged per utterance, each task reporting its own fields (model.tasks):
   - sentiment: the regression model's score in [-3, 3]; None without a regression checkpoint (a
     classifier's probability is not a sentiment intensity, so none is invented);
   - label: "positive"/"negative" from the binary model when there is one (with positive_prob), else from
     the sentiment score: "neutral" inside the band |score| < 0.5, else its sign (model.tasks.sentiment_label);
     None with neither;
   - emotions: {emotion: probability that it is present} from each per-emotion checkpoint;
   - emotion and emotion_probs: the 7-way class and its seven probabilities, from an emotion-class checkpoint.

A clip with no speech (the transcriber finds none and no transcript is given, or no audio stream) gives a
result with no utterances and a `note`; a clip that cannot be read gives a result with an `error`, and the
other clips still run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from core.errors import CheckpointError, ExtractionError, UserError
from core.progress import Progress
from data.dataset import EMOTIONS, MODALITIES
from extractors import NONE
from model.checkpoint import ModelFiles, check_dims, locate_models
from pipeline.extraction.settings import ExtractSettings
from pipeline.prediction.readings import FusionRule

if TYPE_CHECKING:
    from model.network import MultilogueNet

log = logging.getLogger(__name__)

# Feature specs written by importers: the features exist only in the imported files, not as an extractor.
IMPORTED_SPECS = {
    "csd": "CMU-MultimodalSDK .csd sequences (`cli.py import csd`)",
    "seed": "the seed's feature pickle (`cli.py import seed`)",
    "synthetic": "synthetic test data",
}


# ------------------------------------------------------------------ checkpoints
@dataclass
class LoadedModel:
    """One checkpoint ready to run: `name` is the task (regression, binary) or the emotion."""

    path: Path
    task: str
    emotion: str | None
    model: "MultilogueNet"
    spec: dict[str, dict]
    asr: dict | None = None  # the transcriber spec its training data recorded (meta["features"]["asr"])
    fusion: FusionRule | None = None  # a 7-way emotion model's readings and their fusion (pipeline.prediction.readings)
    diarize: dict | None = None  # the diarizer spec its training data recorded (meta["features"]["diarize"]), None if none

    @property
    def name(self) -> str:
        return self.emotion or self.task

    @property
    def needs(self) -> dict[str, dict]:
        """The features to extract for this model: its spec, plus its face expert's extractor where the network
        itself has no visual input."""
        face = self.fusion.face if self.fusion is not None else None
        if face and self.spec["visual"]["name"] == NONE:
            return {**self.spec, "visual": dict(face)}
        return self.spec


def check_spec(ckpt: dict) -> dict[str, dict]:
    """The checkpoint's feature spec {modality: {"name", "params", "dim"}}, checked against its model config.

    Raises CheckpointError when a modality is missing, comes from imported features, or its dim differs
    from the model's input width.
    """
    where = ckpt.get("path", "checkpoint")
    spec = ckpt.get("feature_spec") or {}
    cfg = ckpt["model_config"]
    out = {}
    for m in MODALITIES:
        s = spec.get(m)
        if not isinstance(s, dict) or "name" not in s:
            raise CheckpointError(f"{where}: no feature spec for {m} (it was trained on a dataset without extractor "
                                  "information); retrain on a dataset from `cli.py extract` to predict on clips")
        if s["name"] in IMPORTED_SPECS:
            raise CheckpointError(f"{where}: its {m} features came from {IMPORTED_SPECS[s['name']]}, which cannot be computed "
                                  "from a clip; to predict on clips, train on a dataset made by `cli.py extract`")
        check_dims(cfg, {m: s.get("dim", cfg[f"d_{m}"])}, f"{where}: its {m} feature spec and its model disagree",
                   "the checkpoint is inconsistent, retrain it", "model vs spec")
        out[m] = {"name": str(s["name"]), "params": dict(s.get("params") or {}), "dim": int(cfg[f"d_{m}"])}
    return out


def load_models(located: ModelFiles) -> list[LoadedModel]:
    """Load the located checkpoints (model.checkpoint.locate_models), checking their specs.

    Raises CheckpointError for an unreadable checkpoint, a spec that cannot be reproduced, or two checkpoints of
    the same task (or emotion) in the folder.
    """
    from model.checkpoint import load_model

    models: list[LoadedModel] = []
    for f in located.files:
        model, ckpt = load_model(f)
        recorded = ckpt.get("feature_spec") or {}
        fusion = FusionRule.from_checkpoint(ckpt) if ckpt["task"] == "emotion-class" else None
        models.append(LoadedModel(Path(f), ckpt["task"], ckpt.get("emotion"), model, check_spec(ckpt), recorded.get("asr"),
                                  fusion, recorded.get("diarize")))
    seen: dict[str, Path] = {}
    for m in models:
        if m.name in seen:
            raise CheckpointError(f"{seen[m.name]} and {m.path} are both {m.name} models; pass one of them (or a folder with one run per task) as --checkpoint")
        seen[m.name] = m.path
    return models


def build_spec_extractors(spec: dict[str, dict], source: Any, runtime: dict[str, dict] | None = None,
                          modalities: list[str] | None = None) -> dict[str, Any]:
    """modality -> extractor rebuilt from the spec; CheckpointError (one line) when it cannot be reproduced.

    runtime: modality -> settings that do not change the output (e.g. {"visual": {"weights_dir": ...}}).
    modalities: the ones to compute (None: all); the others become absent (nothing is decoded or run for them).
    """
    from extractors import NONE, NoFeatures, available, build_from_spec

    out = {}
    for m in MODALITIES:
        s = spec[m]
        if modalities is not None and m not in modalities:
            out[m] = NoFeatures(m, s["dim"])  # left out of this prediction: absent rows of the model's width
            continue
        if s["name"] != NONE and s["name"] not in available(m)[m]:
            raise CheckpointError(f"{source}: its {m} extractor {s['name']!r} is not available here (this installation has "
                                  f"{', '.join(available(m)[m])}); install the code that provides it or use another checkpoint")
        settings = {} if s["name"] == NONE else (runtime or {}).get(m, {})  # a left-out modality takes none
        try:
            ex = build_from_spec(m, s, **settings)
        except UserError as e:
            raise CheckpointError(f"{source}: cannot rebuild its {m} extractor: {_one_line(e)}") from e
        except (TypeError, ValueError, ImportError) as e:
            raise CheckpointError(f"{source}: cannot rebuild its {m} extractor {s['name']!r} with params "
                                  f"{json.dumps(s['params'], sort_keys=True)}: {_one_line(e)}") from e
        out[m] = ex  # build_from_spec compared its width with the spec's (check_spec gives every spec its dim)
    return out


def with_delta_file(spec: dict[str, dict], runtime: dict[str, dict] | None, source: str | Path) -> dict[str, dict] | None:
    """`runtime` plus, when the spec's text features come from a fine-tuned encoder (a minilm "delta" param), the
    checkpoint that holds its weights (`source`) as the text extractor's delta_file."""
    text = spec.get("text") or {}
    if not (text.get("params") or {}).get("delta") or "delta_file" in (runtime or {}).get("text", {}):
        return runtime
    return {**(runtime or {}), "text": {**(runtime or {}).get("text", {}), "delta_file": str(source)}}


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


def _spec_key(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


def choose_asr(models: list[LoadedModel], name: str | None = None) -> dict:
    """The transcriber spec ({"name", "params"}) for clips without a transcript.

    name None: the transcriber the checkpoints' training data was transcribed with, rebuilt from its spec
    (Whisper tiny.en's defaults for checkpoints that recorded none). A `name` that differs from it is used,
    with a warning: automatic text then comes from another engine than in training. Raises CheckpointError
    when the recorded transcriber is not available here, UserError for an unknown name.
    """
    from extractors.asr import DEFAULT, TRANSCRIBERS, build_transcriber, spec_of, transcriber_from_spec

    recorded = [m for m in models if isinstance(m.asr, dict) and m.asr.get("name")]
    trained = recorded[0].asr if recorded else None
    if any(_spec_key(m.asr) != _spec_key(trained) for m in recorded):
        log.warning("the checkpoints' training data were transcribed differently; clips without a transcript use %s's %s",
                    recorded[0].path, trained.get("name"))
    if name is not None and name not in TRANSCRIBERS:
        raise UserError(f"--asr {name}: unknown transcriber; choose one of {', '.join(TRANSCRIBERS)}")
    if not trained:
        return spec_of(build_transcriber(name or DEFAULT))
    if name is None or trained.get("name") == name:
        if trained.get("name") not in TRANSCRIBERS:
            raise CheckpointError(f"{recorded[0].path}: its training data was transcribed with {trained.get('name')!r}, which this "
                                  f"installation lacks (it has {', '.join(TRANSCRIBERS)}); pass --asr NAME to transcribe with another")
        return spec_of(transcriber_from_spec(trained, source=f"{recorded[0].path}'s training data"))
    log.warning("--asr %s: the checkpoint's training data was transcribed with %s; automatic text of clips without a "
                "transcript will differ from training", name, trained.get("name"))
    return spec_of(build_transcriber(name))


def choose_diarize(models: list[LoadedModel], mode: str = "auto", speakers: int | None = None) -> dict:
    """The diarizer spec for clips whose transcript names no speaker.

    mode "auto": as the checkpoints' training data was diarized (its recorded mode and settings; auto with the default
    settings for checkpoints that recorded none, which predate diarization). "on" / "off" force it, with a warning when
    the training data was diarized otherwise. speakers: a fixed count per clip. UserError for a bad mode or count.
    """
    from pipeline.extraction.settings import diarizer_spec

    recorded = [m for m in models if isinstance(m.diarize, dict) and m.diarize.get("mode")]
    trained = recorded[0].diarize if recorded else None
    if any(_spec_key(m.diarize) != _spec_key(trained) for m in recorded):
        log.warning("the checkpoints' training data were diarized differently; clips use %s's (--diarize %s)",
                    recorded[0].path, trained.get("mode"))
    if trained is None:
        return diarizer_spec(mode, speakers)
    was_on = trained.get("mode") in ("auto", "on")
    if mode != "auto" and (mode != "off") != was_on:
        log.warning("--diarize %s: the checkpoint's training data was %s; speakers of clips without named ones will differ from "
                    "training", mode, "diarized" if was_on else "not diarized (--diarize off)")
    if mode == "auto" or (mode == "on" and was_on):
        return diarizer_spec({**trained, "mode": "on" if mode == "on" else trained.get("mode")}, speakers)
    return diarizer_spec(mode, speakers)


# ------------------------------------------------------------------ the predictor
class Predictor:
    """Checkpoints + the extractors their feature specs need; `predict(clip)` gives per-utterance outputs.

    `timings` accumulates seconds per stage over the predictor's life: load (checkpoints and extractors),
    decode, segments, text, audio, visual (each extractor, library loading on first use included), model.
    """

    def __init__(self, checkpoint: str | Path | ModelFiles | None = None, *, runtime: dict[str, dict] | None = None,
                 modalities: list[str] | None = None, asr: str | None = None, diarize: str = "auto", speakers: int | None = None):
        """checkpoint: a file, a run folder, a folder of runs, or models already located (None: the shipped model,
        else runs/demo). modalities: use only these (e.g. ["text", "audio"]; None: all three); the others are
        absent. asr: the transcriber for clips without a transcript (None: the one the checkpoints' training data
        recorded). diarize: auto | on | off for clips whose transcript names no speaker (auto: as the training data
        recorded, see choose_diarize); speakers: a fixed speaker count per clip."""
        if modalities is not None:
            unknown = [m for m in modalities if m not in MODALITIES]
            if unknown or not modalities:
                raise UserError(f"modalities {','.join(modalities)}: choose one or more of {','.join(MODALITIES)}, comma-separated")
        self.modalities = [m for m in MODALITIES if modalities is None or m in modalities]
        self.timings: dict[str, float] = {}
        t = time.perf_counter()
        self.located = locate_models(checkpoint)  # a wrong path fails here, before torch loads
        with one_torch_thread():
            self.models = load_models(self.located)
        self.timings["model load"] = time.perf_counter() - t
        t = time.perf_counter()
        # Models whose specs agree wherever both have a modality share one extraction per clip (e.g. a text-only
        # sentiment model and a text+audio emotion model); a model gets only the modalities it was trained on.
        by_spec: list[tuple[dict, list[LoadedModel]]] = []
        for m in self.models:
            group = next((g for g in by_spec if _compatible(g[0], m.needs)), None)
            if group is None:
                by_spec.append(({**m.needs}, [m]))
            else:
                group[0].update({k: v for k, v in m.needs.items() if v["name"] != NONE})
                group[1].append(m)
        # what this prediction uses: the modalities asked for that some model (or face expert) takes
        self.used = [k for k in self.modalities if any(m.needs[k]["name"] != NONE for m in self.models)]
        self.asr = choose_asr(self.models, asr)
        self.diarize = choose_diarize(self.models, diarize, speakers)
        self.groups = [_Group(spec, models, runtime, self.modalities, self.asr, self.diarize) for spec, models in by_spec]
        self.timings["extractor build"] = time.perf_counter() - t
        if len(self.groups) > 1:
            log.info("%d different feature specs among the checkpoints: each clip is extracted %d times", len(self.groups), len(self.groups))

    @property
    def columns(self) -> list[str]:
        """What the models report per utterance (the order predict_output shows them in)."""
        names = [m.name for m in self.models]
        out = ["sentiment", "label"] + (["positive_prob"] if "binary" in names else [])
        out += ["emotion"] if "emotion-class" in names else []
        return out + [e for e in EMOTIONS if e in names]

    def _add(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    def predict(self, clip: str | Path, transcript: str | Path | None = None) -> dict:
        """One clip -> {"clip", "duration", "transcript", "speakers", "models", "utterances": [...], ["note"]}.

        "speakers" says where the utterances' speakers come from: "2 found by the diarizer (GE2E)", "named by the
        transcript", "not diarized (--diarize off)" or "none (no speech)".

        Each utterance: {"start", "end", "speaker", "text", "sentiment" (float in [-3, 3] or None),
        "label" ("positive"/"neutral"/"negative" or None), ["positive_prob"], "emotions" {emotion: probability}}.
        Raises ExtractionError when the clip cannot be decoded or its transcript is bad.
        """
        from extractors.media import NoAudioError
        from pipeline.extraction.step import extract_clip

        clip = Path(clip)
        result: dict[str, Any] = {"clip": str(clip), "duration": None, "transcript": None, "speakers": None,
                                  "models": {m.name: str(m.path) for m in self.models}, "modalities": list(self.used), "utterances": []}
        outputs: dict[str, np.ndarray] = {}
        present: np.ndarray | None = None
        segments = None
        for group in self.groups:
            try:
                with one_torch_thread():  # the text encoder on a clip's few utterances: 1.0 s with 2 threads on a busy machine, 0.03 s with one
                    feats = extract_clip(clip, group.extractors, group.settings, transcript=transcript, segments=segments)
            except NoAudioError:
                result["note"] = "no audio stream, so no speech to analyse"
                return result
            for stage, seconds in feats["times"].items():
                self._add(stage, seconds)
            if segments is None:
                from extractors.base import Segment

                segments = [Segment(float(a), float(b), str(sp), str(tx)) for a, b, sp, tx, _ in feats["segments"]]
                info = feats["info"]
                result["duration"] = round(float(feats["duration"]), 3)
                result["transcript"] = info.get("transcript") or (f"{info.get('asr')} (automatic)" if info.get("automatic_text") else None)
                result["speakers"] = _speakers_note(info, segments)
                if info.get("automatic_text") and not any(s.text.strip() for s in segments):
                    result["note"] = f"no speech detected ({info.get('asr')} found none); give a transcript to predict anyway"
                    return result
            t = time.perf_counter()
            speakers = [s.speaker for s in segments]
            for m in group.models:
                used = _model_view(feats, m.spec)
                if m.fusion is not None:
                    outputs[m.name] = (m, self._read_emotions(m, used, feats, speakers))
                    used["present"] = used["present"] | self._face_present(m, feats)
                else:
                    outputs[m.name] = (m, run_model(m.model, used, speakers))
                present = used["present"] if present is None else present | used["present"]
            self._add("model", time.perf_counter() - t)
        result["utterances"] = self._merge(segments or [], outputs, present)
        return result

    def _face(self, m: LoadedModel) -> bool:
        return m.fusion is not None and bool(m.fusion.face) and m.spec["visual"]["name"] == NONE and "visual" in self.modalities

    def _face_present(self, m: LoadedModel, feats: dict) -> np.ndarray:
        """(T, 3) bool: the visual column of `feats` where model m's face expert reads a face, else all False."""
        out = np.zeros_like(np.asarray(feats["present"], bool))
        if self._face(m):
            out[:, 2] = np.asarray(feats["present"], bool)[:, 2]
        return out

    def _read_emotions(self, m: LoadedModel, used: dict, feats: dict, speakers: list[str]) -> dict:
        """A 7-way model's per-modality readings, their fusion with its face expert, and the uncertain flags."""
        from pipeline.prediction.readings import read_emotions

        trained = [k for k in MODALITIES if m.spec[k]["name"] != NONE and k in self.modalities]
        face = m.fusion.face_reading(feats["visual"], feats["present"][:, 2]) if self._face(m) else None
        return read_emotions(lambda view: run_model(m.model, view, speakers), used, trained, m.fusion, face)

    def _merge(self, segments: list, outputs: dict[str, tuple[LoadedModel, Any]], present: np.ndarray | None) -> list[dict]:
        """Per utterance: what each model's task reports (model.tasks; a 7-way model's fused reading, each
        modality's reading and the uncertain flag), then the label: the binary model's decision when there is one,
        else positive / neutral / negative from the sentiment score (model.tasks.sentiment_label)."""
        from model.tasks import get_task, sentiment_label

        fields = {name: (_emotion_fields(values) if m.fusion is not None else get_task(m.task).fields(values, m.emotion))
                  for name, (m, values) in outputs.items()}
        rows = []
        for i, s in enumerate(segments):
            row: dict[str, Any] = {"start": round(s.start, 3), "end": round(s.end, 3), "speaker": s.speaker, "text": s.text,
                                   "modalities": [m for k, m in enumerate(MODALITIES) if present is not None and present[i, k]],
                                   "sentiment": None, "label": None, "emotions": {}}
            for name in outputs:
                for key, value in fields[name][i].items():
                    if key == "emotions":
                        row["emotions"].update(value)
                    else:
                        row[key] = value
            if row.get("positive_prob") is not None:
                row["label"] = "positive" if row["positive_prob"] >= 0.5 else "negative"
            else:
                row["label"] = sentiment_label(row["sentiment"])
            row["emotions"] = {e: row["emotions"][e] for e in EMOTIONS if e in row["emotions"]}
            rows.append(row)
        return rows


def _emotion_fields(read: dict) -> list[dict]:
    """Per utterance of a 7-way model's readings: "emotion" and "emotion_probs" (the fused reading; None where no
    modality it reads is there), "readings" {words|voice|face: {"emotion", "probs"}} for the modalities present,
    "uncertain" (bool) and "uncertain_why"."""
    from model.tasks import EMOTION_CLASSES

    def dist(p: np.ndarray) -> dict | None:
        if np.isnan(p).any():
            return None
        return {"emotion": EMOTION_CLASSES[int(np.argmax(p))], "probs": {c: round(float(v), 4) for c, v in zip(EMOTION_CLASSES, p)}}

    rows = []
    for i, p in enumerate(read["fused"]):
        fused = dist(p)
        readings = {name: d for name, r in read["readings"].items() if (d := dist(r[i])) is not None}
        why = read["uncertain"][i]
        rows.append({"emotion": fused["emotion"] if fused else None, "emotion_probs": fused["probs"] if fused else None,
                     "readings": readings, "uncertain": why is not None, "uncertain_why": why})
    return rows


class _Group:
    """Models whose feature specs agree, with the extractors and ExtractSettings of their one extraction per clip."""

    def __init__(self, spec: dict[str, dict], models: list[LoadedModel], runtime: dict[str, dict] | None, modalities: list[str],
                 asr: dict, diarize: dict) -> None:
        self.models = models
        # a fine-tuned text encoder's weights are in the checkpoint whose text spec this group took
        source = next((m.path for m in models if m.needs["text"] == spec["text"]), models[0].path)
        runtime = with_delta_file(spec, runtime, source)
        self.extractors = build_spec_extractors(spec, source, runtime, modalities)
        choices = {m: (s["name"], {**s["params"], **((runtime or {}).get(m, {}) if s["name"] != NONE else {})}) for m, s in spec.items()}
        self.settings = ExtractSettings(choices=choices, specs=spec, asr=asr, fps=float(spec["visual"]["params"].get("fps", 5.0)),
                                        diarize=diarize)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the setting.

    Building the models and running one dialogue of (1, d) rows gain nothing from more threads, and on a busy
    machine their spinning costs seconds: measured on 2 shared cores (load average ~5), 7 paper-sized models
    on a 30 s clip, cold `cli.py predict` took 14.5 s with torch's default threads and 6.1 s with one.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _speakers_note(info: dict, segments: list) -> str:
    """Where the result's speakers come from, e.g. "2 found by the diarizer (GE2E)" or "named by the transcript"."""
    if info.get("diarized"):
        n = int(info.get("speakers") or 0)
        return f"{n} found by the diarizer (GE2E)" + ("; a single voice" if n == 1 else "")
    if info.get("named_speakers"):
        return "named by the transcript"
    if not any(s.text.strip() for s in segments):
        return "none (no speech)"
    return "not diarized (--diarize off)"


def _compatible(a: dict[str, dict], b: dict[str, dict]) -> bool:
    """Two feature specs can share one extraction: every modality both have comes from the same extractor."""
    return all(a[m]["name"] == NONE or b[m]["name"] == NONE or _spec_key(a[m]) == _spec_key(b[m]) for m in MODALITIES)


def _model_view(feats: dict, spec: dict[str, dict]) -> dict:
    """A clip's features as one model takes them: a modality the model was not trained on is absent, width 0."""
    view = dict(feats)
    present = np.array(feats["present"], dtype=bool, copy=True)
    for k, m in enumerate(MODALITIES):
        if spec[m]["name"] == NONE:
            view[m] = np.zeros((len(present), 0), dtype=np.float32)
            present[:, k] = False
    view["present"] = present
    return view


def run_model(model: "MultilogueNet", feats: dict[str, np.ndarray], speakers: list[str]) -> np.ndarray:
    """Run one model on one dialogue. feats[m]: (T, d_m) float32; feats["present"]: (T, 3) bool (optional,
    default all present); speakers: T labels.

    Returns the task's outputs (model.tasks.Task.outputs): (T,) sentiment scores in [-3, 3] for regression,
    else (T, C) class probabilities.
    """
    import torch

    from model.dialogues import collate, make_dialogue
    from model.tasks import get_task

    batch = collate([make_dialogue(feats, speakers, feats.get("present"), task=model.config.task)])
    with one_torch_thread(), torch.inference_mode():
        out = model(*batch.inputs())[0]  # (T,) scores or (T, C) log-probabilities
    return get_task(model.config.task).outputs(out)


def predict_clips(clips: list[str | Path], checkpoint: str | Path | ModelFiles | None = None, *, transcript: str | Path | None = None,
                  runtime: dict[str, dict] | None = None, asr: str | None = None, progress: Progress | None = None,
                  predictor: Predictor | None = None, modalities: list[str] | None = None, diarize: str = "auto",
                  speakers: int | None = None) -> list[dict]:
    """Predict every clip; a clip that fails is logged ("Skipping ...") and returned with an "error" entry.

    asr: the transcriber for clips without a transcript (default: the one the checkpoint's data used); diarize,
    speakers: see Predictor. Raises CheckpointError (before any clip runs) when the checkpoint is missing or cannot be reproduced.
    """
    predictor = predictor or Predictor(checkpoint, runtime=runtime, modalities=modalities, asr=asr, diarize=diarize, speakers=speakers)
    results = []
    for i, clip in enumerate(clips):
        try:
            results.append(predictor.predict(clip, transcript=transcript))
        except ExtractionError as e:
            log.warning("Skipping %s due to %s", clip, _one_line(e))
            results.append({"clip": str(clip), "error": _one_line(e), "utterances": []})
        except Exception as e:  # one bad clip must not lose the others' results
            log.debug("unexpected failure on %s", clip, exc_info=True)
            reason = f"{clip}: unexpected {type(e).__name__}: {_one_line(e)}"
            log.warning("Skipping %s due to %s", clip, reason)
            results.append({"clip": str(clip), "error": reason, "utterances": []})
        if progress is not None:
            progress(i + 1, len(clips))
    return results


__all__ = ["LoadedModel", "Predictor", "build_spec_extractors", "check_spec", "choose_asr", "choose_diarize", "load_models",
           "one_torch_thread", "predict_clips", "run_model", "with_delta_file"]

