"""Benchmark the large-vocabulary GloVe path: a 2M-word 300-d text file (glove.840B-sized).

Prints the one-time conversion to gensim's native format, then the memory-mapped load (time and RSS) in a
fresh process, as a later extraction run would see it. Target: load within 5 s.

    python bench/extract_glove.py                    # 2,000,000 x 300 in a temporary folder (~5 GB disk)
    python bench/extract_glove.py --words 200000     # quicker

`run_glove_benchmark()` returns the figures for bench/extract_speed.py to print.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_glove_text(path: Path, n_words: int, dim: int, pool: int = 20_000, seed: int = 0) -> None:
    """A GloVe-format text file: n_words distinct words, random 5-decimal vectors (rows reused from a pool,
    so writing 5 GB takes seconds rather than minutes; parsing cost is what a real file costs)."""
    rng = np.random.default_rng(seed)
    rows = [" ".join(f"{x:.5f}" for x in v) for v in rng.normal(0, 0.4, (min(pool, n_words), dim))]
    with open(path, "w", encoding="utf-8") as f:
        block = 50_000
        for start in range(0, n_words, block):
            stop = min(start + block, n_words)
            f.write("".join(f"w{i} {rows[i % len(rows)]}\n" for i in range(start, stop)))


# Run in a fresh interpreter so the figures are a later run's: nothing cached, RSS from zero.
_LOAD_CODE = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from extractors.text_glove import get_vectors
t1 = time.perf_counter()
kv = get_vectors({src!r}, {cache!r})
t2 = time.perf_counter()
v = kv["w12345"]
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "rss_mb": rss(),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "words": len(kv.key_to_index), "dim": kv.vector_size, "ok": bool(abs(v).sum() > 0)}}))
"""


def run_glove_benchmark(n_words: int = 2_000_000, dim: int = 300, workdir: str | None = None) -> dict:
    """Generate, convert (one time) and load (memory-mapped, fresh process); returns the figures."""
    with tempfile.TemporaryDirectory(dir=workdir, prefix="glove-bench-") as tmp:
        src, cache = Path(tmp) / "glove.big.txt", Path(tmp) / "cache"
        t = time.perf_counter()
        write_glove_text(src, n_words, dim)
        gen_s = time.perf_counter() - t
        text_gb = src.stat().st_size / 1e9

        code = _LOAD_CODE.format(root=str(ROOT), src=str(src), cache=str(cache))
        t = time.perf_counter()
        first = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                          check=True).stdout)
        convert_s = time.perf_counter() - t - first["import_s"]
        later = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                          check=True).stdout)
        native_gb = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 1e9
    return {"words": n_words, "dim": dim, "text_gb": text_gb, "generate_s": gen_s, "convert_s": convert_s,
            "convert_peak_rss_mb": first["peak_rss_mb"], "native_gb": native_gb,
            "load_s": later["load_s"], "load_rss_mb": later["rss_mb"], "import_s": later["import_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=2_000_000, help="vocabulary size (default: %(default)s)")
    parser.add_argument("--dim", type=int, default=300, help="vector size (default: %(default)s)")
    parser.add_argument("--workdir", default=None, help="where the temporary files go (default: system temp)")
    args = parser.parse_args()
    r = run_glove_benchmark(args.words, args.dim, args.workdir)
    print(f"GloVe text file: {r['words']:,} words x {r['dim']} ({r['text_gb']:.2f} GB), written in {r['generate_s']:.1f} s")
    print(f"one-time conversion to gensim format: {r['convert_s']:.1f} s, peak RSS {r['convert_peak_rss_mb']:.0f} MB, "
          f"{r['native_gb']:.2f} GB on disk")
    print(f"later runs, memory-mapped load: {r['load_s']:.2f} s (target < 5 s), RSS after load {r['load_rss_mb']:.0f} MB "
          f"(plus {r['import_s']:.1f} s of imports)")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
