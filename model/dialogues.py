"""Torch view of a dataset: one item per dialogue, padded batches with utterance mask, speaker one-hot and
the presence of each modality."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from data.dataset import MODALITIES, presence


def task_targets(labels: np.ndarray, task: str, emotion: str | None = None) -> np.ndarray:
    """(n, 7) labels -> (n,) float32 targets for `task` (model.tasks); NaN where unknown."""
    from model.tasks import get_task

    return get_task(task).targets(labels, emotion)


class Dialogue(NamedTuple):
    """One dialogue as tensors: features (T, d) each, party index per utterance (T,) long, presence (T, 3)
    bool, task targets and raw sentiment (T,) float32 (NaN where unknown), and its video id."""

    text: torch.Tensor
    audio: torch.Tensor
    visual: torch.Tensor
    party: torch.Tensor
    present: torch.Tensor
    targets: torch.Tensor
    sentiment: torch.Tensor
    video: str


@dataclass
class Batch:
    """Padded batch. text/audio/visual (B, T, d) float32; speakers (B, T, P) one-hot; mask (B, T) bool;
    present (B, T, 3) bool, which modalities each utterance has (False at padding); targets (B, T) float32
    (NaN where unknown or padded); sentiment (B, T) the raw sentiment column (for the non-zero binary
    metrics); videos: ids in batch order."""

    text: torch.Tensor
    audio: torch.Tensor
    visual: torch.Tensor
    speakers: torch.Tensor
    mask: torch.Tensor
    present: torch.Tensor
    targets: torch.Tensor
    sentiment: torch.Tensor
    videos: list[str]

    def to(self, device: torch.device | str) -> "Batch":
        tensors = (self.text, self.audio, self.visual, self.speakers, self.mask, self.present, self.targets, self.sentiment)
        return Batch(*(x.to(device) for x in tensors), self.videos)

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """The model's arguments: text, audio, visual, speakers, mask, present."""
        return self.text, self.audio, self.visual, self.speakers, self.mask, self.present


def make_dialogue(feats: dict[str, np.ndarray], speakers: Sequence[str], present: np.ndarray | None = None,
                  labels: np.ndarray | None = None, task: str = "binary", emotion: str | None = None, video: str = "",
                  modalities: Sequence[str] | None = None) -> Dialogue:
    """One conversation as model input, the one path for training, evaluation and predict.

    feats[m]: (T, d_m); speakers: T labels, which become party indices in order of first appearance (the
    model has no per-party weights); present: (T, 3) bool (None: every modality of non-zero width);
    labels: (T, 7) or None (targets unknown); `modalities` keeps only those present.
    """
    parties: dict[str, int] = {}
    who = torch.tensor([parties.setdefault(s, len(parties)) for s in speakers], dtype=torch.long)
    x = [torch.from_numpy(np.ascontiguousarray(feats[m], dtype=np.float32)) for m in MODALITIES]
    T = len(who)
    if present is None:
        present = np.array([[xi.shape[1] > 0 for xi in x]] * T, dtype=bool).reshape(T, len(MODALITIES))
    keep = np.array([m in (modalities or MODALITIES) for m in MODALITIES])
    if labels is None:  # predict: nothing to score
        targets = sentiment = torch.full((T,), float("nan"))
    else:
        targets = torch.from_numpy(task_targets(labels, task, emotion))
        sentiment = torch.from_numpy(np.ascontiguousarray(labels[:, 0], dtype=np.float32))
    return Dialogue(*x, who, torch.from_numpy(np.asarray(present, dtype=bool) & keep), targets, sentiment, video)


class DialogueDataset(Dataset):
    """Dialogues of `videos`, converted to tensors once; speakers become party indices in order of
    first appearance within each dialogue (the model has no per-party weights).

    `modalities` keeps only those modalities present (the others are marked absent), e.g. to measure a
    model without audio; None keeps what the data has."""

    def __init__(self, ds: dict, videos: Sequence[str], task: str = "binary", emotion: str | None = None,
                 modalities: Sequence[str] | None = None):
        self.videos = list(videos)
        self.items = []
        for vid in self.videos:
            feats = {m: ds[f"{m}_feat"][vid] for m in MODALITIES}
            self.items.append(make_dialogue(feats, ds["speakers"][vid], presence(ds, vid), ds["labels"][vid], task, emotion, vid, modalities))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Dialogue:
        return self.items[i]

    def lengths(self) -> list[int]:
        return [item.text.shape[0] for item in self.items]


def collate(items: list[Dialogue]) -> Batch:
    """Pad a list of dialogues into a Batch."""
    lengths = [it.text.shape[0] for it in items]
    B, T = len(items), max(lengths)
    P = max(int(it.party.max()) + 1 for it in items)
    dims = [items[0][k].shape[1] for k in range(3)]
    feats = [torch.zeros(B, T, d) for d in dims]
    who = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.bool)
    present = torch.zeros(B, T, len(MODALITIES), dtype=torch.bool)
    targets = torch.full((B, T), float("nan"))
    sentiment = torch.full((B, T), float("nan"))
    for b, (text, audio, visual, spk, pres, tgt, sent, _) in enumerate(items):
        L = lengths[b]
        for k, x in enumerate((text, audio, visual)):
            feats[k][b, :L] = x
        who[b, :L] = spk
        mask[b, :L] = True
        present[b, :L] = pres
        targets[b, :L] = tgt
        sentiment[b, :L] = sent
    speakers = torch.nn.functional.one_hot(who, P).float() * mask.unsqueeze(-1)
    return Batch(*feats, speakers, mask, present, targets, sentiment, [it.video for it in items])


def drop_modalities(present: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Modality dropout for training: each dialogue loses each of its modalities with probability p.

    present: (B, T, 3) bool -> a new (B, T, 3) bool. Whole modalities go, for the whole dialogue, as when a
    clip has no face or no usable audio; a dialogue never loses all the modalities it has (one of those
    drawn away is kept at random), so every labelled utterance still has an input.
    """
    if p <= 0:
        return present
    B = present.shape[0]
    has = present.any(1)  # (B, 3)
    drop = torch.rand(B, present.shape[2], generator=generator) < p
    lost_all = (has & ~drop).sum(1) == 0
    if lost_all.any():
        pick = torch.rand(B, present.shape[2], generator=generator).masked_fill(~has, -1.0).argmax(1)
        drop[lost_all, pick[lost_all]] = False
    return present & ~drop.unsqueeze(1)
