"""A literal, slow transcription of Multilogue-Net's equations (DESIGN.md), for checking the fast model.

It follows the seed's structure step by step: every party goes through GRU_P and is masked afterwards,
attention is a softmax over the stacked history, padded steps are computed, backward sequences are
reversed per dialogue and their padding is zero. It shares the fast model's parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model.network import MODALITY_ORDER, pair_fusion


def reference_cell(cell, U: torch.Tensor, C: torch.Tensor, qmask: torch.Tensor) -> torch.Tensor:
    """U (T,B,d), C (T,B,d_ctx), qmask (T,B,P) -> e (T,B,d_e); no dropout."""
    T, B, P = qmask.shape
    d_p, d_e, d_g = cell.p_cell.hidden_size, cell.e_cell.hidden_size, cell.g_cell.hidden_size
    q = U.new_zeros(B, P, d_p)
    e = U.new_zeros(B, d_e)
    history: list[torch.Tensor] = []
    outputs = []
    rows = torch.arange(B)
    for t in range(T):
        idx = qmask[t].argmax(1)
        g_prev = history[-1] if history else U.new_zeros(B, d_g)
        g = cell.g_cell(torch.cat([C[t], q[rows, idx]], dim=1), g_prev)
        if history:
            H = torch.stack(history)  # (t, B, d_g)
            alpha = torch.softmax(cell.attention(H), dim=0)
            a = (alpha * H).sum(0)
        else:
            a = U.new_zeros(B, d_g)
        x = torch.cat([U[t], a], dim=1).unsqueeze(1).expand(B, P, -1).reshape(B * P, -1)
        q_all = cell.p_cell(x, q.reshape(B * P, d_p)).view(B, P, d_p)
        m = qmask[t].unsqueeze(2)
        q = q * (1 - m) + q_all * m
        e = cell.e_cell(q[rows, idx], e)
        history.append(g)
        outputs.append(e)
    return torch.stack(outputs)


def reverse_each(x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """(T,B,...) -> each dialogue reversed within its length, zero padding after."""
    out = torch.zeros_like(x)
    for b, L in enumerate(lengths):
        out[:L, b] = x[:L, b].flip(0)
    return out


def reference_forward(model, text, audio, visual, speakers, mask) -> torch.Tensor:
    cfg = model.config
    mask = mask.bool()
    lengths = mask.sum(1).tolist()
    feats = {}
    for m, x in zip(MODALITY_ORDER, (text, audio, visual)):
        norm = (x - getattr(model, f"{m}_mean")) / getattr(model, f"{m}_std")
        feats[m] = (norm * mask.unsqueeze(-1)).transpose(0, 1)
    qmask = speakers.transpose(0, 1).float()
    hs = []
    for k, m in enumerate(MODALITY_ORDER):
        e = reference_cell(model.forward_cells[k], feats[m], feats["text"], qmask)
        if cfg.bidirectional:
            e_b = reference_cell(
                model.backward_cells[k], reverse_each(feats[m], lengths), reverse_each(feats["text"], lengths), reverse_each(qmask, lengths)
            )
            e = torch.cat([e, reverse_each(e_b, lengths)], dim=-1)
        h = model.hidden(e)
        hs.append(F.relu(h) if cfg.bidirectional else h)
    h_t, h_a, h_v = (h.transpose(0, 1) for h in hs)
    fm = mask if cfg.mask_fusion else None
    fused = torch.cat([pair_fusion(h_t, h_a, fm), pair_fusion(h_v, h_a, fm), pair_fusion(h_t, h_v, fm), h_t, h_a, h_v], dim=-1)
    out = model.classifier(fused)
    return F.log_softmax(out, -1) if cfg.task != "regression" else 3 * torch.tanh(out.squeeze(-1))
