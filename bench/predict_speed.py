"""Cold `cli.py predict` latency on a 30 s clip with the default extractors, with a per-stage breakdown.

The clip: a generated two-speaker conversation (espeak-ng sentences over real faces, as `make demo` makes
them), 30 s, 240x240 H.264 at 10 fps, with a timed .srt beside it; a copy without transcript measures the
automatic-transcription route (Whisper tiny.en, the default transcriber). The checkpoints: a regression model
and six emotion models (as `make demo` trains them) with the paper's dimensions and the default feature spec (GloVe 50-d, openSMILE IS09, facemesh); their
weights are random, since speed does not depend on them (`--checkpoint DIR` uses real ones).

Measured:
1. End to end: `python cli.py predict CLIP --checkpoint DIR --format json` in a fresh process, wall time,
   `--repeat` times (the page cache is warm after the first; each process is cold: imports, model and
   extractor loading, everything).
2. Per stage, in a fresh process driving the same code path (pipeline.prediction.predict) with timers: interpreter
   start-up, imports (cli + pipeline.prediction.predict), model load (torch import + 7 checkpoints), extractor build,
   decode, segments (transcript / Whisper), text, audio, visual (each includes loading its library and
   model on first use), model (7 forward passes), output. Then the same clip again in that process (warm),
   which separates one-time loading from per-clip work, and the copy without transcript (Whisper's model
   load and transcription show in "segments").

    python bench/predict_speed.py [--repeat 3] [--seconds 30] [--checkpoint DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SENTENCES = [
    ("A", "this is the best day of my whole life", "happiness"), ("B", "everything went wrong and I feel miserable", "sadness"),
    ("A", "I am so angry I could scream at them", "anger"), ("B", "the kitchen was filthy and it made me want to vomit", "disgust"),
    ("A", "the meeting is on monday morning", "neutral"), ("B", "thank you, that was a lovely and kind surprise", "surprise"),
    ("A", "I am scared the bridge will fall", "fear"), ("B", "we should meet again next week", "neutral"),
    ("A", "what a wonderful surprise this is", "surprise"), ("B", "I cannot stand this terrible noise", "anger"),
    ("A", "please tell me more about your trip", "neutral"), ("B", "I really loved the concert last night", "happiness"),
    ("A", "the food was cold and disgusting", "disgust"), ("B", "I miss my old friends so much", "sadness"),
]


def make_clip(folder: Path, seconds: float) -> tuple[Path, Path]:
    """A ~`seconds` s clip with a .srt beside it, and a copy without transcript. Returns (clip, untranscribed copy)."""
    from demo.run import FaceBank, Utterance, _srt, write_clip

    utts, total = [], 0.2
    from demo.clipgen import SR, speak

    while total < seconds - 1.5:
        sp, text, cat = SENTENCES[len(utts) % len(SENTENCES)]
        utts.append(Utterance(sp, text, cat))
        total += len(speak(text, "en-us")) / SR + 0.35
    clip = folder / "talk30.mp4"
    spans = write_clip(clip, utts, FaceBank(), random.Random(0))
    clip.with_suffix(".srt").write_text(_srt(spans, utts), encoding="utf-8")
    bare = folder / "asr" / "talk30.mp4"
    bare.parent.mkdir(exist_ok=True)
    bare.write_bytes(clip.read_bytes())
    return clip, bare


def make_checkpoints(folder: Path) -> Path:
    """Regression + six emotion checkpoints, random weights, the default extractors' and transcriber's spec."""
    from data.dataset import EMOTIONS
    from model.checkpoint import make_checkpoint, save_checkpoint
    from model.config import ModelConfig
    from model.network import MultilogueNet
    from pipeline.extraction.settings import ExtractSettings

    settings = ExtractSettings.create()
    specs = dict(settings.specs)
    dims = [specs[m]["dim"] for m in ("text", "audio", "visual")]
    specs["asr"] = settings.asr  # what `cli.py extract` records: the default transcriber
    runs = [("regression", None, folder / "regression")] + [("emotion", e, folder / "emotion" / e) for e in EMOTIONS]
    for task, emotion, out in runs:
        out.mkdir(parents=True, exist_ok=True)
        model = MultilogueNet(ModelConfig.for_task(task, *dims))
        save_checkpoint(make_checkpoint(model, task, emotion, specs), out / "checkpoint.pt")
    return folder


DRIVER = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {repo!r})
import cli  # noqa: F401  (what `cli.py predict` imports before it runs)
from pipeline.prediction.predict import Predictor
from pipeline.prediction.output import format_json
stages = {{"imports": time.perf_counter() - t0}}
predictor = Predictor({ckpt!r})
runs = []
for clip in {clips!r}:
    before = dict(predictor.timings)
    t = time.perf_counter()
    result = predictor.predict(clip)
    out = format_json([result])
    wall = time.perf_counter() - t
    spent = {{k: v - before.get(k, 0.0) for k, v in predictor.timings.items() if v - before.get(k, 0.0) > 0}}
    spent["output"] = wall - sum(v for k, v in spent.items() if k not in ("model load", "extractor build"))
    runs.append({{"stages": spent, "wall": wall, "utterances": len(result["utterances"])}})
stages.update({{k: predictor.timings[k] for k in ("model load", "extractor build")}})
print(json.dumps({{"start": stages, "clips": runs, "total_first": stages["imports"] + stages["model load"] + stages["extractor build"] + runs[0]["wall"]}}))
"""


def python_startup() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t


def end_to_end(clip: Path, ckpt: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = subprocess.run([sys.executable, str(REPO / "cli.py"), "predict", str(clip), "--checkpoint", str(ckpt), "--format", "json"],
                           capture_output=True, text=True, cwd=REPO)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit(f"predict failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
        json.loads(r.stdout)
    return times


def staged(clips: list[Path], ckpt: Path) -> dict:
    code = DRIVER.format(repo=str(REPO), ckpt=str(ckpt), clips=[str(c) for c in clips])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--checkpoint", type=Path, default=None, help="real checkpoints to use instead of random-weight ones")
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated clip and checkpoints in this folder")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="predict_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"cores {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    clip, bare = make_clip(work, args.seconds)
    ckpt = args.checkpoint or make_checkpoints(work / "runs")
    from extractors.media import decode

    duration = decode(clip, video=False).duration
    print(f"clip {clip} ({duration:.1f} s, with .srt); checkpoints {ckpt}")

    print(f"\n1. end to end, fresh process each: python cli.py predict CLIP --format json  (load {os.getloadavg()[0]:.2f})")
    for name, c in (("with transcript", clip), ("no transcript (Whisper)", bare)):
        times = end_to_end(c, ckpt, args.repeat)
        print(f"  {name:<30} median {statistics.median(times):5.2f} s  min {min(times):5.2f} s  ({', '.join(f'{t:.2f}' for t in times)})")

    print(f"\n2. per stage, fresh process; the clip twice (cold, then warm), then its copy without transcript "
          f"(Whisper: its model loads on first use)  (load {os.getloadavg()[0]:.2f})")
    res = staged([clip, clip, bare], ckpt)
    startup = python_startup()
    cold, warm, auto = res["clips"]
    stages = ["decode", "segments", "text", "audio", "visual", "model", "output"]
    print(f"  {'stage':<18} {'cold s':>7} {'warm s':>7} {'no transcript s':>16}")
    print(f"  {'python start-up':<18} {startup:7.2f}")
    for k in ("imports", "model load", "extractor build"):
        print(f"  {k:<18} {res['start'][k]:7.2f}")
    for k in stages:
        print(f"  {k:<18} {cold['stages'].get(k, 0.0):7.2f} {warm['stages'].get(k, 0.0):7.2f} {auto['stages'].get(k, 0.0):16.2f}")
    total_cold = startup + res["total_first"]
    print(f"  {'total':<18} {total_cold:7.2f} {warm['wall']:7.2f} {auto['wall']:16.2f}   ({cold['utterances']} utterances, "
          f"{auto['utterances']} transcribed; target <= 10 s cold)")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
