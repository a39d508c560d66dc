"""CMU-MultimodalSDK .csd import: exact alignment on generated sequences, the real CMU-MOSI labels file,
every user error through the CLI, and import followed by one epoch of training."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import cli
from pipeline.importers.align import overlap_mean, words_in_segments
from pipeline.importers.csd import import_csd
from data.dataset import LABEL_COLUMNS, load_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MOSI_LABELS = SHARED / "mosi" / "CMU_MOSI_Opinion_Labels.csd"


def write_csd(path: Path, videos: dict, root: str = "seq", metadata: bool = True) -> Path:
    """videos: {vid: (features, intervals)} -> a .csd file in the SDK's layout."""
    with h5py.File(path, "w") as f:
        data = f.create_group(root).create_group("data")
        for vid, (feats, iv) in videos.items():
            g = data.create_group(vid)
            g.create_dataset("features", data=feats)
            g.create_dataset("intervals", data=np.asarray(iv, dtype=np.float64))
        if metadata:
            f[root].create_group("metadata").create_dataset("dataset name", data=['"toy"'], dtype=h5py.string_dtype())
    return path


def frames(t0: float, t1: float, hz: float, value) -> tuple[np.ndarray, np.ndarray]:
    """Rows of constant `value` (a vector) at `hz` covering [t0, t1)."""
    t = np.arange(t0, t1 - 1e-9, 1 / hz)
    return np.tile(np.asarray(value, np.float32), (len(t), 1)), np.stack([t, t + 1 / hz], 1)


def cat(*parts):
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# ---------------------------------------------------------------- alignment rules
def test_partial_overlaps_are_weighted_by_duration():
    iv = np.array([[0, 1], [1, 3], [3, 4]], float)
    x = np.array([[1.0], [4.0], [10.0]], np.float32)
    seg = np.array([[0.5, 2.0], [2.5, 3.5], [0, 4]])
    out, covered = overlap_mean(iv, x, seg)
    # (0.5*1 + 1*4) / 1.5 = 3; (0.5*4 + 0.5*10) / 1 = 7; (1 + 2*4 + 10) / 4 = 4.75
    assert out[:, 0].tolist() == [3.0, 7.0, 4.75]
    assert covered.all()


def test_gap_gives_zeros_and_is_not_covered():
    iv = np.array([[0, 1], [3, 4]], float)
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    out, covered = overlap_mean(iv, x, np.array([[1.0, 3.0], [1.2, 2.0], [5, 6]]))
    assert covered.tolist() == [False, False, False]  # touching the gap's edges is no overlap
    assert (out == 0).all()


def test_point_rows_and_point_segments():
    points = np.array([[0.5, 0.5], [1.0, 1.0], [1.5, 1.5]])
    x = np.array([[1.0], [2.0], [3.0]], np.float32)
    out, covered = overlap_mean(points, x, np.array([[0.4, 1.2], [1.5, 2.0], [2.0, 3.0]]))
    assert out[:, 0].tolist() == [1.5, 3.0, 0.0] and covered.tolist() == [True, True, False]
    # a zero-length segment takes the rows whose closed interval holds it (both at a shared boundary)
    iv = np.array([[0, 1], [1, 2]], float)
    out, _ = overlap_mean(iv, np.array([[1.0], [3.0]], np.float32), np.array([[1.0, 1.0], [0.5, 0.5]]))
    assert out[:, 0].tolist() == [2.0, 1.0]
    # a point row inside a segment that rows with duration overlap is ignored
    iv = np.array([[0, 2], [1, 1]], float)
    out, _ = overlap_mean(iv, np.array([[4.0], [100.0]], np.float32), np.array([[0.0, 2.0]]))
    assert out[0, 0] == 4.0


def test_unsorted_and_overlapping_rows():
    iv = np.array([[3, 4], [0, 10], [1, 2]], float)  # a long row spans later ones
    x = np.array([[3.0], [1.0], [2.0]], np.float32)
    out, _ = overlap_mean(iv, x, np.array([[5.0, 6.0], [1.0, 2.0], [3.0, 4.0]]))
    assert out[:, 0].tolist() == [1.0, 1.5, 2.0]


def brute_force(iv, x, seg):
    out = np.zeros((len(seg), x.shape[1]))
    for j, (s, e) in enumerate(seg):
        w = np.clip(np.minimum(iv[:, 1], e) - np.maximum(iv[:, 0], s), 0, None)
        if w.sum() == 0:
            touch = (iv[:, 0] <= e) & (iv[:, 1] >= s)
            w = (touch & ((iv[:, 0] == iv[:, 1]) | (s == e))).astype(float)
        if w.sum() > 0:
            out[j] = (w[:, None] * x).sum(0) / w.sum()
    return out


def test_matches_brute_force_on_random_rows():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n, k = int(rng.integers(1, 60)), int(rng.integers(1, 12))
        start = np.round(rng.uniform(0, 20, n), 1)
        iv = np.stack([start, start + np.round(rng.choice([0, 0.1, 0.5, 3], n), 1)], 1)
        s = np.round(rng.uniform(-1, 21, k), 1)
        seg = np.stack([s, s + np.round(rng.choice([0, 0.3, 2, 6], k), 1)], 1)
        x = rng.standard_normal((n, 3)).astype(np.float32)
        out, covered = overlap_mean(iv, x, seg)
        np.testing.assert_allclose(out, brute_force(iv, x.astype(float), seg), rtol=1e-5, atol=1e-6)
        assert covered.tolist() == (np.abs(brute_force(iv, np.ones((n, 1)), seg)[:, 0]) > 0).tolist()


def test_words_go_to_the_segment_holding_their_midpoint():
    iv = np.array([[0.0, 0.4], [0.4, 1.0], [1.0, 1.2], [1.2, 2.0], [3.0, 3.5]])
    words = ["hello", "sp", "big", "world", "later"]
    assert words_in_segments(iv, words, np.array([[0.0, 1.15], [1.15, 2.5], [2.5, 2.9]])) == ["hello big", "world", ""]


# ---------------------------------------------------------------- a toy MOSEI-like set with known values
def toy_set(tmp_path: Path, audio_nan: bool = False, drop_visual: str | None = None) -> dict[str, Path]:
    """Two videos. v1: segments [0,2] and [3,5] (a 1 s gap in between); v2: one segment [1,2].
    Every modality is constant within each segment (segment j of v1 has value j+1, v2 has 7), so the
    aligned features are known exactly. Label rows are stored in reverse time order for v1."""
    labels = {
        "v1": (np.array([[-1.5, 0, 1, 0, 0, 0, 2], [2.0, 3, 0, 0, 0, 1, 0]], np.float32), [[3.0, 5.0], [0.0, 2.0]]),
        "v2": (np.array([[0.5, 1, 1, 1, 1, 1, 1]], np.float32), [[1.0, 2.0]]),
    }
    mods = {}
    for name, hz, d in (("text", 2, 4), ("audio", 100, 3), ("visual", 30, 2)):
        v1 = cat(frames(0, 2, hz, [1] * d), frames(3, 5, hz, [2] * d))
        v2 = cat(frames(0, 1, hz, [9] * d), frames(1, 2, hz, [7] * d), frames(2, 3, hz, [9] * d))
        if name == "audio" and audio_nan:
            v1[0][5, 1] = np.nan
            v1[0][7, :] = np.inf
        mods[name] = {"v1": v1, "v2": v2}
    if drop_visual:
        del mods["visual"][drop_visual]
    words = {
        "v1": (np.array([[b"good"], [b"sp"], [b"movie"], [b"bad"], [b"end"]]), [[0.1, 0.5], [0.5, 0.8], [1.0, 1.5], [3.2, 3.6], [4.0, 4.4]]),
        "v2": (np.array([[b"ok"]]), [[1.2, 1.4]]),
    }
    paths = {"labels": write_csd(tmp_path / "labels.csd", labels, root="All Labels")}
    for name, vids in mods.items():
        paths[name] = write_csd(tmp_path / f"{name}.csd", vids, root=name)
    paths["words"] = write_csd(tmp_path / "words.csd", words, root="words", metadata=False)
    return paths


def args_for(paths: dict[str, Path], out: Path, *extra: str) -> list[str]:
    argv = ["import", "csd", "--labels", str(paths["labels"])]
    for name in ("text", "audio", "visual", "words"):
        if name in paths:
            argv += [f"--{name}", str(paths[name])]
    return argv + ["-o", str(out), *extra]


def test_import_gives_exact_values(tmp_path, capsys):
    paths = toy_set(tmp_path, audio_nan=True)
    out = tmp_path / "ds.pkl"
    assert cli.main(args_for(paths, out, "--test-ratio", "0.5", "--seed", "3")) == 0
    printed = capsys.readouterr().out
    assert "2 videos, 3 utterances" in printed and "non-finite values 4" in printed
    ds = load_dataset(out)
    assert ds["ID"] == ["v1", "v2"] and sorted(ds["train"] + ds["test"]) == ["v1", "v2"]
    # v1's label rows came in reverse time order: utterances follow time, csd_rows maps back
    assert ds["meta"]["timings"]["v1"] == [[0.0, 2.0], [3.0, 5.0]] and ds["meta"]["csd_rows"]["v1"] == [1, 0]
    np.testing.assert_array_equal(ds["labels"]["v1"], np.array([[2.0, 3, 0, 0, 0, 1, 0], [-1.5, 0, 1, 0, 0, 0, 2]], np.float32))
    np.testing.assert_array_equal(ds["text_feat"]["v1"], [[1] * 4, [2] * 4])
    np.testing.assert_array_equal(ds["visual_feat"]["v1"], [[1] * 2, [2] * 2])
    np.testing.assert_array_equal(ds["text_feat"]["v2"], [[7] * 4])
    np.testing.assert_array_equal(ds["audio_feat"]["v2"], [[7] * 3])
    # non-finite audio values became 0 inside v1's first segment: 200 frames, one with a NaN, one all inf
    np.testing.assert_allclose(ds["audio_feat"]["v1"][0], [199 / 200, 198 / 200, 199 / 200])
    assert ds["sentence_in_text"] == {"v1": ["good movie", "bad end"], "v2": ["ok"]}
    assert ds["speakers"]["v1"] == ["A", "A"]
    spec = ds["meta"]["features"]
    assert spec["text"] == {"name": "csd", "params": {"file": "text.csd", "root": "text", "alignment": "overlap_mean"}, "dim": 4}
    assert (spec["audio"]["dim"], spec["visual"]["dim"]) == (3, 2)
    report = ds["meta"]["provenance"]["report"]
    assert report["nonfinite"] == {"text": 0, "audio": 4, "visual": 0}
    assert report["zero_overlap"] == {"text": 0, "audio": 0, "visual": 0}


def test_gap_between_rows_counts_zero_overlap(tmp_path):
    paths = toy_set(tmp_path)
    # text rows only cover [0, 2]: v1's second segment [3, 5] has no word vector
    write_csd(paths["text"], {"v1": frames(0, 2, 2, [1, 1]), "v2": frames(1, 2, 2, [5, 5])}, root="text")
    ds, report = import_csd(paths["labels"], text=paths["text"], audio=paths["audio"])
    assert report.zero_overlap == {"text": 1, "audio": 0}
    np.testing.assert_array_equal(ds["text_feat"]["v1"], [[1, 1], [0, 0]])
    assert ds["visual_feat"]["v1"].shape == (2, 0) and ds["meta"]["features"]["visual"]["name"] == "none"


def test_missing_video_dropped_or_kept(tmp_path):
    paths = toy_set(tmp_path, drop_visual="v2")
    ds, report = import_csd(paths["labels"], text=paths["text"], audio=paths["audio"], visual=paths["visual"])
    assert ds["ID"] == ["v1"] and report.dropped == ["v2"] and report.missing["visual"] == ["v2"]
    assert any("dropped" in line and "v2" in line for line in report.summary_lines())
    ds, report = import_csd(paths["labels"], text=paths["text"], audio=paths["audio"], visual=paths["visual"], keep_missing=True)
    assert ds["ID"] == ["v1", "v2"] and report.filled == ["v2"]
    np.testing.assert_array_equal(ds["visual_feat"]["v2"], np.zeros((1, 2)))
    np.testing.assert_array_equal(ds["text_feat"]["v2"], [[7] * 4])


def test_folds_valid_joins_train(tmp_path):
    paths = toy_set(tmp_path)
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": [], "valid": ["v1"], "test": ["v2", "gone"]}))
    ds, report = import_csd(paths["labels"], text=paths["text"], folds=folds)
    assert ds["train"] == ["v1"] and ds["test"] == ["v2"]
    assert ds["meta"]["splits"] == {"source": "folds.json", "valid": ["v1"]}
    assert report.fold_absent == ["gone"]
    folds.write_text(json.dumps({"train": ["v1"], "test": []}))
    ds, report = import_csd(paths["labels"], text=paths["text"], folds=folds)
    assert ds["ID"] == ["v1"] and report.unlisted == ["v2"]


def test_random_split_is_seeded_by_video(tmp_path):
    vids = {f"v{i}": (np.zeros((2, 1), np.float32), [[0, 1], [1, 2]]) for i in range(10)}
    labels = write_csd(tmp_path / "l.csd", vids)
    a, _ = import_csd(labels, test_ratio=0.3, seed=1)
    b, _ = import_csd(labels, test_ratio=0.3, seed=1)
    c, _ = import_csd(labels, test_ratio=0.3, seed=2)
    from data.splits import hash_split

    assert a["test"] == b["test"] == hash_split(sorted(vids), 0.3, 1, "test")[1]  # the one split function
    assert 1 <= len(a["test"]) <= 6 and not set(a["test"]) & set(a["train"]) and len(a["test"] + a["train"]) == 10
    assert a["test"] != c["test"]
    assert a["meta"]["splits"] == {"source": "random", "test_ratio": 0.3, "seed": 1, "valid": []}


# ---------------------------------------------------------------- the real CMU-MOSI labels file
@pytest.mark.skipif(not MOSI_LABELS.exists(), reason="real data not present (../shared/data)")
def test_real_mosi_opinion_labels(tmp_path):
    out = tmp_path / "mosi.pkl"
    assert cli.main(["import", "csd", "--labels", str(MOSI_LABELS), "-o", str(out)]) == 0
    ds = load_dataset(out)
    assert len(ds["ID"]) == 93 and sum(len(v) for v in ds["speakers"].values()) == 2199
    assert ds["meta"]["provenance"]["labels"]["root"] == "Opinion Segment Labels"
    assert ds["meta"]["provenance"]["labels"]["metadata"]["dataset name"] == "CMU-MOSI"
    with h5py.File(MOSI_LABELS, "r") as f:
        data = f["Opinion Segment Labels"]["data"]
        for vid in ("VbQk4H8hgr0", "d6hH302o4v8", "2WGyTLYerpo"):  # two stored out of time order; one zero-length
            raw = data[vid]["features"][:, 0]
            rows = ds["meta"]["csd_rows"][vid]
            np.testing.assert_array_equal(ds["labels"][vid][:, 0], raw[rows])
            starts = [s for s, _ in ds["meta"]["timings"][vid]]
            assert starts == sorted(starts)
    labels = np.concatenate([ds["labels"][v] for v in ds["ID"]])
    assert np.abs(labels[:, 0]).max() <= 3 and np.isnan(labels[:, 1:]).all()
    assert ds["text_feat"]["VbQk4H8hgr0"].shape[1] == 0


@pytest.mark.skipif(not (SHARED / "mosi" / "mosi_dev.pkl").exists(), reason="real data not present (../shared/data)")
def test_real_mosi_labels_with_folds_match_an_independent_release(tmp_path):
    from core.fileio import safe_load_pickle

    seed = safe_load_pickle(SHARED / "mosi" / "mosi_dev.pkl")  # the seed's 9-tuple: labels [2], train [7], test [8]
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": list(seed[7]), "test": list(seed[8])}))
    ds, report = import_csd(MOSI_LABELS, folds=folds)
    assert (len(ds["train"]), len(ds["test"]), len(report.unlisted)) == (62, 11, 20)
    for vid in ds["ID"]:
        back = np.empty(len(ds["labels"][vid]), np.float32)
        back[ds["meta"]["csd_rows"][vid]] = ds["labels"][vid][:, 0]  # undo the time ordering
        np.testing.assert_allclose(back, np.asarray(seed[2][vid], np.float32).ravel(), atol=1e-5)


# ---------------------------------------------------------------- user errors: exit 2, one line, no file
def _broken(tmp_path: Path, case: str) -> tuple[list[str], str]:
    """Build one broken input; return (argv, text the error line must contain)."""
    paths = toy_set(tmp_path)
    out = str(tmp_path / "out.pkl")
    base = ["import", "csd", "--labels", str(paths["labels"])]
    bad = tmp_path / "bad.csd"
    v = {"v1": frames(0, 5, 2, [1.0]), "v2": frames(0, 3, 2, [1.0])}
    if case == "not-hdf5":
        bad.write_text("this is not HDF5\n")
        return base + ["--audio", str(bad), "-o", out], "not a readable HDF5"
    if case == "truncated":
        bad.write_bytes(paths["audio"].read_bytes()[:3000])
        return base + ["--audio", str(bad), "-o", out], "bad.csd"
    if case == "no-such-file":
        return base + ["--audio", str(tmp_path / "nope.csd"), "-o", out], "no such file"
    if case == "no-root":
        h5py.File(bad, "w").close()
        return base + ["--audio", str(bad), "-o", out], "no root group"
    if case == "no-data":
        with h5py.File(bad, "w") as f:
            f.create_group("seq").create_group("metadata")
        return base + ["--audio", str(bad), "-o", out], "no 'data' group"
    if case == "no-intervals":
        with h5py.File(bad, "w") as f:
            f.create_group("seq/data/v1").create_dataset("features", data=np.zeros((2, 1)))
        return base + ["--audio", str(bad), "-o", out], "video 'v1': missing 'intervals'"
    if case == "end-before-start":
        v["v2"] = (v["v2"][0], v["v2"][1].copy())
        v["v2"][1][2] = [1.5, 1.0]
        write_csd(bad, v)
        return base + ["--audio", str(bad), "-o", out], "video 'v2': interval 2 ends before it starts"
    if case == "label-end-before-start":
        write_csd(bad, {"v1": (np.zeros((1, 1), np.float32), [[2.0, 1.0]])})
        return ["import", "csd", "--labels", str(bad), "-o", out], "video 'v1': interval 0 ends before it starts"
    if case == "row-mismatch":
        v["v1"] = (v["v1"][0][:-1], v["v1"][1])
        write_csd(bad, v)
        return base + ["--audio", str(bad), "-o", out], "video 'v1': 9 feature rows but 10 intervals"
    if case == "width-mismatch":
        v["v2"] = (np.zeros((6, 2), np.float32), v["v2"][1])
        write_csd(bad, v)
        return base + ["--audio", str(bad), "-o", out], "video 'v2': features are 2-d but earlier videos are 1-d"
    if case == "label-columns":
        write_csd(bad, {"v1": (np.zeros((1, 3), np.float32), [[0.0, 1.0]])})
        return ["import", "csd", "--labels", str(bad), "-o", out], "3 label columns"
    if case == "words-as-text":
        return base + ["--text", str(paths["words"]), "-o", out], "holds words, not feature vectors"
    if case == "all-missing":
        write_csd(bad, {"other": frames(0, 1, 2, [1.0])})
        return base + ["--audio", str(bad), "-o", out], "is this the right file for --audio"
    if case == "folds-json":
        (tmp_path / "f.json").write_text("{not json")
        return base + ["--folds", str(tmp_path / "f.json"), "-o", out], "not valid JSON"
    if case == "folds-keys":
        (tmp_path / "f.json").write_text(json.dumps({"training": []}))
        return base + ["--folds", str(tmp_path / "f.json"), "-o", out], "'train', 'test'"
    if case == "folds-overlap":
        (tmp_path / "f.json").write_text(json.dumps({"train": ["v1"], "test": ["v1"]}))
        return base + ["--folds", str(tmp_path / "f.json"), "-o", out], "in both 'train' and 'test'"
    if case == "folds-and-ratio":
        (tmp_path / "f.json").write_text(json.dumps({"train": ["v1"], "test": ["v2"]}))
        return base + ["--folds", str(tmp_path / "f.json"), "--test-ratio", "0.3", "-o", out], "--folds fixes the split"
    if case == "bad-ratio":
        return base + ["--test-ratio", "1.5", "-o", out], "argument --test-ratio: 1.5 is out of range; give a number in [0, 1)"
    if case == "out-is-input":
        return base + ["-o", str(paths["labels"])], "labels.csd is one of this command's inputs; write to a new file"
    if case == "no-labels":
        return ["import", "csd", "-o", out], "--labels"
    raise AssertionError(case)


ERROR_CASES = [
    "not-hdf5", "truncated", "no-such-file", "no-root", "no-data", "no-intervals", "end-before-start", "label-end-before-start",
    "row-mismatch", "width-mismatch", "label-columns", "words-as-text", "all-missing", "folds-json", "folds-keys",
    "folds-overlap", "folds-and-ratio", "bad-ratio", "out-is-input", "no-labels",
]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, case):
    argv, expected = _broken(tmp_path, case)
    labels_before = (tmp_path / "labels.csd").read_bytes()
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse errors
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert expected in err, err
    assert not (tmp_path / "out.pkl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert (tmp_path / "labels.csd").read_bytes() == labels_before
    if case in ("not-hdf5", "end-before-start", "row-mismatch", "width-mismatch", "no-intervals"):
        assert "bad.csd" in err


# ---------------------------------------------------------------- the whole path: import, then train
def test_import_then_train_one_epoch(tmp_path):
    train_mod = pytest.importorskip("pipeline.training.train", reason="pipeline/training/train.py not available yet")
    from model.config import TrainConfig

    rng = np.random.default_rng(0)
    labels, mods = {}, {"text": {}, "audio": {}, "visual": {}}
    for i in range(8):
        vid = f"vid{i}"
        k = 3 + i % 3
        seg = np.stack([np.arange(k) * 2.0, np.arange(k) * 2.0 + 1.5], 1)
        lab = np.concatenate([rng.uniform(-3, 3, (k, 1)), rng.choice([0.0, 1.0, 2.0], (k, 6))], 1)
        labels[vid] = (lab.astype(np.float32), seg)
        for name, hz, d in (("text", 2, 6), ("audio", 20, 5), ("visual", 15, 4)):
            t = np.arange(0, 2 * k, 1 / hz)
            mods[name][vid] = (rng.standard_normal((len(t), d)).astype(np.float32), np.stack([t, t + 1 / hz], 1))
    paths = {"labels": write_csd(tmp_path / "labels.csd", labels)}
    for name, vids in mods.items():
        paths[name] = write_csd(tmp_path / f"{name}.csd", vids)
    out = tmp_path / "ds.pkl"
    assert cli.main(args_for(paths, out, "--test-ratio", "0.25")) == 0
    tcfg = TrainConfig.for_task("binary", epochs=1, device="cpu", batch_size=4)
    metrics = train_mod.run_training(out, tmp_path / "run", tcfg)
    assert metrics["epochs_run"] == 1 and "test" in metrics
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    ds = load_dataset(out)
    assert not np.isnan(ds["labels"]["vid0"][:, LABEL_COLUMNS.index("fear")]).any()


def test_labels_given_as_a_feature_sequence_are_refused(tmp_path, capsys):
    """import csd --audio LABELS.csd would train on the answers: the labels file itself, a sequence whose root or
    metadata says labels, and a renamed copy of the labels are each refused with one line, nothing written."""
    paths = toy_set(tmp_path)
    out = tmp_path / "ds.pkl"
    copy = tmp_path / "copy.csd"
    with h5py.File(paths["labels"], "r") as src:
        videos = {v: (src["All Labels/data"][v]["features"][()], src["All Labels/data"][v]["intervals"][()]) for v in ("v1", "v2")}
    write_csd(copy, videos, root="covarep")
    labelled = write_csd(tmp_path / "opinion.csd", {v: frames(0, 5, 10, [1, 2, 3]) for v in ("v1", "v2")}, root="Opinion Segment Labels")
    for audio, expect in ((paths["labels"], "is the --labels file"),
                          (labelled, "is a labels sequence (its root or metadata says 'Opinion Segment Labels')"),
                          (copy, "video 'v1' holds the same rows as the labels file labels.csd")):
        code = cli.main(["import", "csd", "--labels", str(paths["labels"]), "--text", str(paths["text"]), "--audio", str(audio), "-o", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert f"--audio {audio}: {expect}; pass a feature sequence as --audio" in err, err
        assert not out.exists()
