"""Several datasets as one, e.g. text corpora and audio corpora for one model.

    ds = merge_datasets({"meld": meld, "ravdess": ravdess})        # video ids become "meld/...", "ravdess/..."

Each modality must come from the same extractor (name, params, dim) wherever a dataset has it; a dataset
without it (spec "none", width 0) gets zero rows of the common width with the modality absent (`present`
False). Other entries of the feature spec (e.g. "asr": how automatic transcripts were made) are kept when
the datasets agree or only one has them. Splits, labels, speakers and timings are kept per video.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data.dataset import FEATURE_KEYS, MODALITIES, PER_VIDEO_KEYS, PRESENT, empty_dataset, presence, validate_dataset
from core.errors import DatasetError

NONE = "none"


def _common_specs(parts: dict[str, dict]) -> dict[str, dict]:
    specs: dict[str, dict] = {}
    for name, ds in parts.items():
        for key, spec in ds["meta"].get("features", {}).items():
            if not isinstance(spec, dict) or (key in MODALITIES and spec.get("name") == NONE):
                continue
            have = specs.get(key)
            if have is None:
                specs[key] = dict(spec, source=name)
            elif (have.get("name"), have.get("params"), have.get("dim")) != (spec.get("name"), spec.get("params"), spec.get("dim")):
                raise DatasetError(f"{name}: its {key} features come from {spec.get('name')} {spec.get('params')} ({spec.get('dim')}-d) but "
                                   f"{have['source']}'s from {have.get('name')} {have.get('params')} ({have.get('dim')}-d); "
                                   f"extract or import every dataset with the same {key} extractor")
    out = {k: {kk: vv for kk, vv in v.items() if kk != "source"} for k, v in specs.items()}
    for m in MODALITIES:
        out.setdefault(m, {"name": NONE, "params": {}, "dim": 0})
    return out


def merge_datasets(parts: dict[str, dict]) -> dict:
    """{prefix: dataset} -> one validated dataset; video ids become "<prefix>/<id>"."""
    if not parts:
        raise DatasetError("nothing to merge")
    specs = _common_specs(parts)
    provenance: dict[str, Any] = {"merged": {name: ds["meta"].get("provenance", {}) for name, ds in parts.items()}}
    out = empty_dataset(features=specs, provenance=provenance)
    for name, ds in parts.items():
        for vid in ds["ID"]:
            new = f"{name}/{vid}"
            out["ID"].append(new)
            n = len(ds["speakers"][vid])
            for key in PER_VIDEO_KEYS:
                out[key][new] = ds[key][vid]
            pres = presence(ds, vid).copy()
            for k, (m, key) in enumerate(zip(MODALITIES, FEATURE_KEYS)):
                if ds[key][vid].shape[1] != specs[m]["dim"]:  # a dataset without this modality
                    out[key][new] = np.zeros((n, specs[m]["dim"]), dtype=np.float32)
                    pres[:, k] = False
            out[PRESENT][new] = pres
            if vid in ds["meta"].get("timings", {}):
                out["meta"]["timings"][new] = ds["meta"]["timings"][vid]
            if vid in ds["meta"].get("groups", {}):
                out["meta"].setdefault("groups", {})[new] = f"{name}/{ds['meta']['groups'][vid]}"
        out["train"] += [f"{name}/{v}" for v in ds["train"]]
        out["test"] += [f"{name}/{v}" for v in ds["test"]]
    return validate_dataset(out, "merged dataset")
