#!/usr/bin/env python3
"""Time and peak memory of `cli.py import csd` on a generated CMU-MOSEI-sized set of .csd files.

The set mirrors CMU-MOSEI's shape: 3,228 videos, 23,000 labelled segments (7 label columns), word-level
300-d text vectors (~450,000 words), 74-d acoustic frames at 20 Hz (~4.7M rows) and 35-d facial frames
at 15 Hz (~3.5M rows), gzip-compressed like the SDK's files, with a few NaN/inf values, three videos
missing from the visual file, and a folds JSON. The import runs in a child process, so its peak RSS is
the child's alone; the files are fresh in the page cache (a cold disk adds its read time).

    python bench/import_speed.py [--scale 0.1] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEOS, SEGMENTS, WORDS = 3228, 23_000, 450_000
AUDIO_HZ, VISUAL_HZ, AUDIO_ROWS = 20, 15, 4_700_000
DIMS = {"text": 300, "audio": 74, "visual": 35}


class CsdWriter:
    """Writes one computational sequence video by video, in the SDK's layout."""

    def __init__(self, path: Path, root: str, gzip_level: int):
        self.h5 = h5py.File(path, "w")
        self.data = self.h5.create_group(root).create_group("data")
        meta = self.h5[root].create_group("metadata")
        meta.create_dataset("root name", data=[json.dumps(root)], dtype=h5py.string_dtype())
        self.opts = {"compression": "gzip", "compression_opts": gzip_level} if gzip_level > 0 else {}

    def add(self, vid: str, features: np.ndarray, intervals: np.ndarray) -> None:
        g = self.data.create_group(vid)
        g.create_dataset("features", data=features, **self.opts)
        g.create_dataset("intervals", data=intervals, **self.opts)

    def close(self) -> None:
        self.h5.close()


def generate(folder: Path, scale: float, gzip_level: int, seed: int = 0) -> dict[str, Path]:
    """Write labels/text/audio/visual .csd files and folds.json into `folder`; return their paths."""
    rng = np.random.default_rng(seed)
    n_vid = max(3, round(VIDEOS * scale))
    n_seg = max(n_vid, round(SEGMENTS * scale))
    total_s = AUDIO_ROWS * scale / AUDIO_HZ
    durations = rng.gamma(2.0, 1.0, n_vid)
    durations = np.maximum(durations / durations.sum() * total_s, 5.0)
    segs = 1 + rng.multinomial(n_seg - n_vid, np.full(n_vid, 1 / n_vid))
    words_per_s = WORDS / (AUDIO_ROWS / AUDIO_HZ)
    vids = [f"v{i:05d}" for i in range(n_vid)]
    paths = {name: folder / f"MOSEI_like_{name}.csd" for name in ("labels", "text", "audio", "visual")}
    writers = {name: CsdWriter(p, name, gzip_level) for name, p in paths.items()}
    missing_visual = set(vids[:: max(1, n_vid // 3)][:3])
    try:
        for vid, T, k in zip(vids, durations, segs):
            # segments: k intervals inside [0, T] with small gaps between them
            cuts = np.sort(rng.uniform(0, T, 2 * k))
            seg = cuts.reshape(k, 2)
            labels = np.concatenate([rng.uniform(-3, 3, (k, 1)), rng.choice([0, 0, 1 / 3, 2 / 3, 1, 2], (k, 6))], axis=1)
            writers["labels"].add(vid, labels.astype(np.float32), seg.astype(np.float32))
            n_words = max(1, round(words_per_s * T))
            w_start = np.sort(rng.uniform(0, T, n_words))
            w_iv = np.stack([w_start, w_start + rng.uniform(0.1, 0.5, n_words)], 1)
            writers["text"].add(vid, rng.standard_normal((n_words, DIMS["text"]), dtype=np.float32), w_iv)
            for name, hz in (("audio", AUDIO_HZ), ("visual", VISUAL_HZ)):
                if name == "visual" and vid in missing_visual:
                    continue
                n = int(T * hz)
                t = np.arange(n) / hz
                x = rng.standard_normal((n, DIMS[name]), dtype=np.float32)
                if name == "audio" and n > 10:
                    x[rng.integers(0, n, 3), rng.integers(0, DIMS[name], 3)] = [np.nan, np.inf, -np.inf]
                writers[name].add(vid, x, np.stack([t, t + 1 / hz], 1))
    finally:
        for w in writers.values():
            w.close()
    order = rng.permutation(n_vid)
    n_test, n_valid = round(0.21 * n_vid), round(0.093 * n_vid)
    folds = {
        "test": [vids[i] for i in order[:n_test]],
        "valid": [vids[i] for i in order[n_test : n_test + n_valid]],
        "train": [vids[i] for i in order[n_test + n_valid :]],
    }
    paths["folds"] = folder / "folds.json"
    paths["folds"].write_text(json.dumps(folds))
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the MOSEI-sized set to generate")
    ap.add_argument("--gzip", type=int, default=4, help="gzip level of the generated files (0: none)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the temporary folder goes")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="csd_bench_", dir=args.workdir))
    try:
        t0 = time.perf_counter()
        paths = generate(tmp, args.scale, args.gzip)
        gen_s = time.perf_counter() - t0
        size_gb = sum(p.stat().st_size for p in paths.values()) / 1e9
        rows = {}
        for name in ("text", "audio", "visual"):
            with h5py.File(paths[name], "r") as f:
                data = f[name]["data"]
                rows[name] = sum(data[v]["intervals"].shape[0] for v in data)
        print(f"generated {size_gb:.2f} GB in {gen_s:.0f} s: rows " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))

        out = tmp / "dataset.pkl"
        cmd = [sys.executable, str(ROOT / "cli.py"), "import", "csd", "--labels", str(paths["labels"]), "--text", str(paths["text"]),
               "--audio", str(paths["audio"]), "--visual", str(paths["visual"]), "--folds", str(paths["folds"]), "-o", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wall = time.perf_counter() - t0
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB on Linux
        print(proc.stdout.rstrip())
        if proc.returncode != 0:
            print(f"import failed with exit code {proc.returncode}")
            return 1
        print(f"import: {wall:.1f} s wall, peak RSS {peak_gb:.2f} GiB, dataset {out.stat().st_size / 1e6:.0f} MB "
              f"(targets at scale 1: <= 600 s, <= 4 GB)")
    finally:
        if args.keep:
            print(f"files kept in {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
