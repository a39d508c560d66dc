"""A literal, slow transcription of Multilogue-Net's equations (model/network.py's docstring), for checking the
fast model.

It follows the seed's structure step by step: every party goes through GRU_P and is masked afterwards,
attention is a softmax over the stacked history, padded steps are computed, backward sequences are
reversed per dialogue and their padding is zero. It shares the fast model's parameters, and nothing else:
the fusion is written out here again, one dialogue and one utterance at a time.

Absent modalities (`present`), as the model defines them: a cell skips an utterance whose modality is
absent (every state kept, nothing added to the attention history), the absent modality's features are
never read, its hidden vector is zero, and fusion attends only to utterances where the other side is
present.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model.network import MODALITY_ORDER


def no_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    return x


def reference_cell(cell, U: torch.Tensor, C: torch.Tensor, qmask: torch.Tensor, pres: torch.Tensor | None = None,
                   drop=no_dropout, p: float = 0.0) -> torch.Tensor:
    """U (T,B,d), C (T,B,d_ctx), qmask (T,B,P), pres (T,B) bool or None -> e (T,B,d_e). drop(x, p) is applied to
    each new global, party and emotion state (the recurrent dropout, steps g, q and e of the equations)."""
    T, B, P = qmask.shape
    if pres is not None:  # dialogue by dialogue, only the present steps, the states carried over the others
        out = U.new_zeros(T, B, cell.e_cell.hidden_size)
        for b in range(B):
            steps = pres[:, b].nonzero().flatten().tolist()
            if not steps:
                continue
            e_b = reference_cell(cell, U[steps, b : b + 1], C[steps, b : b + 1], qmask[steps, b : b + 1], drop=drop, p=p)
            last = None
            for t in range(T):
                if t in steps:
                    last = e_b[steps.index(t), 0]
                if last is not None:
                    out[t, b] = last
        return out
    d_p, d_e, d_g = cell.p_cell.hidden_size, cell.e_cell.hidden_size, cell.g_cell.hidden_size
    q = U.new_zeros(B, P, d_p)
    e = U.new_zeros(B, d_e)
    history: list[torch.Tensor] = []
    outputs = []
    rows = torch.arange(B)
    for t in range(T):
        idx = qmask[t].argmax(1)
        g_prev = history[-1] if history else U.new_zeros(B, d_g)
        g = drop(cell.g_cell(torch.cat([C[t], q[rows, idx]], dim=1), g_prev), p)
        if history:
            H = torch.stack(history)  # (t, B, d_g)
            alpha = torch.softmax(cell.attention(H), dim=0)
            a = (alpha * H).sum(0)
        else:
            a = U.new_zeros(B, d_g)
        x = torch.cat([U[t], a], dim=1).unsqueeze(1).expand(B, P, -1).reshape(B * P, -1)
        q_all = drop(cell.p_cell(x, q.reshape(B * P, d_p)).view(B, P, d_p), p)
        m = qmask[t].unsqueeze(2)
        q = q * (1 - m) + q_all * m
        e = drop(cell.e_cell(q[rows, idx], e), p)
        history.append(g)
        outputs.append(e)
    return torch.stack(outputs)


def reverse_each(x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """(T,B,...) -> each dialogue reversed within its length, zero padding after."""
    out = torch.zeros_like(x)
    for b, L in enumerate(lengths):
        out[:L, b] = x[:L, b].flip(0)
    return out


def reference_pair(x: torch.Tensor, y: torch.Tensor, keys_x: torch.Tensor, keys_y: torch.Tensor) -> torch.Tensor:
    """x, y (B,T,D); keys_x, keys_y (B,T) bool: utterances that may be attended on each side.

    For utterance i of dialogue b: x'_i = sum_j softmax_j(x_i . y_j) y_j * x_i over j in keys_y, and the
    same with x and y swapped; zeros when the other side has no key.
    """
    B, T, D = x.shape
    out = x.new_zeros(B, T, 2 * D)
    for b in range(B):
        for i in range(T):
            for q, k, keys, half in ((x, y, keys_y, 0), (y, x, keys_x, 1)):
                js = keys[b].nonzero().flatten()
                if len(js) == 0:
                    continue
                w = torch.softmax(torch.stack([q[b, i] @ k[b, j] for j in js]), 0)
                out[b, i, half * D : (half + 1) * D] = (w.unsqueeze(1) * k[b, js]).sum(0) * q[b, i]
    return out


def reference_forward(model, text, audio, visual, speakers, mask, present=None, drop=no_dropout) -> torch.Tensor:
    """The model's output, step by step. drop(x, p): dropout, applied where the paper places it (the
    recurrent states, the cells' outputs, the hidden vectors); the default applies none (eval mode)."""
    cfg = model.config
    mask = mask.bool()
    lengths = mask.sum(1).tolist()
    keep = {m: mask if present is None else present[..., k].bool() & mask for k, m in enumerate(MODALITY_ORDER)}
    feats = {}
    for m, x in zip(MODALITY_ORDER, (text, audio, visual)):
        norm = (x - getattr(model, f"{m}_mean")) / getattr(model, f"{m}_std")
        feats[m] = torch.where(keep[m].unsqueeze(-1), norm, torch.zeros_like(norm)).transpose(0, 1)
    qmask = speakers.transpose(0, 1).float()
    hs = []
    for k, m in enumerate(MODALITY_ORDER):
        pres = None if present is None else keep[m].transpose(0, 1)
        rec = cfg.recurrent_dropout
        e = reference_cell(model.forward_cells[k], feats[m], feats["text"], qmask, pres, drop, rec)
        if cfg.bidirectional:
            e_b = reference_cell(
                model.backward_cells[k], reverse_each(feats[m], lengths), reverse_each(feats["text"], lengths), reverse_each(qmask, lengths),
                None if pres is None else reverse_each(pres, lengths), drop, rec,
            )
            e = torch.cat([e, reverse_each(e_b, lengths)], dim=-1)
        e = drop(e, cfg.output_dropout)
        h = model.hidden(e)
        h = F.relu(h) if cfg.bidirectional else h
        h = drop(h, cfg.dropout)
        hs.append(h if present is None else h * keep[m].transpose(0, 1).unsqueeze(-1))
    h_t, h_a, h_v = (h.transpose(0, 1) for h in hs)
    every = torch.ones_like(mask)
    base = mask if cfg.mask_fusion else every
    k_t, k_a, k_v = (base & keep[m] if present is not None else base for m in MODALITY_ORDER)
    fused = torch.cat([reference_pair(h_t, h_a, k_t, k_a), reference_pair(h_v, h_a, k_v, k_a), reference_pair(h_t, h_v, k_t, k_v), h_t, h_a, h_v], dim=-1)
    out = model.classifier(fused)
    return F.log_softmax(out, -1) if cfg.task != "regression" else 3 * torch.tanh(out.squeeze(-1))
