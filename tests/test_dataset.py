"""The dataset format: validation, safe loading, seed import, torch batches."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from data.dataset import load_dataset, save_dataset, validate_dataset
from core.errors import DatasetError
from data.seed import from_seed_tuple
from pipeline.importers.seed import import_seed
from model.dialogues import DialogueDataset, collate, task_targets
from tests.synthetic import MOSI_PKL, synthetic_dataset


def test_save_load_roundtrip(tmp_path):
    ds = synthetic_dataset()
    path = save_dataset(ds, tmp_path / "d.pkl")
    back = load_dataset(path)
    assert back["ID"] == ds["ID"] and back["train"] == ds["train"]
    for v in ds["ID"]:
        np.testing.assert_array_equal(back["audio_feat"][v], ds["audio_feat"][v])
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    ds = synthetic_dataset(n_videos=3)
    ds["meta"]["provenance"]["x"] = _Exploit()
    path.write_bytes(pickle.dumps(ds))
    with pytest.raises(DatasetError, match="refusing to load posix.system|refusing to load os.system"):
        load_dataset(path)


def test_pickled_torch_or_pandas_objects_are_refused(tmp_path):
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps({"ID": [], "x": torch.zeros(2)}))
    with pytest.raises(DatasetError, match="refusing"):
        load_dataset(path)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda ds: ds.pop("labels"), "missing key"),
        (lambda ds: ds["audio_feat"].__setitem__("video_000", ds["audio_feat"]["video_000"][:-1]), "video 'video_000': 'audio_feat' has"),
        (lambda ds: ds["text_feat"]["video_001"].__setitem__((0, 0), np.nan), "video 'video_001': 'text_feat' has NaN"),
        (lambda ds: ds["visual_feat"]["video_002"].__setitem__((0, 0), np.inf), "NaN/inf"),
        (lambda ds: ds["test"].append("ghost"), "'test' lists video 'ghost'"),
        (lambda ds: ds["speakers"]["video_003"].append("X"), "video 'video_003': 'speakers' has"),
        (lambda ds: ds["sentence_in_text"]["video_003"].pop(), "'sentence_in_text' has"),
        (lambda ds: ds["labels"].__setitem__("video_004", ds["labels"]["video_004"][:, :3]), "'labels' has shape"),
        (lambda ds: ds["train"].append(ds["test"][0]), "in both 'train' and 'test'"),
        (lambda ds: ds["audio_feat"].__setitem__("video_005", np.zeros((ds["audio_feat"]["video_005"].shape[0], 3), np.float32)), "width 3"),
        (lambda ds: ds["labels"]["video_000"].__setitem__((0, 0), 5.0), "sentiment outside"),
    ],
)
def test_validation_names_video_and_field(mutate, message):
    ds = synthetic_dataset(n_videos=10)
    mutate(ds)
    with pytest.raises(DatasetError, match=message):
        validate_dataset(ds, "d.pkl")


def _seed_tuple(labels_kind="float", speaker_kind="str"):
    rng = np.random.default_rng(0)
    lengths = {"a": 3, "b": 2, "c": 4}
    ids = {v: [f"{v}_{i}" for i in range(n)] for v, n in lengths.items()}
    if speaker_kind == "str":
        spk = {v: ["M"] * n for v, n in lengths.items()}
    else:  # one-hot rows, as in the seed's MOSEI pickles
        spk = {v: [[1, 0] if i % 2 == 0 else [0, 1] for i in range(n)] for v, n in lengths.items()}
    if labels_kind == "float":
        lab = {v: list(rng.uniform(-3, 3, n)) for v, n in lengths.items()}
    else:
        lab = {v: list(rng.integers(0, 2, n)) for v, n in lengths.items()}
    feats = [{v: rng.normal(size=(n, d)).astype(np.float32) for v, n in lengths.items()} for d in (5, 4, 3)]
    sents = {v: [f"s{i}" for i in range(n)] for v, n in lengths.items()}
    return (ids, spk, lab, *feats, sents, ["a", "b"], ["c"])


def test_seed_import_float_labels_and_string_speakers():
    ds = from_seed_tuple(_seed_tuple("float", "str"))
    assert ds["train"] == ["a", "b"] and ds["test"] == ["c"]
    assert ds["labels"]["a"].shape == (3, 7) and np.isnan(ds["labels"]["a"][:, 1:]).all()
    assert ds["meta"]["features"]["audio"]["dim"] == 4


def test_seed_import_int_classes_and_onehot_speakers():
    ds = from_seed_tuple(_seed_tuple("int", "onehot"))
    assert ds["speakers"]["a"] == ["P0", "P1", "P0"]
    assert set(np.unique(ds["labels"]["c"][:, 0])) <= {-1.0, 1.0}
    ds_e = from_seed_tuple(_seed_tuple("int", "str"), column="anger")
    assert np.isnan(ds_e["labels"]["a"][:, 0]).all() and set(np.unique(ds_e["labels"]["a"][:, 3])) <= {0.0, 1.0}


def test_seed_import_rejects_multiclass_ints():
    t = list(_seed_tuple("int"))
    t[2]["a"] = [0, 2, 5]
    with pytest.raises(DatasetError, match="not 0/1 classes"):
        from_seed_tuple(t)


@pytest.mark.skipif(not MOSI_PKL.exists(), reason="../shared/data/mosi/mosi_dev.pkl absent")
def test_real_mosi_seed_pickle_imports():
    ds = import_seed(MOSI_PKL)
    assert len(ds["train"]) == 62 and len(ds["test"]) == 11
    assert sum(len(ds["speakers"][v]) for v in ds["train"]) == 1447
    assert ds["text_feat"][ds["ID"][0]].shape[1] == 100


def test_task_targets():
    labels = np.array([[-1.0, 0, 1, np.nan, 0, 0, 0], [0.0, 2, 0, 0, 0, 0, 0], [np.nan] * 7], np.float32)
    np.testing.assert_array_equal(task_targets(labels, "binary")[:2], [0, 1])
    assert np.isnan(task_targets(labels, "binary")[2])
    np.testing.assert_array_equal(task_targets(labels, "emotion", "happiness")[:2], [0, 1])
    assert np.isnan(task_targets(labels, "emotion", "anger")[0])


def test_collate_pads_masks_and_one_hot_speakers():
    ds = synthetic_dataset(n_videos=6, parties=3)
    data = DialogueDataset(ds, ds["ID"], "binary")
    batch = collate([data[i] for i in range(len(data))])
    lengths = [len(ds["speakers"][v]) for v in ds["ID"]]
    assert batch.mask.shape == (6, max(lengths))
    assert batch.mask.sum(1).tolist() == lengths
    assert batch.speakers.shape[-1] == min(3, max(lengths))
    assert (batch.speakers.sum(-1) == batch.mask.float()).all()
    assert torch.isnan(batch.targets[~batch.mask]).all()


# ---------------------------------------------------------------- absent modalities
def test_format_1_file_loads_with_everything_present(tmp_path):
    ds = synthetic_dataset(n_videos=4)
    ds.pop("present")
    ds["meta"]["format_version"] = 1
    ds["visual_feat"] = {v: np.zeros((len(ds["speakers"][v]), 0), np.float32) for v in ds["ID"]}  # a modality of width 0
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps(ds))
    back = load_dataset(path)
    for v in back["ID"]:
        assert back["present"][v].tolist() == [[True, True, False]] * len(back["speakers"][v])


def test_presence_roundtrip_and_bad_masks(tmp_path):
    ds = synthetic_dataset(n_videos=4)
    vid = ds["ID"][0]
    n = len(ds["speakers"][vid])
    ds["present"][vid] = np.tile([True, False, True], (n, 1))
    save_dataset(ds, tmp_path / "d.pkl")
    back = load_dataset(tmp_path / "d.pkl")
    assert back["meta"]["format_version"] == 2
    assert back["present"][vid].tolist() == [[True, False, True]] * n
    assert back["present"][ds["ID"][1]].all()
    ds["present"][vid] = np.ones((n + 1, 3), bool)
    with pytest.raises(DatasetError, match=rf"video '{vid}': 'present' has shape \({n + 1}, 3\)"):
        validate_dataset(ds, "d.pkl")


def test_modality_dropout_keeps_one_modality_and_its_rate():
    from model.dialogues import drop_modalities

    g = torch.Generator().manual_seed(0)
    present = torch.ones(4000, 5, 3, dtype=torch.bool)
    present[:1000, :, 2] = False  # a quarter without visual
    assert drop_modalities(present, 0.0, g) is present
    out = drop_modalities(present, 0.5, g)
    assert not (out & ~present).any()  # only removes
    assert out.any(2).any(1).all()  # no dialogue loses every modality
    assert (out == out[:, :1]).all()  # whole modalities, for the whole dialogue
    kept = out[:, 0].float().mean(0)
    assert 0.45 < kept[0] < 0.62 and 0.45 < kept[1] < 0.62  # about 1 - p, a little more where all were drawn


def test_feature_statistics_skip_absent_rows():
    from pipeline.training.train import feature_stats

    ds = synthetic_dataset(n_videos=6)
    for v in ds["ID"]:
        n = len(ds["speakers"][v])
        ds["audio_feat"][v][:] = 1.0
        ds["audio_feat"][v][0] = 1000.0  # first utterance's audio is a placeholder...
        ds["present"][v] = np.tile([True, True, True], (n, 1))
        ds["present"][v][0, 1] = False  # ...because it is absent
    mean, std = feature_stats(ds, ds["ID"])["audio"]
    assert torch.allclose(mean, torch.ones_like(mean)) and (std == 1).all()
    item = DialogueDataset(ds, ds["ID"][:1], "binary", modalities=["text", "visual"])[0]
    assert not item.present[:, 1].any() and item.present[:, 0].all()


def test_merge_pads_missing_modalities_and_refuses_other_extractors():
    from data.merge import merge_datasets

    full = synthetic_dataset(n_videos=4, dims=(20, 12, 6), seed=1)
    text_only = synthetic_dataset(n_videos=3, dims=(20, 0, 0), seed=2)
    for m in ("audio", "visual"):
        text_only["meta"]["features"][m] = {"name": "none", "params": {}, "dim": 0}
    text_only["meta"]["features"]["text"] = full["meta"]["features"]["text"]
    merged = merge_datasets({"a": full, "b": text_only})
    assert merged["ID"][:1] == ["a/video_000"] and "b/video_002" in merged["ID"]
    assert merged["train"] == [f"a/{v}" for v in full["train"]] + [f"b/{v}" for v in text_only["train"]]
    v = "b/video_000"
    assert merged["audio_feat"][v].shape == (len(merged["speakers"][v]), 12) and not merged["audio_feat"][v].any()
    assert merged["present"][v][:, 0].all() and not merged["present"][v][:, 1:].any()
    assert merged["present"]["a/video_000"].all()
    np.testing.assert_array_equal(merged["text_feat"][v], text_only["text_feat"]["video_000"])
    other = synthetic_dataset(n_videos=2, dims=(20, 12, 6), seed=9)  # same widths, another extractor's params
    with pytest.raises(DatasetError, match="its text features come from synthetic"):
        merge_datasets({"a": full, "c": other})


def test_the_format_module_stands_alone():
    """data.schema holds the format and its validation: the seed format and the importers build on it, not on
    data.dataset (which reads seed pickles through data.seed), and it imports nothing of the project but core/."""
    import ast

    root = Path(__file__).resolve().parents[1]

    def imported(path: str) -> set[str]:
        tree = ast.parse((root / path).read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}

    for module in ("data/seed.py", "pipeline/importers/csd.py", "data/schema.py"):
        assert "data.dataset" not in imported(module), module
    ours = {m for m in imported("data/schema.py") if m.split(".")[0] in ("core", "data", "model", "pipeline", "extractors")}
    assert ours and all(m.startswith("core.") for m in ours), ours
