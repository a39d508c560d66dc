"""A fine-tuned MiniLM as a delta over the packaged base weights (`train --finetune-text`).

Only what training changed is stored: the weights of the top layers that were trained, as float16, inside the
checkpoint under "text_delta" (one layer is 1.8 M weights, 3.5 MB). The delta names the base it was trained on by
the sha256 of the packaged model.safetensors, and itself by the sha256 of its tensors; the text feature spec of a
fine-tuned model carries both (`describe`), so a dataset or a checkpoint says which encoder made its text
features, and the extraction cache keys on it.

    delta = make_delta(weights, base_sha256, layers=[5])   # {"format", "kind", "layers", "base_sha256", "sha256", "weights"}
    spec_param = describe(delta)                           # {"sha256", "base_sha256", "layers"}: the "delta" param of minilm
    delta = read_delta("runs/x/checkpoint.pt")             # the delta a checkpoint holds, checked

The delta is defined by its float16 tensors: the features of an adapted dataset, of `evaluate` and of `predict`
are all computed from those, so they agree. A delta whose base is not the installed one is refused in one line
(`check_base`): other base weights under the same delta give other features.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from core.errors import ExtractionError

DELTA_FORMAT = 1
DELTA_KEY = "text_delta"  # where a checkpoint holds it


def weights_sha256(weights: dict[str, Any]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def make_delta(weights: dict[str, Any], base_sha256: str, layers: list[int]) -> dict[str, Any]:
    """The delta of trained weights (name -> tensor, names as in model.safetensors), rounded to float16."""
    half = {k: weights[k].detach().cpu().half().contiguous() for k in sorted(weights)}
    return {"format": DELTA_FORMAT, "kind": "layers", "layers": sorted(int(i) for i in layers), "base_sha256": str(base_sha256),
            "sha256": weights_sha256(half), "weights": half}


def describe(delta: dict[str, Any]) -> dict[str, Any]:
    """What a feature spec records of a delta (plain data): its sha256, its base's sha256 and the layers it replaces."""
    return {"sha256": delta["sha256"], "base_sha256": delta["base_sha256"], "layers": list(delta["layers"])}


def delta_problem(delta: Any) -> str | None:
    """What is wrong with a loaded delta dict, or None: its keys, its tensors, and whether they are what its sha256 says."""
    import torch

    if not isinstance(delta, dict) or delta.get("format") != DELTA_FORMAT or delta.get("kind") != "layers":
        return f"its {DELTA_KEY} is not a MiniLM delta of format {DELTA_FORMAT}"
    weights = delta.get("weights")
    if not isinstance(weights, dict) or not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return f"its {DELTA_KEY} holds no weights"
    if not all(isinstance(delta.get(k), str) and len(delta[k]) == 64 for k in ("sha256", "base_sha256")):
        return f"its {DELTA_KEY} lacks the sha256 of its weights or of its base"
    if weights_sha256(weights) != delta["sha256"]:
        return f"its {DELTA_KEY} weights are not the ones its sha256 names (damaged or edited)"
    return None


def check_base(delta: dict[str, Any], installed_sha256: str, package: str) -> None:
    """ExtractionError in one line when the delta was trained on other base weights than the installed ones."""
    if delta["base_sha256"] != installed_sha256:
        raise ExtractionError(f"minilm: the fine-tuned encoder delta {delta['sha256'][:12]} was trained on base weights "
                              f"{delta['base_sha256'][:12]} but the installed {package} has {installed_sha256[:12]}; install the "
                              f"package version the model was trained with, or retrain it with `train --finetune-text`")


def read_delta(path: str | Path, expected: dict[str, Any] | None = None) -> dict[str, Any]:
    """The delta held by a checkpoint file (or a file holding just a delta), checked; `expected` (a spec's
    "delta" param) must name it. ExtractionError in one line otherwise."""
    import torch

    path = Path(path)
    try:
        held = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a missing, torn or foreign file
        raise ExtractionError(f"minilm: cannot read the fine-tuned encoder delta in {path} ({type(e).__name__}); "
                              "pass the checkpoint.pt the model was saved in") from e
    delta = held.get(DELTA_KEY, held) if isinstance(held, dict) else held
    problem = delta_problem(delta)
    if problem:
        raise ExtractionError(f"minilm: {path}: {problem}; pass the checkpoint.pt of `train --finetune-text` the features were made with")
    if expected is not None and delta["sha256"] != expected.get("sha256"):
        raise ExtractionError(f"minilm: {path} holds encoder delta {delta['sha256'][:12]}, not {str(expected.get('sha256'))[:12]} "
                              "that the features were made with; pass the checkpoint they came from")
    return delta
