"""The shipped model's card, written from the figures `make pretrained` measured (pipeline/release/pretrained.py), so the
card and the weights cannot disagree."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from extractors.media import VIDEO_SUFFIXES
from model.tasks import NEUTRAL_BAND

CORPORA = {
    "mosi": ("CMU-MOSI transcripts", "sentiment -3..3 of YouTube opinion monologues (62 train / 11 test videos)", "text",
             "CMU-MOSI, released by CMU MultiComp for research"),
    "meld": ("MELD", "7 emotions of multi-party dialogue from the TV series Friends (1,038 train dialogues; dev as test)", "text",
             "GPL-3.0"),
    "goemotions": ("GoEmotions (Ekman grouping)", "Reddit comments, six emotions or neutral (48,836 train; 5,427 test)", "text",
                   "CC BY 4.0"),
    "ravdess": ("RAVDESS speech", "acted emotional speech, 2 sentences, 8 emotions (calm counted as neutral); actors 19-20 held out",
                "audio + Whisper transcript", "CC BY-NC-SA 4.0"),
}
HEADLINE = {"regression": ("accuracy_binary", "mae", "pearson_r"), "emotion-class": ("accuracy", "f1_weighted", "f1_macro")}


def _fmt(value: float, key: str) -> str:
    return f"{value:.3f}" if key in ("mae", "pearson_r") else f"{value:.1f}"


def _table(part: dict) -> list[str]:
    keys = HEADLINE[part["task"]]
    lines = [f"| test split | utterances | {' / '.join(keys)}: ensemble | single runs (mean ± std of {len(part['seeds'])} seeds) | "
             "linear baseline, same features | published, for scale |", "|---|---|---|---|---|---|"]
    for corpus, r in part["corpora"].items():
        model = " / ".join(_fmt(r["model"][k], k) for k in keys)
        single = " / ".join(f"{_fmt(r['single_runs'][k][0], k)} ± {_fmt(r['single_runs'][k][1], k)}" for k in keys)
        base = " / ".join(_fmt(r["baseline"][k], k) for k in keys) if r.get("baseline") else "-"
        lines.append(f"| {CORPORA[corpus][0]} | {r['utterances']} | {model} | {single} | {base} | {r.get('published') or '-'} |")
    return lines


def _mode(rows: list[dict], key: str) -> str:
    """The most frequent prediction in rows[*][key] in words, e.g. "surprise for 11 of 12 clips"."""

    found = Counter(r[key] for r in rows if r.get(key))
    if not found:
        return "no prediction"
    top, n = found.most_common(1)[0]
    return f"{top} for {n} of {len(rows)} clips"


def cremad_clips(rows: list[dict]) -> dict[str, Any]:
    """What the CREMA-D evaluation holds, counted from report.json's rows (so the card's words match its table):
    {"clips", "actors": {actor: n clips}, "videos": talking-face clips, "audio": voice-only clips, "video_actors"}."""
    actors = Counter(r["clip"].split("_")[0] for r in rows)
    videos = [r for r in rows if Path(r["clip"]).suffix.lower() in VIDEO_SUFFIXES]
    return {"clips": len(rows), "actors": dict(actors), "videos": len(videos), "audio": len(rows) - len(videos),
            "video_actors": sorted({r["clip"].split("_")[0] for r in videos})}


def _cremad_words(rows: list[dict]) -> str:
    """e.g. "12 clips of 2 actors: 1001's 6 talking-face videos, 1002's 6 voice recordings"."""
    c = cremad_clips(rows)
    parts = []
    for actor, n in c["actors"].items():
        kinds = Counter("talking-face video" if Path(r["clip"]).suffix.lower() in VIDEO_SUFFIXES else "voice recording"
                        for r in rows if r["clip"].split("_")[0] == actor)
        parts.append(f"{actor}'s " + " and ".join(f"{k} {kind}{'s' if k != 1 else ''}" for kind, k in kinds.items()))
    return f"{c['clips']} clips of {len(c['actors'])} actor{'s' if len(c['actors']) != 1 else ''}: {', '.join(parts)}"


def write_model_card(report: dict[str, Any], path: str | Path) -> Path:
    """MODEL_CARD.md from report.json's content."""
    recipe = report["recipe"]
    sent, emo = report["sentiment"], report["emotion"]
    crema = report.get("cremad") or []
    faces = cremad_clips(crema)["videos"] if crema else 0
    lines = [
        "# Multilogue pretrained model",
        "",
        "What `python cli.py predict CLIP` uses when no `--checkpoint` is given. Written by `make pretrained`",
        "(`python -m pipeline.release.pretrained`) from the figures in `report.json`; retraining rewrites both.",
        "",
        "## What it predicts",
        "",
        "Per utterance of a clip (transcribed by Whisper tiny.en when it has no transcript):",
        f"- **sentiment**: a score in -3..+3 and a label, neutral when |score| < {NEUTRAL_BAND:g}, else positive or negative by its",
        "  sign: `sentiment/`, a Multilogue-Net regression ensemble (text only);",
        "- **emotion**: one of neutral, happiness, sadness, anger, surprise, disgust, fear with its seven probabilities:",
        "  `emotion/`, a Multilogue-Net 7-way classifier ensemble (text and audio).",
        "",
        f"Each is an ensemble of {len(recipe['seeds'])} runs (seeds {', '.join(map(str, recipe['seeds']))}; the mean of their scores or",
        f"probabilities), width D_e = D_h = {recipe['hidden']}, D_g = D_p = {round(1.5 * recipe['hidden'])}, stored as float16.",
        "",
        "## Inputs and what each modality was trained on",
        "",
        f"- **text**: `{recipe['text']}` (all-MiniLM-L6-v2 sentence embeddings, 384-d; chosen by bench/text_probe.py, where it",
        "  carries far more sentiment than GloVe). Sentiment: CMU-MOSI transcripts only. Emotion: MELD, GoEmotions and the",
        "  Whisper transcripts of RAVDESS (two emotionally neutral sentences, so there the text carries no emotion).",
        f"- **audio**: openSMILE `{recipe['audio']}` functionals (384-d), emotion model only, learnt from RAVDESS alone: 18 professional",
        "  North-American actors (actors 1-18) reading two sentences in a studio. It does not transfer to other recordings",
        "  yet: see the CREMA-D clips below.",
        "- **visual**: none. No corpus available here has real faces with labels (MELD's and RAVDESS's videos are not",
        f"  in the shared data; CREMA-D's {faces} talking-face clips are used for testing only), so the models have no visual",
        "  input and predict does not analyse faces for them.",
        "- The sentiment model never saw audio: its sentiment comes from the words.",
        "",
        "## Data and licences",
        "",
        "| corpus | what | used as | licence |",
        "|---|---|---|---|",
    ]
    for key, (name, what, used, licence) in CORPORA.items():
        lines.append(f"| {name} | {what} | {used} | {licence} |")
    if crema:
        c = cremad_clips(crema)
        lines.append(f"| CREMA-D ({c['clips']} clips) | acted emotions, {len(c['actors'])} actors ({c['videos']} talking-face videos, "
                     f"{c['audio']} voice recordings) | evaluation only | ODbL 1.0 |")
    lines += [
        "",
        "**What the licences mean for these weights.** The emotion model is trained in part on RAVDESS (CC BY-NC-SA 4.0)",
        "and MELD (GPL-3.0). Treat the weights as a derivative of both: non-commercial use only, redistribution under the",
        "same terms (share-alike) with attribution (Livingstone & Russo, 2018, PLoS ONE 13(5): e0196391; Poria et al.,",
        "ACL 2019; Demszky et al., ACL 2020 for GoEmotions, CC BY 4.0). Retrain without RAVDESS and MELD (edit",
        "`RECIPE` in pipeline/release/pretrained.py) for other uses. The feature extractors have their own terms: MiniLM",
        "weights Apache-2.0, Whisper weights MIT, openSMILE research and personal use only.",
        "",
        "## Measured figures (test splits the training never saw)",
        "",
        "Model selection (early stopping, the settings in pipeline/release/pretrained.py) used validation conversations carved",
        "from the training splits; each test split was scored once. Baseline: logistic (emotion, class-balanced) or",
        "ridge (sentiment) regression on the same features plus presence flags, its strength chosen on the same",
        "validation split. Published figures come from other models and features and, where noted, other splits.",
        "",
        "### Sentiment (regression; binary accuracy is the sign of the score, >= 0 positive, whatever the neutral band)",
        "",
        *_table(sent),
        "",
        "### Emotion (7-way: neutral + six; F1 in %)",
        "",
        *_table(emo),
        "",
    ]
    if crema:
        right = sum(1 for r in crema if r.get("predicted") == r["acted"])
        lines += [
            f"### CREMA-D clips: predicted vs acted emotion ({right} of {len(crema)} right; chance is 1 in 7)",
            "",
            f"{_cremad_words(crema)}, each saying",
            "\"Don't forget a jacket\" (emotionally neutral words, so the acted emotion is in the voice; the talking-face clips'",
            "faces are not used by this model). The audio-only and text-only columns are the emotion",
            f"model with one modality, the other absent: {_mode(crema, 'text_only')} with the text alone, and",
            f"{_mode(crema, 'audio_only')} with the voice alone, whose model was learnt from RAVDESS's studio recordings",
            "only (another microphone, level and codec than these).",
            "",
            "| clip | acted | predicted | top probabilities | audio only | text only | transcript |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in crema:
            top = sorted((r.get("probabilities") or {}).items(), key=lambda kv: -kv[1])[:3]
            lines.append(f"| {r['clip']} | {r['acted']} | {r.get('predicted') or '-'} | "
                         f"{', '.join(f'{c} {p:.2f}' for c, p in top) or r.get('note', '-')} | {r.get('audio_only', '-')} | "
                         f"{r.get('text_only', '-')} | {r.get('text', '')} |")
        lines.append("")
    lines += [
        "## Limits",
        "",
        "- English only; the transcriber does not separate speakers, so an automatically transcribed clip is one party.",
        "- Sentiment was learnt from 1,447 utterances of YouTube opinion videos: expect less on other kinds of talk.",
        "- Emotion from the voice was learnt from acted studio speech of 18 actors and did not transfer to CREMA-D's",
        "  recordings (above): read the emotion of an automatically transcribed clip as coming from its words.",
        "- No facial expression is used (see above).",
        "",
    ]
    path = Path(path)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
