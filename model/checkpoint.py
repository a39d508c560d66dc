"""Self-describing checkpoints: format version, task, labels, model config, feature spec, state dict; where they
are (the one resolver of --checkpoint paths) and whether data fits them (the one feature-width check).

Saved with torch.save (atomically) and loaded with weights_only=True: nothing but tensors and plain data.
An ensemble checkpoint (`train --seeds`) holds the members' state dicts in `members` instead of one
`state_dict`; it loads as a model.network.Ensemble. `half=True` stores floating-point weights as float16
(half the size; they are cast back to float32 on load), for shipping.

torch and the model load inside the functions that need them, so a wrong --checkpoint path is reported
before they are imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import CheckpointError
from core.fileio import atomic_path, input_file
from data.schema import MAX_DIM, MODALITIES, dim_differences

if TYPE_CHECKING:
    import torch

    from model.network import Ensemble, MultilogueNet

CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
SHIPPED = Path("model") / "pretrained"  # the model that ships with the code, relative to the repository
DEFAULT_RUN = Path("runs") / "demo"  # where `make demo` trains
TRAIN_HINT = ("run `make demo` (it trains into runs/demo), or train your own with `python cli.py extract VIDEOS/ -o data.pkl` "
              "then `python cli.py train --task regression --data data.pkl --out runs/demo`, or pass --checkpoint DIR_OR_FILE")


def make_checkpoint(model: "MultilogueNet", task: str, emotion: str | None, feature_spec: dict, extra: dict | None = None) -> dict:
    from model.tasks import get_task

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
    import torch

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


# ------------------------------------------------------------------ where checkpoints are
def shipped_model() -> Path | None:
    """The model that ships with the code (model/pretrained: trained on real corpora, see its MODEL_CARD.md),
    or None when it is not there."""
    folder = Path(__file__).resolve().parents[1] / SHIPPED
    return folder if folder.is_dir() and any(folder.rglob(CHECKPOINT_NAME)) else None


def default_checkpoint() -> Path:
    """The shipped model, else runs/demo (in the working folder or the repository); CheckpointError saying how to
    get one."""
    shipped = shipped_model()
    if shipped is not None:
        return shipped
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (base / DEFAULT_RUN).is_dir() and any((base / DEFAULT_RUN).rglob(CHECKPOINT_NAME)):
            return base / DEFAULT_RUN
    raise CheckpointError(f"no --checkpoint given, no shipped model in {SHIPPED}/ and no trained model in {DEFAULT_RUN}/; {TRAIN_HINT}")


def checkpoint_files(path: str | Path) -> list[Path]:
    """The models a path names, sorted: a file is itself (a regular file; a FIFO or a broken link is refused
    before anything opens it); a folder gives its own checkpoint.pt when it has one (a run, or an ensemble whose
    members lie below it), else every checkpoint.pt below it that is not inside another model's folder.
    CheckpointError naming the path and the fix when there is none."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob(CHECKPOINT_NAME))
        if not found:
            raise CheckpointError(f"--checkpoint {path}: no {CHECKPOINT_NAME} in this folder or below; {TRAIN_HINT}")
        models = {f.parent for f in found}
        return [f for f in found if not any(d in models for d in f.parent.parents)]
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"--checkpoint {path}: no such file or folder; {TRAIN_HINT}")
    return [input_file(path, "--checkpoint", error=CheckpointError)]


@dataclass(frozen=True)
class ModelFiles:
    """What a --checkpoint names, resolved once: `root` is the folder given (a file's own folder; the shipped
    model or runs/demo without --checkpoint) and `files` the checkpoint.pt files under it."""

    root: Path
    files: tuple[Path, ...]


def locate_models(path: "str | Path | ModelFiles | None") -> ModelFiles:
    """The one resolver of --checkpoint (None: default_checkpoint()); already located models pass through.
    CheckpointError (before torch loads anything) when there is no model there."""
    if isinstance(path, ModelFiles):
        return path
    path = default_checkpoint() if path is None else Path(path)
    files = checkpoint_files(path)
    return ModelFiles(path if path.is_dir() else path.parent, tuple(files))


def resolve_checkpoint(path: str | Path) -> Path:
    """The one checkpoint a path names (a file, or a folder holding exactly one model); CheckpointError otherwise."""
    files = checkpoint_files(path)
    if len(files) > 1:
        shown = ", ".join(str(f) for f in files[:3]) + (", ..." if len(files) > 3 else "")
        raise CheckpointError(f"{path}: holds {len(files)} models ({shown}); pass one of them")
    return files[0]


def load_state(path: str | Path, what: str = "checkpoint", fix: str = "pass a checkpoint.pt written by `cli.py train`") -> Any:
    """torch.load(path, weights_only=True), with one line saying what the file is when it is not a checkpoint:
    empty, text or another kind of file, a truncated archive (a partial copy), or refused by the safe loader."""
    import torch

    path = input_file(path, error=CheckpointError)
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise CheckpointError(f"{path}: is empty, not a {what}; {fix}")
    if head[:2] != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip archive (legacy files: a pickle)
        kind = "a text file" if all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "not a zip archive"
        raise CheckpointError(f"{path}: is {kind}, not a {what}; {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load of a torn or foreign file fails in many ways
        text = " ".join(str(e).split())
        if "central directory" in text or "zip archive" in text or isinstance(e, EOFError):
            why = "truncated or damaged (an incomplete zip archive, e.g. a partial copy)"
        elif "Weights only load failed" in text or "weights_only" in text:
            why = "refused by the safe loader (it holds objects other than tensors and plain data)"
        else:
            why = f"unreadable ({type(e).__name__}: {text[:160]})" if text else f"unreadable ({type(e).__name__})"
        raise CheckpointError(f"{path}: not a readable {what}: {why}; {fix}") from e


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of a checkpoint.pt (or of a folder holding one model), checked; CheckpointError in one line."""
    path = Path(path)
    if not path.is_file():  # a file located already is read as it is; a folder or a missing path is resolved
        path = resolve_checkpoint(path)
    ckpt = load_state(path, "Multilogue checkpoint")
    if not isinstance(ckpt, dict) or "model_config" not in ckpt or ("state_dict" not in ckpt and "members" not in ckpt):
        raise CheckpointError(f"{path}: not a Multilogue checkpoint (no model_config/state_dict); pass a checkpoint.pt written by `cli.py train`")
    if not isinstance(ckpt.get("format_version", 0), int) or ckpt.get("format_version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {ckpt.get('format_version')!r} is not one this code reads ({CHECKPOINT_VERSION}); update Multilogue")
    problem = checkpoint_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path}: {problem}; pass a checkpoint.pt written by `cli.py train` (or train one again)")
    ckpt["path"] = str(path)
    return ckpt


def checkpoint_problem(ckpt: dict) -> str | None:
    """What is wrong with a loaded checkpoint dict's contents, or None (the boundary check of read_checkpoint)."""
    import torch

    from data.schema import EMOTIONS
    from model.tasks import TASKS

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


def load_model(path: str | Path, device: "str | torch.device" = "cpu") -> tuple["MultilogueNet | Ensemble", dict]:
    """Rebuild the model of a checkpoint (an Ensemble for an ensemble checkpoint), in eval mode on `device`.
    Returns (model, checkpoint dict)."""
    from model.config import ModelConfig
    from model.network import Ensemble, MultilogueNet

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


# ------------------------------------------------------------------ does data fit a checkpoint
def config_dims(config: dict) -> dict[str, int]:
    """Input feature widths of a model config dict: {"text": d_text, "audio": d_audio, "visual": d_visual}."""
    return {m: int(config[f"d_{m}"]) for m in MODALITIES}


def check_dims(expected: dict, given: dict[str, int], what: str, fix: str, sides: str = "checkpoint vs data") -> None:
    """The one feature-width check. expected: a model config dict (its d_text, d_audio, d_visual) or widths by
    modality; given: widths by modality (modalities it lacks are not compared). Raises CheckpointError
    "{what} (text 300 vs 50; ..., {sides}); {fix}" naming every modality that differs."""
    widths = config_dims(expected) if "d_text" in expected else {m: int(d) for m, d in expected.items()}
    diffs = dim_differences(widths, given)
    if diffs:
        raise CheckpointError(f"{what} ({'; '.join(diffs)}, {sides}); {fix}")


def check_features(ckpt: dict, dims: dict[str, int], features: dict[str, dict], source: Any) -> None:
    """Refuse data whose features differ from the checkpoint's: widths first, then extractor and params."""
    check_dims(ckpt["model_config"], dims, f"{ckpt['path']} expects feature dims that {source} does not have",
               "use a checkpoint trained on features from the same extractors")
    trained = ckpt.get("feature_spec") or {}
    diffs = []
    for m in MODALITIES:
        a, b = trained.get(m), features.get(m)
        if a and b and (a.get("name"), a.get("params")) != (b.get("name"), b.get("params")):
            diffs.append(f"{m} {a.get('name')} {a.get('params')} vs {b.get('name')} {b.get('params')}")
    if diffs:
        raise CheckpointError(
            f"{ckpt['path']} was trained on features from other extractors than {source} ({'; '.join(diffs)}, checkpoint vs data); "
            "extract the data with the checkpoint's extractors or use a matching checkpoint"
        )
