"""What a model folder holds, for people (`cli.py info PATH`) and for clients (the server's GET /api/models).

    info = describe_models(locate_models("model/pretrained"))   # the checkpoints' headers, metrics, report, card
    print(format_description(info))

Read per checkpoint (nothing is built or run): its task and classes, ensemble size and storage type, widths, the
feature spec of each modality (extractor, params, dim), the transcriber its training data recorded and the test
metrics of `metrics.json` beside it. Read per folder: `report.json` (the shipped model's measured figures, written by
`make pretrained`) and the model card (`MODEL_CARD.md`, else `README.md`) with its licence paragraph.

Paths are given relative to the folder, and the folder by a display name (relative to the repository or the working
folder, else its own name): a description sent to a web client names no absolute path of the server.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

from model.checkpoint import ModelFiles, read_checkpoint
from model.tasks import NEUTRAL_BAND

REPO = Path(__file__).resolve().parents[2]
CARDS = ("MODEL_CARD.md", "README.md")
WIDTH = 118  # of the text description's lines
# the figures the card and `info` lead with, per task (the others are in report.json)
HEADLINE = {"regression": ("accuracy_binary", "mae", "pearson_r"), "binary": ("accuracy", "f1_weighted"),
            "emotion": ("weighted_accuracy", "f1_weighted"), "emotion-class": ("accuracy", "f1_weighted", "f1_macro")}


def display_path(path: Path) -> str:
    """`path` relative to the repository or the working folder when inside one, else its last component."""
    path = Path(path).resolve()
    for base in (REPO, Path.cwd().resolve()):
        if path.is_relative_to(base) and path != base:
            return str(path.relative_to(base))
    return path.name or str(path)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None


def card_licence(card: str) -> str | None:
    """The model card's licence paragraph, in one line: the one that starts "**What the licences mean", else the
    first paragraph (not a table) of a section whose heading names a licence; None without one."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", card)]
    found = next((p for p in paragraphs if p.lower().startswith("**what the licence")), None)
    if found is None:
        for i, p in enumerate(paragraphs):
            if p.startswith("#") and "licen" in p.lower():
                found = next((q for q in paragraphs[i + 1:] if q and not q.startswith(("|", "#"))), None)
                break
    if found is None:
        return None
    found = re.sub(r"^\*\*[^*]*\*\*\s*", "", found)  # the paragraph's bold lead-in, e.g. "**What the licences mean...**"
    return " ".join(found.replace("**", "").split())


def describe_checkpoint(path: Path, root: Path) -> dict[str, Any]:
    """One checkpoint's description (see the module's docstring). CheckpointError for an unreadable checkpoint."""
    ckpt = read_checkpoint(path)
    cfg = ckpt["model_config"]
    states = ckpt["members"] if "members" in ckpt else [ckpt["state_dict"]]
    metrics = _json(path.parent / "metrics.json")
    spec = ckpt.get("feature_spec") or {}
    return {
        "name": ckpt.get("emotion") or ckpt["task"], "task": ckpt["task"], "emotion": ckpt.get("emotion"),
        "path": str(path.relative_to(root)) if path.is_relative_to(root) else path.name,
        "classes": list(ckpt.get("label_names") or []), "members": len(states), "dtype": ckpt.get("dtype", "float32"),
        "widths": {k: cfg.get(k) for k in ("d_global", "d_party", "d_emotion", "d_hidden")},
        "weights": int(sum(v.numel() for v in states[0].values())),
        "features": {m: spec[m] for m in ("text", "audio", "visual") if isinstance(spec.get(m), dict)},
        "transcriber": spec.get("asr") if isinstance(spec.get("asr"), dict) else None,
        "test_metrics": metrics.get("test") if isinstance(metrics, dict) else None,
        "fusion": ckpt.get("fusion") if isinstance(ckpt.get("fusion"), dict) else None,
    }


def describe_models(located: ModelFiles) -> dict[str, Any]:
    """The located models' description: {"checkpoint" (display name), "models": [describe_checkpoint...], "report"
    (report.json or None), "model_card" (its text or None), "model_card_file", "licence" (its paragraph or None)}."""
    root = Path(located.root).resolve()
    card = next((root / name for name in CARDS if (root / name).is_file()), None)
    text = card.read_text(encoding="utf-8") if card else None
    return {"checkpoint": display_path(root), "models": [describe_checkpoint(Path(f).resolve(), root) for f in located.files],
            "report": _json(root / "report.json"), "model_card": text, "model_card_file": card.name if card else None,
            "licence": card_licence(text) if text else None}


# ------------------------------------------------------------------ as text (`cli.py info PATH`)
def _figure(key: str, value: Any) -> str:
    if not isinstance(value, (int, float)):
        return f"{key} -"
    return f"{key} {value:.3f}" if key in ("mae", "pearson_r", "loss") else f"{key} {value:.1f}"


def _figures(metrics: dict, task: str) -> str:
    keys = [k for k in HEADLINE.get(task, ()) if k in metrics] or [k for k in metrics if k != "loss"][:4]
    return ", ".join(_figure(k, metrics[k]) for k in keys)


def _param(key: str, value: Any) -> str:
    """A spec parameter as `info` shows it; a fine-tuned encoder's delta in a few words."""
    if key == "delta" and isinstance(value, dict):
        layers = ",".join(map(str, value.get("layers", [])))
        return f"fine-tuned layers {layers} (sha256 {str(value.get('sha256'))[:12]}, base {str(value.get('base_sha256'))[:12]})"
    return str(value)


def _inputs(features: dict[str, dict]) -> str:
    parts = []
    for m, s in features.items():
        if s.get("name") in (None, "none"):
            parts.append(f"{m} none")
            continue
        params = ", ".join(f"{k}={_param(k, v)}" for k, v in sorted((s.get("params") or {}).items()))
        parts.append(f"{m} {s['name']} ({s.get('dim')}-d{'; ' + params if params else ''})")
    return "; ".join(parts)


def _what(model: dict) -> str:
    task = model["task"]
    if task == "regression":
        return (f"sentiment score -3..3 (label positive / neutral / negative: neutral when |score| < {NEUTRAL_BAND:g})")
    if task == "binary":
        return "positive vs negative (positive_prob)"
    if task == "emotion":
        return f"probability that {model['emotion']} is present"
    return f"one of {', '.join(model['classes'])} with the probabilities of all {len(model['classes'])}"


def clip_tallies(clips: dict[str, Any]) -> dict[str, Any]:
    """The counts both `info` and the model card give of report.json's clip figures (pipeline/release/evaluation.py):
    {"cremad": {clips, right, faces, faces_right, voice_right, face_right}, "calm": {utterances, worst}} for the
    parts present; calm's `worst` is the row with the highest anger/fear/disgust probability."""
    out: dict[str, Any] = {}
    crema = clips.get("cremad") or []
    if crema:
        faces = [r for r in crema if r.get("talking_face")]
        out["cremad"] = {"clips": len(crema), "right": sum(r.get("predicted") == r.get("acted") for r in crema),
                         "faces": len(faces), "faces_right": sum(r.get("predicted") == r.get("acted") for r in faces),
                         "voice_right": sum(r.get("voice_only") == r.get("acted") for r in crema),
                         "face_right": sum(r.get("face_only") == r.get("acted") for r in faces)}
    calm = clips.get("calm") or []
    if calm:
        out["calm"] = {"utterances": len(calm), "worst": max(calm, key=lambda r: r["alarming_probability"])}
    return out


def _report_lines(report: dict) -> list[str]:
    lines = []
    for part in ("sentiment", "emotion"):
        block = report.get(part)
        if not isinstance(block, dict):
            continue
        task = block.get("task", "")
        for corpus, r in (block.get("corpora") or {}).items():
            line = f"  {part} on {corpus} ({r.get('utterances')} test utterances): {_figures(r.get('model') or {}, task)}"
            if r.get("baseline"):
                line += f"; linear baseline {_figures(r['baseline'], task)}"
            lines.append(line)
    clips = report.get("clips") if isinstance(report.get("clips"), dict) else {}
    rav, urdu = clips.get("ravdess") or {}, clips.get("urdu") or {}
    if rav:
        lines.append(f"  emotion on RAVDESS actors 19-20's clips: {rav['whisper']:.1f}% cut by Whisper, {rav['transcript']:.1f}% with a .txt transcript")
    if urdu:
        lines.append(f"  emotion (voice alone) on URDU's held-out speakers: {urdu['accuracy']:.1f}%, UAR {urdu['uar']:.1f}%")
    tally = clip_tallies(clips)
    if "cremad" in tally:
        c = tally["cremad"]
        lines.append(f"  emotion on CREMA-D's clips: {c['right']} of {c['clips']} acted emotions right (chance 1 in 7)")
    if "calm" in tally:
        c = tally["calm"]
        lines.append(f"  calm speech ({c['utterances']} utterances): highest anger/fear/disgust probability {c['worst']['alarming_probability']:.2f}")
    return lines


def _fusion(rule: dict) -> str:
    """How a 7-way model's readings are fused, in words (pipeline.prediction.readings.FusionRule)."""
    face = rule.get("face") or {}
    voice = rule.get("voice_temperature")
    at = (f"temperature {voice:.2f} with a voice, {rule.get('temperature', 1.0):.2f} on words alone" if voice is not None
          else f"temperature {rule.get('temperature', 1.0):.2f}")
    parts = [f"words and voice by the network, calibrated at {at}"]
    if face:
        parts.append(f"the face by the {face.get('name')} extractor's expression probabilities, weight {rule.get('face_weight', 0):g} in the product")
    parts.append(f"uncertain below {rule.get('min_confidence', 0):g} or when readings disagree at {rule.get('disagree_confidence', 0):g}")
    return "; ".join(parts)


def format_description(info: dict[str, Any]) -> str:
    """The description as text: one block per model, then the measured figures and the licence."""
    n = len(info["models"])
    card = f"{info['checkpoint']}/{info['model_card_file']}" if info.get("model_card_file") else "none"
    lines = [f"{info['checkpoint']}: {n} model{'s' if n != 1 else ''} (model card: {card})"]
    for m in info["models"]:
        kind = f"ensemble of {m['members']}" if m["members"] > 1 else "single run"
        widths = "/".join(str(m["widths"].get(k)) for k in ("d_global", "d_party", "d_emotion", "d_hidden"))
        lines.append(f"  {m['path']}: {m['task']}{' ' + m['emotion'] if m.get('emotion') else ''}: {_what(m)}")
        lines.append(f"    {kind}, {m['dtype']}, widths D_g/D_p/D_e/D_h {widths}, {m['weights']:,} weights per run")
        lines.append(f"    inputs: {_inputs(m['features'])}")
        if m.get("transcriber"):
            asr = m["transcriber"]
            lines.append(f"    clips without a transcript: {asr.get('name')} {(asr.get('params') or {}).get('model', '')}".rstrip())
        if m.get("fusion"):
            lines.append(f"    readings: {_fusion(m['fusion'])}")
        if m.get("test_metrics"):
            lines.append(f"    test split (metrics.json): {_figures(m['test_metrics'], m['task'])}")
    report = _report_lines(info["report"]) if isinstance(info.get("report"), dict) else []
    if report:
        lines += ["figures measured on test splits never trained on (report.json):", *report]
    if info.get("licence"):
        lines += [f"licence ({info['model_card_file']}): {info['licence']}"]
    return "\n".join(textwrap.fill(line, WIDTH, subsequent_indent=" " * (len(line) - len(line.lstrip()) + 4), break_on_hyphens=False)
                     for line in lines)


__all__ = ["HEADLINE", "card_licence", "clip_tallies", "describe_checkpoint", "describe_models", "display_path", "format_description"]
