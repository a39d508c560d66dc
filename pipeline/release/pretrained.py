"""`make pretrained`: the model `predict` uses out of the box, trained on real labelled corpora and evaluated on
splits its training never saw.

    python -m pipeline.release.pretrained [--shared ../shared/data] [--work .cache/pretrained] [--out model/pretrained]

1. Datasets, from ../shared/data (each built once into --work, then reused):
   - CMU-MOSI transcripts (sentiment -3..3; 62 train / 11 test videos) through `import seed --text-from-sentences`;
   - MELD (7 emotions; train -> train, dev -> test) through `import meld`;
   - GoEmotions, Ekman grouping (train + dev -> train, test -> test) through `import goemotions`;
   - the voice corpora (pipeline.release.voice): RAVDESS (8 emotions, calm -> neutral; actors 19-20 held out) with
     its Whisper transcripts, and URDU (4 emotions from TV talk shows; speakers URDU_TEST_SPEAKERS held out; text
     absent), each training recording also as two augmented copies (gain, reverberation, noise, low-bitrate
     codecs) and cut three ways (Whisper's cut, the whole clip, jittered ends); CREMA-D's clips as test only.
   Text: MiniLM (bench/text_probe.py); audio: AUDIO, chosen leave-one-corpus-out by bench/voice.py. No corpus
   here has labelled faces: the face is read by the FER network's expression probabilities (FusionRule below).
2. Two models, each a seed ensemble (`train --seeds`), with validation selection on a share of the training
   conversations (speakers of the voice corpora kept whole on one side): sentiment regression on MOSI, and the
   7-way emotion classifier (emotion-class) on MELD + GoEmotions + the voice corpora, a modality a corpus lacks
   being absent there.
3. Calibration: two temperatures for the emotion network, fitted on the validation conversations: one where it
   hears a voice, one where it reads words alone (one for all was overconfident on voices); the fusion rule
   with the face and the `uncertain` thresholds (FUSION, fixed before any test clip was scored) go into the
   emotion checkpoint.
4. Figures on each test split, beside a logistic / ridge regression on the same features (its strength chosen on
   the same validation split), and end to end through predict on real clips (pipeline.release.evaluation).
5. Export: float16 ensembles in OUT/sentiment and OUT/emotion, OUT/report.json with every figure, and
   OUT/MODEL_CARD.md written from the report.

Resumable: datasets, voice features and finished runs are kept in --work; a rerun continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the repository: pipeline/release/pretrained.py
log = logging.getLogger("pipeline.release.pretrained")

TEXT, AUDIO = "minilm", "eGeMAPSv02"  # AUDIO: chosen leave-one-corpus-out by bench/voice.py
# Settings chosen on validation splits (never on a test split); see bench/README.md "pretrained".
RECIPE: dict[str, Any] = {
    "hidden": 64,
    "seeds": [1, 2, 3],
    "sentiment": {"task": "regression", "corpora": ["mosi"],
                  # MiniLM's top layer trained with the network: it won on validation (bench/README.md "finetune.py")
                  "train": {"batch_size": 4, "lr": 1e-3, "epochs": 40, "patience": 8, "valid_ratio": 0.1,
                            "finetune_text": 1, "text_lr": 1e-4}},
    "emotion": {"task": "emotion-class", "corpora": ["meld", "goemotions", "voice"],
                # the top layer trained here too: validation wF1 MELD 62.6 vs 59.1, GoEmotions 64.9 vs 58.4 frozen
                "train": {"batch_size": 64, "lr": 1e-3, "epochs": 8, "patience": 3, "valid_ratio": 0.1, "select": "metric",
                          "class_weights": "sqrt", "modality_dropout": 0.2, "balance_corpora": True,
                          "finetune_text": 1, "text_lr": 1e-4}},
}
# The face and the uncertain flag: fixed before any test clip was scored (no corpus here has labelled faces, so
# nothing could be fitted). The face counts half as much as the calibrated words+voice network in the product of
# experts: FER2013's mini-Xception is about 66% right on posed still faces and less on talking ones, and it is
# the one expert nothing here could calibrate. Uncertain: a fused top probability under 0.4, or two readings that
# each name a different emotion with at least 0.6.
TEXT_TUNING = ("finetune_text", "text_lr")  # RECIPE train keys of `train --finetune-text`
FUSION = {"face_weight": 0.5, "min_confidence": 0.4, "disagree_confidence": 0.6}
# Published figures for scale (other models, other features; the splits differ where noted).
PUBLISHED = {
    "mosi": "Multilogue-Net paper: 82.10 binary accuracy on CMU-MOSEI (not MOSI); text-only BERT-era models report ~80-85 on MOSI's standard test set",
    "meld": "MELD paper (Poria et al., 2019): text-CNN 55.02 weighted F1, 7 emotions, on MELD's test set (we score its dev set)",
    "goemotions": "GoEmotions paper (Demszky et al., 2020): BERT macro F1 0.64 on the Ekman grouping, as multi-label classification",
}


# ------------------------------------------------------------------ datasets
def build_datasets(shared: Path, work: Path, workers: int | None = None) -> dict[str, Path]:
    """Each corpus as a dataset file in `work` (built once)."""
    from data.dataset import save_dataset
    from pipeline.importers.corpora import import_goemotions, import_meld, sentences_only
    from pipeline.importers.seed import import_seed

    work.mkdir(parents=True, exist_ok=True)
    cache = work / "text-features"
    paths = {c: work / f"{c}.pkl" for c in ("mosi", "meld", "goemotions", "voice")}
    steps = {
        "mosi": lambda p: save_dataset(sentences_only(import_seed(shared / "mosi" / "mosi_dev.pkl"), TEXT, source="CMU-MOSI", cache_dir=cache), p),
        "meld": lambda p: import_meld([shared / "meld" / "train_sent_emo.csv"], p, test=[shared / "meld" / "dev_sent_emo.csv"], text=TEXT,
                                      cache_dir=cache),
        "goemotions": lambda p: import_goemotions(shared / "goemotions", p, text=TEXT, cache_dir=cache),
        "voice": lambda p: save_dataset(build_voice(shared, work, workers or 2), p),
    }
    for name, path in paths.items():
        if path.exists():
            log.info("%s: %s exists, reused", name, path)
            continue
        t = time.time()
        log.info("%s: building %s", name, path)
        steps[name](path)
        log.info("%s: built in %.0f s", name, time.time() - t)
    return paths


def build_voice(shared: Path, work: Path, workers: int) -> dict:
    """The voice corpora as one dataset: AUDIO features, MiniLM text of RAVDESS's transcripts, and the transcriber
    recorded (predict transcribes a clip without transcript as these were)."""
    from extractors import build_extractor
    from extractors.asr import build_transcriber, spec_of
    from pipeline.release.voice import compute_all, voice_clips, voice_dataset

    clips = voice_clips(shared)
    compute_all(clips, work / "voice", workers)
    ds = voice_dataset(clips, work / "voice", audio=AUDIO, text=build_extractor("text", TEXT), cuts_in_test=("whisper", "whole"))
    ds["meta"]["features"]["audio"] = _audio_spec()
    ds["meta"]["features"]["asr"] = spec_of(build_transcriber("whisper"))
    return ds


def _audio_spec() -> dict:
    """The spec of the extractor that computed the voice corpora's AUDIO features (what predict rebuilds)."""
    from extractors import build_extractor
    from extractors.base import spec_of

    return spec_of(build_extractor("audio", AUDIO))


def load_corpora(paths: dict[str, Path], names: list[str]) -> dict:
    from data.dataset import load_dataset
    from data.merge import merge_datasets

    return merge_datasets({n: load_dataset(paths[n]) for n in names})


# ------------------------------------------------------------------ training
def fine_tuned(kind: str) -> bool:
    """Whether RECIPE[kind] fine-tunes the text encoder (`train --finetune-text`)."""
    return bool(RECIPE[kind]["train"].get("finetune_text"))


def train(kind: str, ds: dict, work: Path, seeds: list[int], hidden: int, frozen: bool = False) -> Path:
    """One model of RECIPE[kind] as a seed ensemble in work/runs/kind; returns its folder. frozen: the same recipe with
    the text encoder frozen (the baseline of a fine-tuned recipe), in work/runs/kind-frozen."""
    from pipeline.training.runs import plan_runs, run_plan

    spec = RECIPE[kind]
    out = work / "runs" / (f"{kind}-frozen" if frozen else kind)
    settings = {k: v for k, v in spec["train"].items() if not (frozen and k in TEXT_TUNING)}
    if fine_tuned(kind) and not frozen:
        settings["text_cache"] = str(work / "token-states")
    model = {"d_emotion": hidden, "d_hidden": hidden, "d_global": round(1.5 * hidden), "d_party": round(1.5 * hidden)}
    runs, ensembles = plan_runs(spec["task"], out, seeds=seeds, train={**settings, "device": "cpu"}, model_overrides=model)
    t = time.time()

    def done(name: str, metrics: dict) -> None:
        log.info("%s %s: %s (%.0f s so far)", kind, name, {k: round(v, 3) for k, v in metrics["test"].items() if isinstance(v, float)}, time.time() - t)

    run_plan(ds, runs, ensembles, resume=True, start_new=True, on_done=done)  # continue what was started, start the rest
    return out


def scored_dataset(run: Path, ds: dict, work: Path) -> dict:
    """The dataset as the ensemble in `run` reads it: its text features through the fine-tuned encoder when it has one."""
    from model.checkpoint import read_checkpoint
    from pipeline.training.finetune import adapted_dataset

    ckpt = read_checkpoint(run / "checkpoint.pt")
    return adapted_dataset(ds, ckpt["text_delta"], work / "token-states") if "text_delta" in ckpt else ds


def validation_ids(run: Path, ds: dict) -> tuple[list[str], list[str]]:
    """The (train, valid) videos the ensemble's members were selected on."""
    from model.checkpoint import read_checkpoint
    from pipeline.training.train import split_validation

    ckpt = read_checkpoint(run / "checkpoint.pt")
    joint = run / "config.json"  # a fine-tuned ensemble is one run; a frozen one's members have their own folders
    cfg = json.loads((joint if joint.is_file() else run / f"seed-{ckpt['seeds'][0]}" / "config.json").read_text())["train"]
    return split_validation(ds["train"], cfg["valid_ratio"], cfg["split_seed"], ds["meta"].get("groups"))


def calibrate(run: Path, ds: dict) -> dict[str, Any]:
    """The emotion ensemble's temperatures, each fitted on its validation utterances: `voice_temperature` on those
    the network hears a voice in, `temperature` on the others (words alone); the calibration error there before and
    after, in all and per part."""
    from model.checkpoint import load_model
    from pipeline.prediction.readings import FusionRule, expected_calibration_error as ece, fit_temperature
    from pipeline.release.evaluation import network_outputs

    model, _ = load_model(run / "checkpoint.pt")
    _, valid = validation_ids(run, ds)
    probs, labels, voiced = network_outputs(model, ds, valid)
    parts = {"words": ~voiced, "voice": voiced}
    fitted = {k: fit_temperature(probs[sel], labels[sel]) if sel.any() else 1.0 for k, sel in parts.items()}
    calibrated = FusionRule(temperature=fitted["words"], voice_temperature=fitted["voice"]).calibrate(probs, voiced)
    out: dict[str, Any] = {"temperature": fitted["words"], "voice_temperature": fitted["voice"], "valid_utterances": int(len(labels)),
                           "valid_ece_before": ece(probs, labels), "valid_ece_after": ece(calibrated, labels)}
    for k, sel in parts.items():
        out[f"valid_{k}"] = {"utterances": int(sel.sum()), "ece_before": ece(probs[sel], labels[sel]) if sel.any() else None,
                             "ece_after": ece(calibrated[sel], labels[sel]) if sel.any() else None}
    return out


# ------------------------------------------------------------------ evaluation
def _flat(ds: dict, vids: list[str], modalities: list[str]) -> np.ndarray:
    k = [("text", "audio", "visual").index(m) for m in modalities]
    rows = []
    for v in vids:
        present = ds["present"][v][:, k]
        x = np.concatenate([ds[f"{m}_feat"][v] for m in modalities], axis=1)
        rows.append(np.concatenate([x, present.astype(np.float32)], axis=1))  # presence flags: absent rows are zeros
    return np.concatenate(rows)


def baseline(ds: dict, task: str, train_ids: list[str], valid_ids: list[str]) -> Any:
    """Logistic (classes) or ridge (scores) regression on the utterances' features (+ presence flags), strength
    chosen on the validation conversations: a function videos -> predictions of their labelled utterances."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from model.tasks import get_task

    spec = get_task(task)
    mods = [m for m in ("text", "audio", "visual") if ds[f"{m}_feat"][ds["ID"][0]].shape[1] > 0]

    def xy(vids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        x = _flat(ds, vids, mods)
        y = np.concatenate([spec.targets(ds["labels"][v]) for v in vids])
        keep = ~np.isnan(y)
        return x[keep], y[keep]

    x_tr, y_tr = xy(train_ids)
    x_va, y_va = xy(valid_ids)
    best = None
    for strength in (1e-3, 1e-2, 1e-1, 1.0):
        if spec.regression:
            model = make_pipeline(StandardScaler(), Ridge(alpha=1 / strength)).fit(x_tr, y_tr)
            score = -np.mean(np.abs(np.clip(model.predict(x_va), -3, 3) - y_va))
        else:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=2000, class_weight="balanced")).fit(x_tr, y_tr.astype(int))
            score = spec.metrics(y_va, model.predict(x_va))[spec.primary[0]]
        if best is None or score > best[0]:
            best = (score, strength, model)
    _, strength, model = best
    log.info("baseline %s: strength %g chosen on validation", task, strength)

    def predict(vids: list[str]) -> np.ndarray:
        x, _ = xy(vids)
        return np.clip(model.predict(x), -3, 3) if spec.regression else model.predict(x).astype(int)

    predict.strength = strength  # type: ignore[attr-defined]
    return predict


def evaluate_sentiment(run: Path, ds: dict, base_ds: dict | None = None) -> dict[str, Any]:
    """The sentiment ensemble, its members and the linear baseline on MOSI's test split. ds: as the ensemble reads it
    (scored_dataset); base_ds: the frozen features the linear baseline reads (default ds)."""
    import torch

    from model.checkpoint import load_model
    from model.dialogues import DialogueDataset
    from model.tasks import get_task
    from pipeline.training.train import evaluate

    model, ckpt = load_model(run / "checkpoint.pt")
    train_ids, valid_ids = validation_ids(run, ds)
    base_ds = ds if base_ds is None else base_ds
    base = baseline(base_ds, "regression", train_ids, valid_ids)
    members = list(model.members)
    data = DialogueDataset(ds, ds["test"], "regression")
    r = evaluate(model, data, "regression", torch.device("cpu"))
    single = [evaluate(m, data, "regression", torch.device("cpu"))["metrics"] for m in members]
    truth = np.concatenate([get_task("regression").targets(ds["labels"][v]) for v in ds["test"]])
    truth = truth[~np.isnan(truth)]
    return {"task": "regression", "seeds": ckpt["seeds"], "corpora": {"mosi": {
        "videos": len(ds["test"]), "utterances": r["n"], "model": r["metrics"],
        "single_runs": {k: [float(np.mean([m[k] for m in single])), float(np.std([m[k] for m in single]))] for k in single[0]},
        "baseline": {**get_task("regression").metrics(truth, base(base_ds["test"])), "strength": base.strength}, "published": PUBLISHED["mosi"]}}}


def evaluate_emotion(run: Path, ds: dict, calibration: dict, base_ds: dict | None = None) -> dict[str, Any]:
    """The emotion ensemble (calibrated as predict does, `calibrate`'s temperatures), the spread of its members and the
    linear baseline on every test group. ds: as the ensemble reads it (scored_dataset); base_ds: the frozen features
    the linear baseline reads (default ds)."""
    from model.checkpoint import load_model
    from pipeline.release.evaluation import emotion_scores, network_outputs, split_figures, test_groups

    model, ckpt = load_model(run / "checkpoint.pt")
    train_ids, valid_ids = validation_ids(run, ds)
    base = baseline(ds if base_ds is None else base_ds, "emotion-class", train_ids, valid_ids)
    rule = calibration_rule(calibration)
    figures = split_figures(model, ds, rule, base)
    members = list(model.members)
    for name, vids in test_groups(ds).items():
        if name not in figures:
            continue
        scores = []
        for m in members:
            probs, labels, voiced = network_outputs(m, ds, vids)
            scores.append(emotion_scores(labels, rule.calibrate(probs, voiced)))
        keys = ("accuracy", "f1_weighted", "f1_macro", "uar")
        figures[name]["single_runs"] = {k: [float(np.mean([s[k] for s in scores])), float(np.std([s[k] for s in scores]))] for k in keys}
        figures[name]["published"] = PUBLISHED.get(name)
    return {"task": "emotion-class", "seeds": ckpt["seeds"], "strength": base.strength, "corpora": figures}


def calm_speech(shared: Path, work: Path) -> dict[str, list[Path]]:
    """Calm speech to check the voice against: real (GRID's four commands, CREMA-D's neutral takes, RAVDESS's held-out
    actors' neutral and calm takes) and synthetic (the demo's neutral sentences spoken by espeak-ng, when
    `python -m demo.calm` has written them into work/calm)."""
    from pipeline.release.voice import RAVDESS, RAVDESS_TEST_ACTORS

    out: dict[str, list[Path]] = {"GRID (real, calm commands)": sorted((shared / "clips").glob("*.mpg")),
                                  "CREMA-D neutral (real, acted neutral)": sorted((shared / "cremad").glob("*_NEU_*")),
                                  "RAVDESS 19-20 neutral and calm (real, acted)": [
                                      p for a in RAVDESS_TEST_ACTORS for p in sorted((shared / "ravdess" / f"Actor_{a:02d}").glob("*.flac"))
                                      if (m := RAVDESS.match(p.stem)) and int(m.group(1)) in (1, 2)]}
    # the demo's neutral sentences, written by `python -m demo.calm WORK/calm` (make pretrained runs it first)
    out["demo neutral sentences (espeak-ng, synthetic)"] = sorted((work / "calm").glob("*.wav"))
    return {k: v for k, v in out.items() if v}


def add_frozen(part: dict, frozen: dict) -> None:
    """Put the frozen-encoder ensemble's figures (and its members' spread) beside each test group's ("frozen")."""
    for group, r in part["corpora"].items():
        if group in frozen["corpora"]:
            f = frozen["corpora"][group]
            r["frozen"] = {"model": f["model"], "single_runs": f.get("single_runs")}


# ------------------------------------------------------------------ export
def export(run: Path, dest: Path, extra: dict | None = None) -> Path:
    """The ensemble as float16, with its metrics (and `extra` entries, e.g. the fusion rule), into dest/checkpoint.pt."""
    import shutil

    from model.checkpoint import read_checkpoint, save_checkpoint

    dest.mkdir(parents=True, exist_ok=True)
    ckpt = read_checkpoint(run / "checkpoint.pt")
    ckpt.pop("path", None)
    ckpt.update(extra or {})
    save_checkpoint(ckpt, dest / "checkpoint.pt", half=True)
    shutil.copyfile(run / "metrics.json", dest / "metrics.json")
    return dest / "checkpoint.pt"


def calibration_rule(calibration: dict) -> Any:
    """The FusionRule of `calibrate`'s temperatures alone (what the figures of the network are scored with)."""
    from pipeline.prediction.readings import FusionRule

    return FusionRule(temperature=calibration["temperature"], voice_temperature=calibration.get("voice_temperature"))


def fusion_rule(calibration: dict) -> dict[str, Any]:
    """The emotion checkpoint's "fusion" entry: calibration (`calibrate`'s temperatures), the face expert (the
    default facemesh extractor, whose features 11-17 are the FER probabilities) and FUSION."""
    from dataclasses import replace

    from extractors import build_extractor
    from extractors.base import spec_of

    face = spec_of(build_extractor("visual", "facemesh"))
    return replace(calibration_rule(calibration), face=face, **FUSION,
                   notes={"temperature": "fitted on the validation utterances without a voice (negative log-likelihood)",
                          "voice_temperature": "fitted on the validation utterances with a voice (negative log-likelihood)",
                          "face_weight": "fixed before any test clip was scored; see FUSION in pipeline/release/pretrained.py"}).to_dict()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data", help="the corpora (see ../shared/data/README.md)")
    ap.add_argument("--work", type=Path, default=ROOT / ".cache" / "pretrained", help="datasets and runs (kept for resuming)")
    ap.add_argument("--out", type=Path, default=ROOT / "model" / "pretrained", help="where the shipped model goes")
    ap.add_argument("--seeds", default=",".join(map(str, RECIPE["seeds"])), help="ensemble seeds")
    ap.add_argument("--hidden", type=int, default=RECIPE["hidden"], help="model width (D_e = D_h; D_g = D_p = 1.5x)")
    ap.add_argument("--workers", type=int, default=None, help="feature workers (the voice corpora)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for training (default: all cores)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for name in ("pipeline", "extractors", "data", "model"):
        logging.getLogger(name).setLevel(logging.INFO)
    if not args.shared.is_dir():
        print(f"error: {args.shared}: not found; the recipe trains on the corpora in ../shared/data (see its README)", file=sys.stderr)
        return 2
    import torch

    from pipeline.release import evaluation
    from pipeline.release.voice import AUGMENTED, CUTS, RAVDESS_TEST_ACTORS, URDU_TEST_SPEAKERS

    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    paths = build_datasets(args.shared, args.work, args.workers)
    report: dict[str, Any] = {"recipe": {**RECIPE, "seeds": seeds, "hidden": args.hidden, "text": TEXT, "audio": AUDIO, "fusion": FUSION,
                                         "voice": {"augmented_copies": AUGMENTED, "cuts": list(CUTS), "ravdess_test_actors": list(RAVDESS_TEST_ACTORS),
                                                   "urdu_test_speakers": list(URDU_TEST_SPEAKERS)}}}
    ds = load_corpora(paths, RECIPE["sentiment"]["corpora"])
    run = train("sentiment", ds, args.work, seeds, args.hidden)
    report["sentiment"] = evaluate_sentiment(run, scored_dataset(run, ds, args.work), ds)
    if fine_tuned("sentiment"):  # the same recipe with the encoder frozen, beside each figure
        frozen = evaluate_sentiment(train("sentiment", ds, args.work, seeds, args.hidden, frozen=True), ds)
        add_frozen(report["sentiment"], frozen)
    export(run, args.out / "sentiment")

    ds = load_corpora(paths, RECIPE["emotion"]["corpora"])
    run = train("emotion", ds, args.work, seeds, args.hidden)
    scored = scored_dataset(run, ds, args.work)
    report["calibration"] = calibrate(run, scored)
    report["emotion"] = evaluate_emotion(run, scored, report["calibration"], ds)
    if fine_tuned("emotion"):
        frozen_run = train("emotion", ds, args.work, seeds, args.hidden, frozen=True)
        add_frozen(report["emotion"], evaluate_emotion(frozen_run, ds, calibrate(frozen_run, ds)))
    export(run, args.out / "emotion", {"fusion": fusion_rule(report["calibration"])})

    report["clips"] = {"ravdess": evaluation.ravdess_clips(args.out, args.shared, RAVDESS_TEST_ACTORS),
                       "urdu": evaluation.urdu_clips(args.out, args.shared, URDU_TEST_SPEAKERS),
                       "cremad": evaluation.cremad_clips(args.out, args.shared),
                       "calm": evaluation.calm_clips(args.out, calm_speech(args.shared, args.work))}
    from pipeline.release.model_card import write_model_card

    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    write_model_card(report, args.out / "MODEL_CARD.md")
    print(f"wrote {args.out}: sentiment/, emotion/, report.json, MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
