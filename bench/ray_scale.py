"""Extraction on this machine's worker processes vs on Ray (1 and 2 worker processes), Ray's overhead per clip,
and a paper estimate of CMU-MOSEI extraction time on N machines.

Corpus (generated in a temporary folder): `--clips` talking-face videos (scikit-image's astronaut, 240x240
at 10 fps, H.264 + AAC), each `--sentences` espeak-ng sentences with a timed .srt, extracted with the default
extractors (GloVe 6B 50-d, openSMILE IS09, facemesh + FER at 5 fps): what a MOSEI-like corpus with
transcripts goes through.

Each configuration runs in a child process of its own, twice with an empty cache each time:
- cold: the first run, which starts the workers and loads the libraries and models in them;
- warm: a second run in the same process (local: the warm fork server; Ray: the same job's worker processes,
  whose extractors are already built), the steady state of a long extraction.
Configurations: local `--workers 1` (in the process, torch and ffmpeg on all cores) and `--workers 2`
(forked workers, one thread each); Ray with a private instance of 1 and 2 CPUs (one single-threaded worker
process each), clips on the shared path. The Ray child also times the instance's start and a bare Ray task:
one no-op task at a time (latency) and 1,000 at once (throughput).

Throughput in the steady state: clips per second from the first clip each worker finished to the last one
(start-up left out). Ray's overhead per clip = workers x (1 / Ray's steady rate - 1 / local's steady rate):
the worker time Ray adds to each clip. The MOSEI
estimate scales the measured CPU cost per second of media (all stages, one core each, from the warm local
2-worker run) to MOSEI's 65 hours (3,228 videos), spread over N machines of C cores, plus Ray's per-clip
overhead and a worker start-up; it assumes perfect scaling and clips like these (MOSEI's YouTube videos are
larger frames at 30 fps: decoding costs more there).

    python bench/ray_scale.py [--clips 16] [--sentences 4] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SENTENCES = [
    "the weather is lovely today", "I am very happy to see you", "this is terrible news",
    "we should meet again next week", "I cannot believe what happened", "thank you so much for your help",
    "that was the worst movie I have ever seen", "what a wonderful surprise", "please tell me more about it",
    "I am not sure about this plan",
]
MOSEI_VIDEOS, MOSEI_HOURS = 3228, 65.0


def build_corpus(folder: Path, clips: int, sentences: int) -> None:
    from demo.clipgen import astronaut, make_clip

    face = astronaut()
    for i in range(clips):
        said = [SENTENCES[(i + k) % len(SENTENCES)] for k in range(sentences - 1)] + [f"this is clip number {i}"]  # all distinct
        segs = make_clip(folder / f"clip{i:02d}.mp4", said, face, gap=0.5)

        def clock(x: float) -> str:
            return f"00:{int(x // 60):02d}:{x % 60:06.3f}".replace(".", ",")

        (folder / f"clip{i:02d}.srt").write_text("".join(f"{k}\n{clock(s.start)} --> {clock(s.end)}\n{'A' if k % 2 else 'B'}: {s.text}\n\n"
                                                         for k, s in enumerate(segs, 1)), encoding="utf-8")


def child(backend: str, workers: int, folder: Path, scratch: Path) -> dict:
    """Two extractions (cold, warm) with one configuration; returns their figures as a dict."""
    import contextlib

    from pipeline.extraction.folder import extract_folder
    from pipeline.extraction.settings import ExtractSettings

    out: dict = {"backend": backend, "workers": workers}
    with contextlib.ExitStack() as stack:
        ray_address = None
        if backend == "ray":
            from pipeline.cluster import ray_cluster

            t = time.perf_counter()
            stack.enter_context(ray_cluster("local", num_cpus=workers))
            out["ray_start_s"] = time.perf_counter() - t
            ray_address = "local"  # extract_folder uses the instance this process is connected to
        for run in ("cold", "warm"):
            done: list[float] = []
            t = time.perf_counter()
            settings = ExtractSettings.create(cache_dir=scratch / f"cache-{backend}{workers}-{run}")
            report = extract_folder(folder, scratch / f"{backend}{workers}-{run}.pkl", settings, workers=workers, ray=ray_address, progress=lambda d, n, **_: d and done.append(time.perf_counter()))
            wall = time.perf_counter() - t
            assert report.ok and report.computed == report.clips, report.failures
            # steady state: from the first clip each worker finished to the last clip (start-up left out)
            steady = (len(done) - workers) / (done[-1] - done[workers - 1])
            out[run] = {"wall_s": wall, "clips": report.clips, "media_s": report.media_seconds, "cpu_s": sum(report.stage_seconds.values()),
                        "stages": report.stage_seconds, "builds": report.worker_builds, "steady_clips_s": steady}
        if backend == "ray":
            out["task"] = bare_task_overhead()
    return out


def bare_task_overhead() -> dict:
    """Seconds per no-op Ray task: one at a time (submit, run, return), and 1,000 in flight at once."""
    import ray

    @ray.remote(num_cpus=1)
    def noop(x: int) -> int:
        return x

    ray.get([noop.remote(i) for i in range(20)])  # the workers are up
    t = time.perf_counter()
    for i in range(200):
        ray.get(noop.remote(i))
    serial = (time.perf_counter() - t) / 200
    t = time.perf_counter()
    ray.get([noop.remote(i) for i in range(1000)])
    batch = (time.perf_counter() - t) / 1000
    return {"latency_s": serial, "throughput_s": batch}


def run_child(backend: str, workers: int, folder: Path, scratch: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", backend, str(workers), str(folder), str(scratch)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{backend} x{workers} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--sentences", type=int, default=4)
    ap.add_argument("--keep", type=Path, default=None, help="build the corpus here and keep it (reused when present)")
    ap.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if args.child:
        backend, workers, folder, scratch = args.child
        print(json.dumps(child(backend, int(workers), Path(folder), Path(scratch))))
        return

    with tempfile.TemporaryDirectory(prefix="ray_scale_") as tmp:
        folder = args.keep or Path(tmp) / "corpus"
        if not list(folder.glob("*.mp4")):
            t = time.perf_counter()
            build_corpus(folder, args.clips, args.sentences)
            print(f"corpus: {args.clips} clips generated in {time.perf_counter() - t:.1f} s")
        load = os.getloadavg()
        results = []
        for backend, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
            scratch = Path(tmp) / f"{backend}{workers}"
            scratch.mkdir()
            results.append(run_child(backend, workers, folder, scratch))
            r = results[-1]
            extra = f"; instance start {r['ray_start_s']:.1f} s" if backend == "ray" else ""
            print(f"{backend} x{workers}: cold {r['cold']['wall_s']:.1f} s ({r['cold']['clips'] / r['cold']['wall_s']:.2f} clips/s), "
                  f"warm {r['warm']['wall_s']:.1f} s ({r['warm']['clips'] / r['warm']['wall_s']:.2f} clips/s){extra}", flush=True)
        load_after = os.getloadavg()
        report(results, load, load_after)


def report(results: list[dict], load: tuple, load_after: tuple) -> None:
    by = {(r["backend"], r["workers"]): r for r in results}
    clips = results[0]["warm"]["clips"]
    media = results[0]["warm"]["media_s"]
    print(f"\n{clips} clips, {media:.1f} s of media ({media / clips:.1f} s each); load average {load[0]:.1f} before, {load_after[0]:.1f} after\n")
    print("| backend | workers | cold wall | cold clips/s | warm wall | warm clips/s | steady clips/s (warm) | steady x real time |")
    print("|---|---|---|---|---|---|---|---|")
    for (backend, workers), r in by.items():
        c, w = r["cold"], r["warm"]
        print(f"| {backend} | {workers} | {c['wall_s']:.1f} s | {c['clips'] / c['wall_s']:.2f} | {w['wall_s']:.1f} s | "
              f"{w['clips'] / w['wall_s']:.2f} | {w['steady_clips_s']:.2f} | {w['steady_clips_s'] * media / clips:.1f} |")
    overhead = {}
    for n in (1, 2):
        # seconds of a worker per clip, Ray minus local, in the steady state
        overhead[n] = n * (1 / by[("ray", n)]["warm"]["steady_clips_s"] - 1 / by[("local", n)]["warm"]["steady_clips_s"])
        print(f"Ray overhead per clip, {n} worker(s) (steady state, Ray - local, worker time): {overhead[n] * 1000:+.0f} ms")
    task = by[("ray", 2)]["task"]
    print(f"bare Ray task: {task['latency_s'] * 1000:.1f} ms one at a time, {task['throughput_s'] * 1000:.2f} ms each with 1,000 in flight; "
          f"instance start {by[('ray', 1)]['ray_start_s']:.1f} s / {by[('ray', 2)]['ray_start_s']:.1f} s")
    print("extractors built per Ray worker process (warm run):", sorted(set(by[("ray", 2)]["warm"]["builds"].values())) or "-")

    base = by[("local", 2)]["warm"]
    cpu_rt = base["cpu_s"] / base["media_s"]  # core-seconds per second of media
    stages = {k: v / base["media_s"] for k, v in base["stages"].items()}
    over = max(0.0, overhead[2])  # worker-seconds per clip
    startup = by[("ray", 2)]["cold"]["wall_s"] - by[("ray", 2)]["warm"]["wall_s"]
    total = MOSEI_HOURS * 3600 * cpu_rt
    print(f"\nper-clip cost: {cpu_rt:.3f} core-seconds per second of media ("
          + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()) + ")")
    print(f"CMU-MOSEI ({MOSEI_VIDEOS:,} videos, {MOSEI_HOURS:.0f} h): {total / 3600:.1f} core-hours; estimated wall time "
          f"(perfect scaling + Ray's {over * 1000:.0f} ms of a worker per clip + {startup:.0f} s start-up):")
    print("| machines | 2 cores each | 16 cores each |")
    print("|---|---|---|")
    for n in (1, 2, 4, 8, 16, 32):
        cells = []
        for cores in (2, 16):
            slots = n * cores
            wall = total / slots + MOSEI_VIDEOS * over / slots + startup
            cells.append(f"{wall / 3600:.1f} h" if wall >= 3600 else f"{wall / 60:.0f} min")
        print(f"| {n} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
