"""Self-describing checkpoints: format version, task, labels, model config, feature spec, state dict.

Saved with torch.save (atomically) and loaded with weights_only=True: nothing but tensors and plain data.
An ensemble checkpoint (`train --seeds`) holds the members' state dicts in `members` instead of one
`state_dict`; it loads as a model.network.Ensemble. `half=True` stores floating-point weights as float16
(half the size; they are cast back to float32 on load), for shipping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from data.errors import CheckpointError
from data.fileio import atomic_path
from model.config import ModelConfig
from model.network import Ensemble, MultilogueNet
from model.tasks import get_task

CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


def make_checkpoint(model: MultilogueNet, task: str, emotion: str | None, feature_spec: dict, extra: dict | None = None) -> dict:
    return {
        "format_version": CHECKPOINT_VERSION,
        "task": task,
        "emotion": emotion,
        "label_names": list(get_task(task).classes),
        "model_config": model.config.to_dict(),
        "feature_spec": feature_spec,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **(extra or {}),
    }


def make_ensemble_checkpoint(members: list[dict], extra: dict | None = None) -> dict:
    """One checkpoint from member checkpoints of the same task, config and feature spec (read_checkpoint dicts)."""
    first = members[0]
    for m in members[1:]:
        for key in ("task", "emotion", "model_config", "feature_spec"):
            if m.get(key) != first.get(key):
                raise CheckpointError(f"{m.get('path')}: its {key} differs from {first.get('path')}'s; an ensemble needs members of one kind")
    keep = {k: v for k, v in first.items() if k not in ("state_dict", "path", "train_config", "epoch")}
    return {**keep, "members": [m["state_dict"] for m in members], **(extra or {})}


def _half(state: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def save_checkpoint(ckpt: dict, path: str | Path, half: bool = False) -> Path:
    """Write atomically; `half` stores floating-point weights as float16 (cast back on load)."""
    path = Path(path)
    if half:
        ckpt = {**ckpt, "dtype": "float16"}
        if "state_dict" in ckpt:
            ckpt["state_dict"] = _half(ckpt["state_dict"])
        if "members" in ckpt:
            ckpt["members"] = [_half(sd) for sd in ckpt["members"]]
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder holding checkpoint.pt."""
    path = Path(path)
    if path.is_dir():
        found = path / CHECKPOINT_NAME
        if found.exists():
            return found
        nested = sorted(path.rglob(CHECKPOINT_NAME))
        hint = f" (it has {', '.join(str(p) for p in nested[:3])}: pass one)" if nested else "; train one with `cli.py train --out DIR`"
        raise CheckpointError(f"{path}: no {CHECKPOINT_NAME} in this folder{hint}")
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint; train one with `cli.py train --out DIR` and pass DIR or DIR/{CHECKPOINT_NAME}")
    return path


def read_checkpoint(path: str | Path) -> dict:
    path = resolve_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load of a torn or foreign file fails in many ways
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable Multilogue checkpoint ({first}); pass a checkpoint.pt written by `cli.py train`") from e
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or ("state_dict" not in ckpt and "members" not in ckpt):
        raise CheckpointError(f"{path}: not a Multilogue checkpoint (no model_config/state_dict); pass a checkpoint.pt written by `cli.py train`")
    if not isinstance(ckpt.get("format_version", 0), int) or ckpt.get("format_version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {ckpt.get('format_version')!r} is not one this code reads ({CHECKPOINT_VERSION}); update Multilogue")
    problem = checkpoint_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path}: {problem}; pass a checkpoint.pt written by `cli.py train` (or train one again)")
    ckpt["path"] = str(path)
    return ckpt


MAX_DIM = 1 << 16  # no feature set or layer here is anywhere near this wide; a bigger number is a broken file


def checkpoint_problem(ckpt: dict) -> str | None:
    """What is wrong with a loaded checkpoint dict's contents, or None (the boundary check of read_checkpoint)."""
    from model.tasks import EMOTIONS, TASKS

    task = ckpt.get("task")
    if task not in TASKS:
        return f"its task {task!r} is not one of {', '.join(TASKS)}"
    if TASKS[task].per_emotion and ckpt.get("emotion") not in EMOTIONS:
        return f"its emotion {ckpt.get('emotion')!r} is not one of {', '.join(EMOTIONS)}"
    cfg = ckpt.get("model_config")
    if not isinstance(cfg, dict) or not cfg:
        return "its model_config is not a filled dict"
    if cfg.get("task") != task:
        return f"its model_config is for task {cfg.get('task')!r} but the checkpoint says {task!r}"
    for key in ("d_text", "d_audio", "d_visual", "d_global", "d_party", "d_emotion", "d_hidden"):
        value = cfg.get(key, 0 if key.startswith("d_") and key[2:] in ("text", "audio", "visual") else 1)
        low = 0 if key in ("d_text", "d_audio", "d_visual") else 1
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_DIM:
            return f"its model_config {key} = {value!r} is not a width in {low}..{MAX_DIM}"
    if not all(k in cfg for k in ("d_text", "d_audio", "d_visual")):
        return "its model_config lacks the input widths (d_text, d_audio, d_visual)"
    states = ckpt["members"] if "members" in ckpt else [ckpt.get("state_dict")]
    if not isinstance(states, list) or not states or not all(isinstance(sd, dict) and all(isinstance(v, torch.Tensor) for v in sd.values()) for sd in states):
        return "its weights are not state dicts of tensors"
    spec = ckpt.get("feature_spec", {})
    if not isinstance(spec, dict) or not all(isinstance(v, dict) for v in spec.values()):
        return "its feature_spec is not a dict of {name, params, dim} entries"
    return None


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[MultilogueNet | Ensemble, dict]:
    """Rebuild the model of a checkpoint (an Ensemble for an ensemble checkpoint), in eval mode on `device`.
    Returns (model, checkpoint dict)."""
    ckpt = read_checkpoint(path)
    config = ModelConfig.from_dict(ckpt["model_config"])
    states = ckpt["members"] if "members" in ckpt else [ckpt["state_dict"]]
    nets = []
    for state in states:
        net = MultilogueNet(config)
        try:
            net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        except RuntimeError as e:
            raise CheckpointError(f"{ckpt['path']}: weights do not fit its own model config ({str(e).splitlines()[0]})") from e
        nets.append(net)
    model = Ensemble(nets) if "members" in ckpt else nets[0]
    return model.to(device).eval(), ckpt


def check_features(ckpt: dict, dims: dict[str, int], features: dict[str, dict], source: Any) -> None:
    """Refuse data whose features differ from the checkpoint's: widths first, then extractor and params."""
    check_dims(ckpt, dims, source)
    trained = ckpt.get("feature_spec") or {}
    diffs = []
    for m in ("text", "audio", "visual"):
        a, b = trained.get(m), features.get(m)
        if a and b and (a.get("name"), a.get("params")) != (b.get("name"), b.get("params")):
            diffs.append(f"{m} {a.get('name')} {a.get('params')} vs {b.get('name')} {b.get('params')}")
    if diffs:
        raise CheckpointError(
            f"{ckpt['path']} was trained on features from other extractors than {source} ({'; '.join(diffs)}, checkpoint vs data); "
            "extract the data with the checkpoint's extractors or use a matching checkpoint"
        )


def check_dims(ckpt: dict, dims: dict[str, int], source: Any) -> None:
    """Raise CheckpointError naming every modality whose feature width differs from the checkpoint's."""
    cfg = ckpt["model_config"]
    diffs = [f"{m} {cfg[f'd_{m}']} vs {dims[m]}" for m in ("text", "audio", "visual") if cfg[f"d_{m}"] != dims[m]]
    if diffs:
        raise CheckpointError(
            f"{ckpt['path']} expects feature dims that {source} does not have ({'; '.join(diffs)}, checkpoint vs data); "
            "use a checkpoint trained on features from the same extractors"
        )
