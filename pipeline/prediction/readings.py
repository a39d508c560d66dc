"""What each modality says about an utterance's emotion, and the one reading made of them (7-way emotion models).

    rule = FusionRule.from_checkpoint(ckpt)             # calibration, face expert and weights, uncertainty thresholds
    fused = rule.fuse(network, face)                     # (T, 7) probabilities
    flags = rule.uncertain(fused, {"words": ..., ...})   # per utterance: None, or why the reading is unsure

Readings, each a distribution over model.tasks.EMOTION_CLASSES (neutral, happiness, sadness, anger, surprise,
disgust, fear):
- words: the network with only the text present; voice: the network with only the audio present (Multilogue-Net
  masks an absent modality, so each reading is the same trained network hearing one stream);
- face: the facial-expression expert when the rule has one: the FER network's seven probabilities (the `facemesh`
  extractor's features 11-17: angry, disgust, fear, happy, sad, surprise, neutral), mapped one to one onto the
  classes and averaged over the utterance's frames with a face; otherwise (a model trained on faces) the network
  with only the visual present;
- network: what the network says with every modality it was trained on that the utterance has (words + voice for
  the shipped model).

The fused reading is a weighted product of experts, fixed before any test clip was scored:
p(c) ∝ network(c)^1 · face(c)^face_weight, renormalised; an utterance without a face keeps the network's reading,
one with only a face the face's. Calibration: the network's probabilities are sharpened or softened by a
temperature fitted on validation conversations (p^(1/T), renormalised; T > 1 softens): one for what the network
reads with a voice among its inputs, one for what it reads without (on the shipped model's validation data the
network is overconfident when it hears a voice, and nearly calibrated on words alone). No corpus here has
labelled faces, so the face expert is not calibrated; its weight says how much it counts (see the model card).

An utterance is `uncertain` when the fused reading's top probability is under `min_confidence`, or when two
readings each name a different emotion with at least `disagree_confidence`: the output then says so instead of
presenting a confident label (`uncertain_why` gives the reason).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# the FER model's output order (extractors.visual_facemesh.EMOTIONS) -> our classes
FER_CLASSES = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness", "surprise": "surprise",
               "neutral": "neutral"}
FER_COLUMNS = slice(11, 18)  # facemesh features 11-17
READING_OF = {"text": "words", "audio": "voice", "visual": "face"}


@dataclass(frozen=True)
class FusionRule:
    """How a 7-way emotion model's readings become one (stored in its checkpoint under "fusion").

    temperature: of the network's probabilities (1: as trained); voice_temperature: instead of it where the network's
    inputs include a voice (None: the same). face: the extractor spec of the facial-expression expert ({"name":
    "facemesh", "params", "dim"}), None for none. face_weight: its exponent in the product.
    min_confidence, disagree_confidence: the `uncertain` thresholds (see the module docstring)."""

    temperature: float = 1.0
    voice_temperature: float | None = None
    face: dict[str, Any] | None = None
    face_weight: float = 0.5
    min_confidence: float = 0.4
    disagree_confidence: float = 0.6
    notes: dict[str, Any] = field(default_factory=dict, compare=False)  # how the values were chosen (for the card)

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "FusionRule":
        d = ckpt.get("fusion") or {}
        known = {k: d[k] for k in ("temperature", "voice_temperature", "face", "face_weight", "min_confidence", "disagree_confidence", "notes") if k in d}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ------------------------------------------------------------------ readings
    def calibrate(self, probs: np.ndarray, voiced: np.ndarray | bool = False) -> np.ndarray:
        """(T, C) network probabilities at the fitted temperatures: voiced (T,) bool, or one bool for every row, says
        which rows the network read with a voice among its inputs (voice_temperature), the others get temperature."""
        out = np.array(temper(probs, self.temperature))
        voiced = np.broadcast_to(np.asarray(voiced, bool), (len(out),))
        if self.voice_temperature is not None and voiced.any():
            out[voiced] = temper(np.asarray(probs)[voiced], self.voice_temperature)
        return out

    def face_reading(self, visual: np.ndarray, present: np.ndarray) -> np.ndarray:
        """(T, 7) class probabilities from facemesh rows (T, 19); NaN rows where no face was seen."""
        from model.tasks import EMOTION_CLASSES
        from extractors.visual_facemesh import EMOTIONS as FER_ORDER

        fer = np.asarray(visual, dtype=np.float64)[:, FER_COLUMNS]
        out = np.full((len(fer), len(EMOTION_CLASSES)), np.nan)
        for j, name in enumerate(FER_ORDER):
            out[:, EMOTION_CLASSES.index(FER_CLASSES[name])] = fer[:, j]
        out[~np.asarray(present, bool)] = np.nan
        total = out.sum(axis=1, keepdims=True)
        return np.where(total > 0, out / np.where(total > 0, total, 1), np.nan)

    def fuse(self, network: np.ndarray | None, face: np.ndarray | None) -> np.ndarray:
        """(T, C): the product of the calibrated network's reading and the face's (weighted), per utterance; the one
        that is there where the other is absent (NaN rows); NaN where neither is."""
        if network is None and face is None:
            raise ValueError("nothing to fuse")
        if face is None:
            return network
        if network is None:
            return face
        both = ~np.isnan(network).any(axis=1) & ~np.isnan(face).any(axis=1)
        out = np.where(np.isnan(network).any(axis=1, keepdims=True), face, network)
        logp = np.log(np.clip(network[both], 1e-9, 1)) + self.face_weight * np.log(np.clip(face[both], 1e-9, 1))
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        out[both] = p / p.sum(axis=1, keepdims=True)
        return out

    def uncertain(self, fused: np.ndarray, readings: dict[str, np.ndarray]) -> list[str | None]:
        """Per utterance: None when the fused reading is clear, else why not (low confidence, or readings that
        confidently disagree, named)."""
        from model.tasks import EMOTION_CLASSES

        out: list[str | None] = []
        for i, p in enumerate(fused):
            if np.isnan(p).any():
                out.append(None)
                continue
            confident = {name: int(np.argmax(r[i])) for name, r in readings.items()
                         if not np.isnan(r[i]).any() and r[i].max() >= self.disagree_confidence}
            if len(set(confident.values())) > 1:
                out.append(", ".join(f"{name} says {EMOTION_CLASSES[k]}" for name, k in confident.items()))
            elif p.max() < self.min_confidence:
                out.append(f"low confidence ({p.max():.2f} < {self.min_confidence:g})")
            else:
                out.append(None)
        return out


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """(T, C) probabilities raised to 1/temperature and renormalised (softmax(log p / T)); NaN rows stay NaN."""
    p = np.asarray(probs, dtype=np.float64)
    if temperature == 1.0:
        return p
    logp = np.log(np.clip(p, 1e-12, 1)) / temperature
    logp -= np.nanmax(logp, axis=1, keepdims=True)
    q = np.exp(logp)
    return q / q.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of `labels` (n,) int under `probs` (n, C): a
    golden-section search over log T in [ln 0.25, ln 8] (the NLL is convex in 1/T)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1)
    y = np.asarray(labels, dtype=int)

    def nll(log_t: float) -> float:
        q = temper(p, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(q[np.arange(len(y)), y], 1e-12, 1))))

    a, b = np.log(0.25), np.log(8.0)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(60):
        if nll(c) < nll(d):
            b, d = d, c
            c = b - g * (b - a)
        else:
            a, c = c, d
            d = a + g * (b - a)
    return float(np.exp((a + b) / 2))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the mean over equal-width confidence bins of |accuracy - confidence|, weighted by the bin's share."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=int)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(np.mean(pred[sel] == y[sel]) - conf[sel].mean())
    return float(ece)


def read_emotions(run: Any, view: dict, trained: list[str], rule: FusionRule, face: np.ndarray | None = None) -> dict[str, Any]:
    """One 7-way model's readings of a clip's utterances.

    run: view -> (T, C) network probabilities (pipeline.prediction.predict.run_model over the model); view: the
    clip's features as the model takes them ({"text", "audio", "visual": (T, d), "present": (T, 3) bool});
    trained: the modalities the network has (and that this prediction uses); face: the face expert's (T, C)
    reading (FusionRule.face_reading), None without one.

    Returns {"readings": {"words"|"voice"|"face": (T, C), NaN rows where that modality is absent}, "fused": (T, C),
    "uncertain": [None | why]}. The network's own reading with all of `trained` is what is fused with the face.
    """
    from data.schema import MODALITIES

    present = np.asarray(view["present"], bool)
    readings: dict[str, np.ndarray] = {}
    cols = [MODALITIES.index(m) for m in trained]
    network = None
    if cols:
        audio = MODALITIES.index("audio")
        network = rule.calibrate(run(view), present[:, audio] if "audio" in trained else False)
        network[~present[:, cols].any(axis=1)] = np.nan
        for m, k in zip(trained, cols):
            if len(cols) == 1:
                readings[READING_OF[m]] = network
                continue
            alone = dict(view, present=present & (np.arange(len(MODALITIES)) == k))
            reading = rule.calibrate(run(alone), m == "audio")
            reading[~present[:, k]] = np.nan
            readings[READING_OF[m]] = reading
    if face is not None:
        readings["face"] = face
    fused = rule.fuse(network, face)
    return {"readings": readings, "fused": fused, "uncertain": rule.uncertain(fused, readings)}
