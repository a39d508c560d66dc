"""Fine-tuning the text encoder together with Multilogue-Net (`train --finetune-text K`).

MiniLM's top K layers are trained with the network, at their own learning rate (`--text-lr`, lower than the
network's, no weight decay: it would pull the pre-trained weights towards zero); the embeddings and the layers
below stay as packaged. What makes it affordable on a CPU: the lower layers' token states of every text are
computed once per corpus and kept on disk (pipeline.training.token_cache), so an epoch runs only the K trained
layers, on each batch's distinct texts, in chunks of at most `token_budget` word pieces; a batch with more
pieces than that is run chunk by chunk with gradient checkpointing, so what backward keeps is bounded by the
budget and not by the batch.

    tuner = TextTuner(ds, layers=1, cache_dir=Path(".cache/token-states"))
    batch.text = tuner(batch)                 # (B, T, 384): each utterance's sentence vector through the current top
    ckpt["text_delta"] = tuner.delta()        # only the trained layers, float16 (extractors.minilm_delta)
    adapted = adapted_dataset(ds, delta)      # the dataset's text features through a delta: final scores, evaluate

With several seeds (`train --finetune-text K --seeds 1,2,3`) the seeds' networks train together in one run on one
encoder (model.config.TrainConfig.joint_seeds; pipeline.training.train): each network minimises its own loss, the
encoder gets their summed gradient, and the checkpoint is the ensemble with one delta.

The dataset keeps its frozen sentence vectors (its format is unchanged, so the seed's loader still reads it): the
texts come from `sentence_in_text` of the utterances whose text is present, tokenised and truncated as the
dataset's minilm spec says. Before any step the tuned top reproduces the frozen features (to float16 rounding of
the cached states), so training starts where the frozen model would.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import DatasetError
from core.progress import Progress
from data.dataset import presence
from extractors.minilm_encoder import bert_layer, layer_names, layer_prefix, pool

log = logging.getLogger(__name__)
DROPOUT = 0.1  # MiniLM's own hidden and attention dropout (its config.json), in the trained layers only
CHUNK_ROWS = 32  # texts run at once, in order of length, so a chunk pads little
DEFAULT_CACHE = Path.home() / ".cache" / "multilogue" / "token-states"


class TunedTop(nn.Module):
    """MiniLM's top layers as trainable parameters, initialised from the packaged weights.

    forward(states (N, L, hidden) float32 token states entering the first tuned layer, mask (N, L) bool) ->
    (N, hidden) unit-norm sentence vectors (mean pooling over the real tokens, as the packaged model)."""

    def __init__(self, encoder: Any, layers: list[int], dropout: float = DROPOUT) -> None:
        super().__init__()
        self.layers, self.heads, self.eps, self.dropout = list(layers), encoder.heads, encoder.eps, dropout
        self.names = [n for i in self.layers for n in layer_names(i)]
        self.values = nn.ParameterList([nn.Parameter(encoder.w[n].detach().clone().float()) for n in self.names])

    def weights(self) -> dict[str, torch.Tensor]:
        """Weight name (as in model.safetensors) -> its parameter."""
        return dict(zip(self.names, self.values))

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, p in zip(self.names, self.values):
                p.copy_(weights[name].float())

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask[:, None, None, :]
        w = self.weights()
        x = states
        for i in self.layers:
            x = bert_layer(x, keep, w, layer_prefix(i), self.heads, self.eps, self.dropout if self.training else 0.0)
        return pool(x, mask)


def utterance_texts(ds: dict) -> tuple[list[str], dict[str, torch.Tensor]]:
    """The distinct texts of the utterances whose text is present, and per video a (T,) long tensor of each
    utterance's text index (-1 where its text is absent)."""
    index: dict[str, int] = {}
    rows = {}
    for vid in ds["ID"]:
        has = presence(ds, vid)[:, 0]
        sentences = ds["sentence_in_text"][vid]
        rows[vid] = torch.tensor([index.setdefault(str(s), len(index)) if h else -1 for s, h in zip(sentences, has)], dtype=torch.long)
    return list(index), rows


def minilm_spec(ds: dict, source: Any = "dataset") -> dict:
    """The dataset's text spec, which must be the packaged minilm (not already fine-tuned); DatasetError otherwise."""
    spec = (ds["meta"].get("features") or {}).get("text") or {}
    if spec.get("name") != "minilm":
        raise DatasetError(f"{source}: --finetune-text fine-tunes the minilm text encoder, but this dataset's text features come from "
                           f"{spec.get('name')!r}; build it with --text minilm")
    if (spec.get("params") or {}).get("delta"):
        raise DatasetError(f"{source}: its text features already come from a fine-tuned encoder; fine-tune from the packaged one "
                           "(a dataset made with --text minilm)")
    return spec


class TextTuner:
    """The trainable top of the text encoder over one dataset's utterances (see the module's docstring).

    ds: a dataset whose text spec is minilm; layers: how many top layers to train (1..6); cache_dir: the token-state
    cache (None: in memory only); token_budget: word pieces run at once; weights: start from these (a delta's)."""

    def __init__(self, ds: dict, layers: int, cache_dir: str | Path | None = None, token_budget: int = 16384,
                 weights: dict[str, torch.Tensor] | None = None, source: Any = "dataset", progress: Progress | None = None) -> None:
        from extractors.text_minilm import base_sha256, load_model
        from pipeline.training.token_cache import token_bank

        spec = minilm_spec(ds, source)
        encoder = load_model()
        if not 1 <= layers <= encoder.layers:
            raise DatasetError(f"--finetune-text {layers}: MiniLM has {encoder.layers} layers; give 1..{encoder.layers}")
        self.first = encoder.layers - layers
        self.max_seq_length = int(spec["params"].get("max_seq_length", 256))
        self.base_sha256 = base_sha256()
        self.token_budget = int(token_budget)
        texts, self.rows = utterance_texts(ds)
        bank, offsets = token_bank(texts, encoder, self.first, self.max_seq_length, self.base_sha256,
                                   None if cache_dir is None else Path(cache_dir), progress)
        self.bank = torch.from_numpy(bank)  # (total tokens, hidden) float16
        self.starts = torch.from_numpy(offsets[:-1].copy())
        self.lengths = torch.from_numpy(np.diff(offsets))
        self.top = TunedTop(encoder, list(range(self.first, encoder.layers)))
        if weights is not None:
            self.top.load_weights(weights)
        log.info("fine-tuning text layers %s: %d texts, %d word pieces cached", self.top.layers, len(texts), len(bank))

    def parameters(self):
        return self.top.parameters()

    def encode_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """(n,) text indices -> (n, hidden) sentence vectors through the current top (its train / eval mode)."""
        lengths = self.lengths[rows]
        order = torch.argsort(lengths, stable=True)
        out, pieces = [], []
        total = int(lengths.sum())
        chunks, start = [], 0
        for end in range(1, len(order) + 1):  # ascending lengths: a chunk's width is its last row's
            if end == len(order) or end - start >= CHUNK_ROWS or (end + 1 - start) * int(lengths[order[end]]) > self.token_budget:
                chunks.append(order[start:end])
                start = end
        for chunk in chunks:
            r = rows[chunk]
            width = int(self.lengths[r].max())
            steps = torch.arange(width)
            mask = steps[None, :] < self.lengths[r][:, None]
            index = torch.where(mask, self.starts[r][:, None] + steps[None, :], torch.zeros((), dtype=torch.long))
            states = self.bank[index].float() * mask[..., None]
            if self.top.training and torch.is_grad_enabled() and total > self.token_budget:
                from torch.utils.checkpoint import checkpoint

                out.append(checkpoint(self.top, states, mask, use_reentrant=False))
            else:
                out.append(self.top(states, mask))
            pieces.append(chunk)
        result = torch.empty(len(rows), self.bank.shape[1])
        return result.index_copy(0, torch.cat(pieces), torch.cat(out)) if out else result

    def __call__(self, batch: Any) -> torch.Tensor:
        """A Batch's (B, T, hidden) text features, those of each present text recomputed through the top; the others
        (absent, padding) keep the batch's. Each distinct text of the batch is encoded once."""
        B, T = batch.mask.shape
        rows = torch.full((B, T), -1, dtype=torch.long)
        for b, vid in enumerate(batch.videos):
            r = self.rows[vid]
            rows[b, :len(r)] = r
        have = (rows >= 0) & batch.present[..., 0]
        if not bool(have.any()):
            return batch.text
        unique, inverse = torch.unique(rows[have], return_inverse=True)
        feats = self.encode_rows(unique)
        text = batch.text.clone()
        text[have] = feats[inverse].to(text.dtype)
        return text

    def delta(self) -> dict:
        """The trained layers as a delta over the packaged base (extractors.minilm_delta), float16."""
        from extractors.minilm_delta import make_delta

        return make_delta({k: v.detach() for k, v in self.top.weights().items()}, self.base_sha256, self.top.layers)

    @torch.no_grad()
    def features(self, ds: dict) -> dict[str, np.ndarray]:
        """Every video's (T, hidden) float32 text features through the top in eval mode: the recomputed vector
        where the text is present, the dataset's row elsewhere."""
        was = self.top.training
        self.top.eval()
        try:
            texts = torch.arange(len(self.lengths))
            vectors = torch.cat([self.encode_rows(texts[i:i + 4096]) for i in range(0, len(texts), 4096)]).numpy()
        finally:
            self.top.train(was)
        out = {}
        for vid in ds["ID"]:
            r = self.rows[vid].numpy()
            x = np.array(ds["text_feat"][vid], dtype=np.float32, copy=True)
            x[r >= 0] = vectors[r[r >= 0]]
            out[vid] = x
        return out


def tuned_spec(spec: dict, delta: dict) -> dict:
    """A minilm text spec with the delta's description in its params (extractors.minilm_delta.describe)."""
    from extractors.minilm_delta import describe

    return {**spec, "params": {**spec["params"], "delta": describe(delta)}}


_ADAPTED: dict[str, tuple[dict, dict]] = {}  # delta sha256 -> (the dataset it was applied to, the result): the last one


def adapted_dataset(ds: dict, delta: dict, cache_dir: str | Path | None = None, token_budget: int = 16384, source: Any = "dataset") -> dict:
    """`ds` with its text features recomputed through a fine-tuned delta (float16, as predict uses it) and its text spec
    naming the delta: the dataset as a fine-tuned checkpoint reads it (final scores, evaluate, the release's figures).
    The last result is kept for the same dataset object and delta, so scoring an ensemble and its members computes it once."""
    from extractors.minilm_delta import check_base, delta_problem
    from extractors.text_minilm import PACKAGE, base_sha256, load_model

    problem = delta_problem(delta)
    if problem:
        raise DatasetError(f"the fine-tuned text encoder: {problem}")
    check_base(delta, base_sha256(), PACKAGE)
    held = _ADAPTED.get(delta["sha256"])
    if held is not None and held[0] is ds:
        return held[1]
    spec = minilm_spec(ds, source)
    depth = load_model().layers
    if list(delta["layers"]) != list(range(depth - len(delta["layers"]), depth)):
        raise DatasetError(f"the fine-tuned text encoder replaces layers {delta['layers']}, not the top ones; retrain it")
    tuner = TextTuner(ds, len(delta["layers"]), cache_dir, token_budget, weights=delta["weights"], source=source)
    features = tuner.features(ds)
    meta = {**ds["meta"], "features": {**ds["meta"]["features"], "text": tuned_spec(spec, delta)}}
    out = {**ds, "text_feat": features, "meta": meta}
    _ADAPTED.clear()
    _ADAPTED[delta["sha256"]] = (ds, out)
    return out

