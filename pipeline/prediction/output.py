"""Presenting predictions (the dicts `pipeline.prediction.predict` returns): table, JSON and CSV text, and a timeline plot.

    print(FORMATTERS["csv"](results))
    plot_predictions(results, "prediction.png")

Per clip: {"clip", "duration", "transcript", "models", "modalities", "utterances", ["note" | "error"]}; per
utterance: {"start", "end", "speaker", "text", "modalities" (those present for it: an utterance without a face
has no visual), "sentiment" (float or None), "label" ("positive"/"neutral"/"negative" or None), ["positive_prob"],
"emotions" {emotion: probability it is present} (per-emotion models), ["emotion" (the 7-way class), "emotion_probs"
{class: probability}, "readings" {words|voice|face: {"emotion", "probs"}}, "uncertain", "uncertain_why"] (an
emotion-class model: the fused reading and what each modality says, see pipeline.prediction.readings)}.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from core.fileio import atomic_path


ALL_MODALITIES = ["text", "audio", "visual"]
READINGS = ("words", "voice", "face")  # what each modality says (7-way emotion models), in this order
LABEL_COLOURS = {"positive": "tab:green", "negative": "tab:red"}  # neutral (inside the band around 0): grey


def _columns(results: list[dict], inputs: bool = True) -> list[str]:
    """Output columns after start/end/speaker/text; `modalities` only when some utterance lacks one; the readings
    of each modality (words, voice, face) that some utterance has, before the fused emotion."""
    utts = [u for r in results for u in r["utterances"]]
    partial = any(u.get("modalities", ALL_MODALITIES) != ALL_MODALITIES for u in utts)
    cols = ["modalities"] if inputs and partial else []
    cols += ["sentiment", "label"]
    if any("positive_prob" in u for u in utts):
        cols.append("positive_prob")
    cols += [k for k in READINGS if any(k in u.get("readings", {}) for u in utts)]
    if any("emotion" in u for u in utts):
        cols.append("emotion")
    for u in utts:
        cols += [e for e in u["emotions"] if e not in cols]
    return cols


def bands(u: dict) -> dict[str, float]:
    """The emotion probabilities to draw for an utterance: the 7-way model's, else the per-emotion models'."""
    return u.get("emotion_probs") or u["emotions"]


def _reading(u: dict, key: str) -> str:
    """A table cell of an emotion reading: "anger 0.81" (the fused one with "?" when uncertain), "-" when absent."""
    if key == "emotion":
        if not u.get("emotion_probs"):
            return "-"
        return f"{u['emotion']} {u['emotion_probs'][u['emotion']]:.2f}" + (" ?" if u.get("uncertain") else "")
    r = u.get("readings", {}).get(key)
    return f"{r['emotion']} {r['probs'][r['emotion']]:.2f}" if r else "-"


def _cell(value: Any, col: str) -> str:
    if value is None:
        return "-"
    if col == "sentiment":
        return f"{value:+.2f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _flat(u: dict) -> dict:
    flat = {**{k: v for k, v in u.items() if k not in ("emotions", "emotion_probs", "readings")}, **u["emotions"]}
    flat.update({f"p_{c}": p for c, p in (u.get("emotion_probs") or {}).items()})
    for key, r in u.get("readings", {}).items():
        flat[key], flat[f"{key}_prob"] = r["emotion"], r["probs"][r["emotion"]]
    if "modalities" in flat:
        flat["modalities"] = "+".join(flat["modalities"]) or "none"
    return flat


def format_table(results: list[dict], text_width: int = 44) -> str:
    """Aligned text: a header line per clip, then one row per utterance."""
    cols = _columns(results)
    lines = []
    for r in results:
        head = f"{r['clip']}"
        if r.get("duration") is not None:
            head += f"  ({r['duration']:.1f} s; text from {r.get('transcript') or 'the whole clip'})"
        lines.append(head)
        if r.get("error"):
            lines.append(f"  error: {r['error']}")
        elif r.get("note"):
            lines.append(f"  {r['note']}")
        if not r["utterances"]:
            lines.append("")
            continue
        rows = [["start", "end", "speaker", "text", *cols]]
        for u in r["utterances"]:
            f = _flat(u)
            text = f["text"] if len(f["text"]) <= text_width else f["text"][: text_width - 1] + "…"
            cells = [_reading(u, c) if c in ("emotion", *READINGS) else _cell(f.get(c), c) for c in cols]
            rows.append([f"{f['start']:.2f}", f"{f['end']:.2f}", f["speaker"], text, *cells])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        left = {2, 3}  # speaker and text read left-aligned, numbers right-aligned
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        lines.append("")
    if any(u.get("uncertain") for r in results for u in r["utterances"]):
        lines.append("? uncertain: the fused reading is weak, or the modalities confidently disagree (see uncertain_why in --format json)")
    return "\n".join(lines).rstrip("\n")


def format_json(results: list[dict]) -> str:
    """{"clip": ..., "utterances": [...]} for one clip, a list of those for several."""
    return json.dumps(results[0] if len(results) == 1 else results, indent=2, ensure_ascii=False)


def format_csv(results: list[dict]) -> str:
    """One row per utterance: clip, start, end, speaker, text, modalities, sentiment, label, [positive_prob],
    [words, words_prob, voice, voice_prob, face, face_prob (each modality's reading), emotion, uncertain,
    uncertain_why, p_<class> for the 7 classes], per-emotion probabilities."""
    cols = ["clip", "start", "end", "speaker", "text", "modalities", *_columns(results, inputs=False)]
    for key in READINGS:
        if key in cols:
            cols.insert(cols.index(key) + 1, f"{key}_prob")
    probs = next((list(u["emotion_probs"]) for r in results for u in r["utterances"] if u.get("emotion_probs")), [])
    if probs:
        at = cols.index("emotion") + 1
        cols[at:at] = ["uncertain", "uncertain_why", *(f"p_{c}" for c in probs)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in results:
        for u in r["utterances"]:
            writer.writerow({"clip": r["clip"], **{k: ("" if v is None else v) for k, v in _flat(u).items()}})
    return buf.getvalue().rstrip("\n")


FORMATTERS = {"table": format_table, "json": format_json, "csv": format_csv}


def plot_predictions(results: list[dict], path: str | Path) -> Path:
    """A PNG per call, one block per clip: sentiment per utterance over the clip's timeline (a bar from start
    to end, captioned with the utterance's text; with several speakers a lane of one colour per speaker along its
    foot and captions prefixed by the speaker) and, when emotion models ran, a heat strip of each emotion's
    probability per utterance below it. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    shown = [r for r in results if r["utterances"]] or results[:1]
    with_emotions = any(r["utterances"] and bands(r["utterances"][0]) for r in shown)
    ratios = [3, 2] if with_emotions else [1]
    fig, axes = plt.subplots(len(shown) * len(ratios), 1, figsize=(12, 4.6 * len(shown) if with_emotions else 3.4 * len(shown)),
                             squeeze=False, gridspec_kw={"height_ratios": ratios * len(shown)})
    for k, r in enumerate(shown):
        top = axes[k * len(ratios), 0]
        _plot_sentiment(top, r)
        if with_emotions:
            _plot_emotions(axes[k * len(ratios) + 1, 0], r, top)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path


def _clip_end(r: dict) -> float:
    return max([r.get("duration") or 0.0] + [u["end"] for u in r["utterances"]] + [1.0])


def _plot_sentiment(ax: Any, r: dict) -> None:
    import textwrap

    utts = r["utterances"]
    end = _clip_end(r)
    ax.set_xlim(0, end)
    ax.set_title(Path(r["clip"]).name + ("" if utts else f": {r.get('note') or r.get('error') or 'no utterances'}"), fontsize=10)
    if utts and all(u["sentiment"] is not None for u in utts):
        values, ylabel, lim, zero = [u["sentiment"] for u in utts], "sentiment", (-3.6, 3.6), 0.0
    elif utts and all(u.get("positive_prob") is not None for u in utts):
        values, ylabel, lim, zero = [u["positive_prob"] for u in utts], "P(positive)", (-0.1, 1.1), 0.5
    else:
        values, ylabel, lim, zero = [None] * len(utts), "", (-1.0, 1.0), 0.0
    ax.set_ylim(*lim)
    ax.set_ylabel(ylabel)
    ax.axhline(zero, color="0.6", lw=0.8)
    ax.grid(axis="y", color="0.92")
    span = lim[1] - lim[0]
    several = len({u["speaker"] for u in utts}) > 1
    if several:
        _speaker_lane(ax, utts)
    for u, v in zip(utts, values):
        y = zero if v is None else v
        if v is not None:
            ax.hlines(y, u["start"], u["end"], colors=LABEL_COLOURS.get(u.get("label"), "tab:gray"), lw=7)
        # caption on the side of the bar with more room, wrapped to the utterance's width
        chars = max(12, int(150 * (u["end"] - u["start"]) / end))
        caption = textwrap.shorten(f"{u['speaker']}: {u['text']}" if several else u["text"], width=3 * chars, placeholder="…")
        above = y - lim[0] < 0.75 * span
        ax.annotate(textwrap.fill(caption, width=chars), ((u["start"] + u["end"]) / 2, y), xytext=(0, 9 if above else -9),
                    textcoords="offset points", ha="center", va="bottom" if above else "top", fontsize=7, color="0.15")


SPEAKER_COLOURS = ("tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:cyan", "tab:olive", "tab:gray")


def speaker_colours(utts: list[dict]) -> dict[str, str]:
    """speaker -> colour, in order of first appearance (green and red stay for sentiment)."""
    out: dict[str, str] = {}
    for u in utts:
        out.setdefault(u["speaker"], SPEAKER_COLOURS[len(out) % len(SPEAKER_COLOURS)])
    return out


def _speaker_lane(ax: Any, utts: list[dict]) -> None:
    """Who speaks when: a lane along the bottom of the axes, one colour per speaker, with a legend."""
    from matplotlib.patches import Patch

    colours = speaker_colours(utts)
    for u in utts:
        ax.axvspan(u["start"], u["end"], ymin=0.0, ymax=0.035, color=colours[u["speaker"]], lw=0)
    ax.legend(handles=[Patch(color=c, label=s) for s, c in colours.items()], loc="upper right", fontsize=7, ncol=min(4, len(colours)),
              title="speakers", title_fontsize=7, framealpha=0.8)


def _plot_emotions(ax: Any, r: dict, top: Any) -> None:
    """A heat strip per emotion (the fused probabilities), under one row per modality's reading (words, voice,
    face: its emotion, shaded by its probability); an uncertain utterance's fused cells are hatched."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    utts = r["utterances"]
    ax.set_xlim(*top.get_xlim())
    ax.set_xlabel("time (s)")
    said = [k for k in READINGS if any(k in u.get("readings", {}) for u in utts)]
    emotions = list(bands(utts[0])) if utts else []
    blues, purples = plt.get_cmap("Blues"), plt.get_cmap("Purples")
    for i, key in enumerate(said):
        for u in utts:
            reading = u.get("readings", {}).get(key)
            if reading is None:
                continue
            p = reading["probs"][reading["emotion"]]
            ax.add_patch(Rectangle((u["start"], i - 0.45), u["end"] - u["start"], 0.9, color=purples(0.08 + 0.85 * p), lw=0))
            ax.text((u["start"] + u["end"]) / 2, i, f"{reading['emotion']} {p:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if p > 0.55 else "0.2")
    for j, e in enumerate(emotions):
        i = j + len(said)
        for u in utts:
            p = bands(u)[e]
            ax.add_patch(Rectangle((u["start"], i - 0.45), u["end"] - u["start"], 0.9, facecolor=blues(0.08 + 0.85 * p),
                                   edgecolor="0.45" if u.get("uncertain") else "none", lw=0, hatch="///" if u.get("uncertain") else None))
            ax.text((u["start"] + u["end"]) / 2, i, f"{p:.2f}", ha="center", va="center", fontsize=7, color="white" if p > 0.55 else "0.2")
    labels = [f"{k} says" for k in said] + emotions
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_frame_on(False)
    ax.tick_params(axis="y", length=0)
    if any(u.get("uncertain") for u in utts):
        ax.set_title("hatched: uncertain (a weak fused reading, or modalities that confidently disagree)", fontsize=8, loc="left")


def summary_line(results: list[dict]) -> str:
    """'N clips, M utterances' plus counts of clips without speech and failed clips."""
    n_utt = sum(len(r["utterances"]) for r in results)
    silent = sum(1 for r in results if r.get("note"))
    failed = sum(1 for r in results if r.get("error"))
    parts = [f"{len(results)} clip{'s' if len(results) != 1 else ''}", f"{n_utt} utterance{'s' if n_utt != 1 else ''}"]
    if silent:
        parts.append(f"{silent} without speech")
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts)


__all__ = ["FORMATTERS", "format_csv", "format_json", "format_table", "plot_predictions", "speaker_colours", "summary_line"]
