"""Train and evaluate Multilogue-Net on a dataset, honestly: model selection on a validation split of the
training videos, the test split touched once at the end.

A run folder receives checkpoint.pt (the best epoch), last.pt (resume state, every epoch), config.json,
metrics.json, curves.png and TensorBoard scalars in tensorboard/.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from data.dataset import EMOTIONS, MODALITIES, feature_dims, load_dataset, presence, split_counts
from core.errors import CheckpointError, DatasetError, UserError
from core.fileio import atomic_path, atomic_write_bytes, atomic_write_json
from core.options import COUNT, NON_NEGATIVE, POSITIVE, RATIO, TOKENS, TUNED_LAYERS
from core.progress import Progress
from model.dialogues import Batch, DialogueDataset, collate, drop_modalities
from model.checkpoint import check_dims, load_model, load_state, make_checkpoint, save_checkpoint
from model.config import ModelConfig, TrainConfig
from model.network import Ensemble, MultilogueNet
from model.tasks import get_task

log = logging.getLogger(__name__)
RESUME_NAME = "last.pt"


class TrainingDiverged(UserError):
    """The loss or the weights stopped being finite: the run stops, keeping its last good checkpoint.pt and last.pt."""


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise DatasetError("--device cuda: no CUDA device is visible; use --device cpu or auto")
        return torch.device("cuda")
    return torch.device("cpu")


def split_validation(videos: list[str], ratio: float, seed: int, groups: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Seeded split of training videos into (train, valid) by data.splits.hash_split: a video's side depends on
    its id (or its group's, see below) and the seed alone (so one corpus's validation videos are the same alone
    or merged with others); at least one validation video when ratio > 0 and there are two or more.

    groups: video -> group (a dataset's meta["groups"], e.g. the speaker of augmented copies of one recording):
    the videos of a group stay on one side, so no copy of a validation recording or speaker is trained on."""
    from data.splits import hash_split

    if ratio <= 0 or len(videos) < 2:
        return list(videos), []
    groups = groups or {}
    key = {v: groups.get(v, v) for v in videos}
    kept, _ = hash_split(list(dict.fromkeys(key.values())), ratio, seed, "valid")
    keep = set(kept)
    return [v for v in videos if key[v] in keep], [v for v in videos if key[v] not in keep]


def corpus_of(ds: dict, vid: str) -> str:
    """The corpus a video came from in a merged dataset (its id's prefix, see data.merge), else ""."""
    names = ds["meta"].get("provenance", {}).get("merged", {})
    head = vid.split("/", 1)[0]
    return head if head in names else ""


def balanced(ds: dict, videos: list[str], cap: int = 20) -> list[str]:
    """Training videos with those of smaller corpora repeated, so that each corpus of a merged dataset weighs
    more evenly in an epoch: a corpus with n utterances, against the largest's N, is repeated round(sqrt(N/n))
    times (at most `cap`). The square root keeps a small corpus from being seen dozens of times per epoch."""
    sizes: dict[str, int] = {}
    for v in videos:
        sizes[corpus_of(ds, v)] = sizes.get(corpus_of(ds, v), 0) + len(ds["speakers"][v])
    largest = max(sizes.values(), default=0)
    factor = {c: min(cap, max(1, round(math.sqrt(largest / n)))) for c, n in sizes.items()}
    return [v for v in videos for _ in range(factor[corpus_of(ds, v)])]


def feature_stats(ds: dict, videos: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-feature mean and std over the utterances of `videos` where the modality is present (absent rows
    are placeholders): modality -> ((d,), (d,)); mean 0 and std 1 for a modality present nowhere."""
    stats = {}
    for k, m in enumerate(MODALITIES):
        x = np.concatenate([ds[f"{m}_feat"][v][presence(ds, v)[:, k]] for v in videos]).astype(np.float64)
        if len(x) == 0:
            d = ds[f"{m}_feat"][videos[0]].shape[1] if videos else 0
            stats[m] = (torch.zeros(d), torch.ones(d))
            continue
        std = x.std(0)
        stats[m] = (torch.tensor(x.mean(0), dtype=torch.float32), torch.tensor(np.where(std < 1e-6, 1.0, std), dtype=torch.float32))
    return stats


def class_weights(dataset: DialogueDataset, task: str, scheme: str = "inverse") -> torch.Tensor | None:
    """Class weights from the training targets, (C,); None for regression (model.tasks): "inverse" class
    frequencies (the paper's weighting), their "sqrt" (milder), or "none" (all 1)."""
    weights = get_task(task).class_weights(torch.cat([item.targets for item in dataset.items]))
    if weights is None or scheme == "inverse":
        return weights
    if scheme == "sqrt":
        return weights.sqrt()
    if scheme == "none":
        return (weights > 0).float()
    raise UserError(f"class weights {scheme!r}: choose inverse, sqrt or none")


def batch_loss(model_out: torch.Tensor, batch: Batch, task: str, weights: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """Mean loss over labelled utterances and their count (the task's loss: weighted NLL, or MSE)."""
    keep = batch.mask & ~torch.isnan(batch.targets)
    n = int(keep.sum())
    if n == 0:
        return model_out.sum() * 0.0, 0
    return get_task(task).loss(model_out[keep], batch.targets[keep], weights), n


def _batches(dataset: DialogueDataset, batch_size: int, shuffle: bool, generator: torch.Generator | None = None):
    order = torch.randperm(len(dataset), generator=generator).tolist() if shuffle else list(range(len(dataset)))
    for i in range(0, len(order), batch_size):
        yield collate([dataset[j] for j in order[i : i + batch_size]])


@torch.no_grad()
def evaluate(model: MultilogueNet, dataset: DialogueDataset, task: str, device: torch.device, weights: torch.Tensor | None = None,
             batch_size: int = 128, text: Callable[[Batch], torch.Tensor] | None = None) -> dict[str, Any]:
    """Loss and metrics on `dataset`; also the per-utterance outputs. Returns {"loss", "metrics", "outputs"}.
    text: recomputes a batch's (B, T, d_text) text features (a fine-tuned encoder, pipeline.training.finetune)."""
    spec = get_task(task)
    model.eval()
    total, count = 0.0, 0
    truth, outputs, sentiment = [], [], []
    for batch in _batches(dataset, batch_size, shuffle=False):
        if text is not None:
            batch.text = text(batch)
        batch = batch.to(device)
        out = model(*batch.inputs())
        loss, n = batch_loss(out, batch, task, weights)
        total, count = total + float(loss) * n, count + n
        keep = batch.mask & ~torch.isnan(batch.targets)
        truth.append(batch.targets[keep].cpu())
        sentiment.append(batch.sentiment[keep].cpu())
        outputs.append(spec.decode(out[keep]).float().cpu())
    truth_np = torch.cat(truth).numpy() if truth else np.zeros(0)
    out_np = torch.cat(outputs).numpy() if outputs else np.zeros(0)
    sent_np = torch.cat(sentiment).numpy() if sentiment else np.zeros(0)
    metrics = spec.metrics(truth_np, out_np, sentiment=sent_np) if count else {}
    return {"loss": total / count if count else float("nan"), "metrics": metrics, "n": count}


def _save_json(path: Path, obj: Any) -> None:
    atomic_write_json(path, obj)  # NaN (e.g. a Pearson r of constant predictions) is written as null


def _plot_curves(history: list[dict], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = get_task(task).primary[0]
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax1.plot(epochs, [h["valid_loss"] for h in history], label="valid")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(epochs, [h["valid"].get(metric, float("nan")) for h in history], color="C1")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(f"valid {metric}")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)


def _read_resume_state(path: Path, tcfg: TrainConfig, dims: dict[str, int], source: Any) -> dict:
    """last.pt of an interrupted run, checked against this command: same task, emotion and feature dims."""
    state = load_state(path, "resume state (last.pt of `cli.py train`)", "train again with --overwrite to start the run afresh")
    try:
        saved, mcfg = state["train_config"], state["model_config"]
        ModelConfig.from_dict(mcfg)
    except Exception as e:  # a dict of other keys, or a config of another version
        raise CheckpointError(f"{path}: not a resume state of this version ({type(e).__name__}: {e}); train again with --overwrite") from e
    if (saved["task"], saved.get("emotion")) != (tcfg.task, tcfg.emotion):
        was = saved["task"] + (f"/{saved['emotion']}" if saved.get("emotion") else "")
        raise CheckpointError(f"{path}: this run trained {was}; resume it with the same --task/--emotion, or use another --out")
    check_dims(mcfg, dims, f"{path}: the run was trained on other features than {source}", "resume with the same --data")
    return state


def prepare(ds: dict, task: str, emotion: str | None, source: Any) -> None:
    """Refuse data this task cannot train on, with a message that names the fix."""
    counts = split_counts(ds)
    if counts["train"][0] == 0:
        raise DatasetError(f"{source}: the train split is empty; list training video ids in 'train' (or re-extract with --test-ratio < 1)")
    if counts["test"][0] == 0:
        raise DatasetError(f"{source}: the test split is empty; list held-out video ids in 'test' (or re-extract with --test-ratio > 0)")
    if get_task(task).per_emotion and emotion not in EMOTIONS:
        raise DatasetError(f"--emotion {emotion}: unknown emotion; choose one of {', '.join(EMOTIONS)}, or all")


def check_settings(tcfg: TrainConfig) -> None:
    """Refuse settings no training can use (what the CLI's option types refuse, for callers of the library)."""
    for value, option, kind in ((tcfg.epochs, "--epochs", COUNT), (tcfg.batch_size, "--batch-size", COUNT), (tcfg.patience, "--patience", COUNT),
                                (tcfg.lr, "--lr", POSITIVE), (tcfg.l2, "--l2", NON_NEGATIVE), (tcfg.valid_ratio, "--valid-ratio", RATIO),
                                (tcfg.modality_dropout, "--modality-dropout", RATIO), (tcfg.finetune_text, "--finetune-text", TUNED_LAYERS),
                                (tcfg.text_lr, "--text-lr", POSITIVE), (tcfg.token_budget, "--token-budget", TOKENS)):
        kind.check(value, option)
    if tcfg.joint_seeds and not tcfg.finetune_text:
        raise UserError("joint_seeds (networks trained together) go with --finetune-text; without it, --seeds trains each run on its own")


def check_trainable(ds: dict, tcfg: TrainConfig, source: Any) -> tuple[list[str], list[str]]:
    """Refuse, before any training, a run this data cannot train: settings, empty splits, an unknown emotion, no
    labelled training utterance for the task. Returns the (train, valid) video ids."""
    check_settings(tcfg)
    prepare(ds, tcfg.task, tcfg.emotion, source)
    train_ids, valid_ids = split_validation(ds["train"], tcfg.valid_ratio, tcfg.seed if tcfg.split_seed is None else tcfg.split_seed, ds["meta"].get("groups"))
    if tcfg.finetune_text:
        from pipeline.training.finetune import minilm_spec

        minilm_spec(ds, source)
    spec = get_task(tcfg.task)
    if not any((~np.isnan(spec.targets(ds["labels"][v], tcfg.emotion))).any() for v in train_ids):
        col = tcfg.emotion or "sentiment"
        raise DatasetError(f"{source}: no training utterance has a '{col}' label; label the data or pick another --task/--emotion")
    return train_ids, valid_ids


def run_training(
    data: dict | str | Path,
    out: str | Path,
    tcfg: TrainConfig,
    model_overrides: dict | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    source: Any = None,
) -> dict:
    """Train one model; return the metrics dict written to out/metrics.json ({"best_epoch", "valid", "test"}).
    source: how messages name the data (default: its path, or "dataset" for a dict).

    Raises UserError subclasses (one line) for data or settings it cannot train on, and TrainingDiverged when the
    loss or the weights stop being finite (the epochs saved before are kept)."""
    out = Path(out)
    source = source if source is not None else data if not isinstance(data, dict) else "dataset"
    ds = data if isinstance(data, dict) else load_dataset(data)
    task, emotion = tcfg.task, tcfg.emotion
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file; --out takes a run folder")
    check_trainable(ds, tcfg, source)
    resume_path = out / RESUME_NAME
    state = None
    if resume:
        if not resume_path.exists():
            raise CheckpointError(f"{resume_path}: nothing to resume; start the run without --resume")
        state = _read_resume_state(resume_path, tcfg, feature_dims(ds), source)
        # the run continues with its own settings; only the epoch budget may grow and the device change
        tcfg = TrainConfig(**{**state["train_config"], "epochs": max(tcfg.epochs, state["train_config"]["epochs"]), "device": tcfg.device})
    device = pick_device(tcfg.device)
    torch.manual_seed(tcfg.seed)
    np.random.seed(tcfg.seed)

    train_ids, valid_ids = split_validation(ds["train"], tcfg.valid_ratio, tcfg.seed if tcfg.split_seed is None else tcfg.split_seed, ds["meta"].get("groups"))
    train_set = DialogueDataset(ds, balanced(ds, train_ids) if tcfg.balance_corpora else train_ids, task, emotion)
    valid_set = DialogueDataset(ds, valid_ids, task, emotion)
    test_set = DialogueDataset(ds, ds["test"], task, emotion)

    dims = feature_dims(ds)
    if state is not None:
        mcfg = ModelConfig.from_dict(state["model_config"])
    else:
        mcfg = ModelConfig.for_task(task, dims["text"], dims["audio"], dims["visual"], **(model_overrides or {}))
    nets = []
    for s in tcfg.joint_seeds or [None]:  # one network, or one per seed trained together (--finetune-text --seeds)
        if s is not None:
            torch.manual_seed(s)  # each network's initial weights come from its own seed
        nets.append(MultilogueNet(mcfg))
        if tcfg.normalize:
            nets[-1].set_normalization(feature_stats(ds, train_ids))
        nets[-1].to(device)
    if tcfg.joint_seeds:
        torch.manual_seed(tcfg.seed)  # the shared stream of batches and dropout
    model = nets[0] if len(nets) == 1 else Ensemble(nets)
    weights = class_weights(train_set, task, tcfg.class_weights)
    weights = None if weights is None else weights.to(device)
    groups: list[dict] = [{"params": list(model.parameters())}]
    tuner = None
    if tcfg.finetune_text:  # MiniLM's top layers train with the network, at their own rate and without weight decay
        from pipeline.training.finetune import DEFAULT_CACHE, TextTuner

        tuner = TextTuner(ds, tcfg.finetune_text, tcfg.text_cache or DEFAULT_CACHE, tcfg.token_budget, source=source, progress=progress)
        groups.append({"params": list(tuner.parameters()), "lr": tcfg.text_lr, "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups, lr=tcfg.lr, weight_decay=tcfg.l2)
    generator = torch.Generator().manual_seed(tcfg.seed)

    history: list[dict] = []
    best = {"score": None, "epoch": 0, "bad": 0}
    start = 1
    if state is not None:
        model.load_state_dict(state["model"])
        if tuner is not None:
            tuner.top.load_state_dict(state["text_top"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, best = state["history"], state["best"]
        start = state["epoch"] + 1
        log.info("resuming %s at epoch %d", out, start)

    out.mkdir(parents=True, exist_ok=True)
    feature_spec = ds["meta"].get("features", {})
    _save_json(out / "config.json", {"train": tcfg.to_dict(), "model": mcfg.to_dict(), "data": str(source), "feature_spec": feature_spec,
                                     "splits": {"train": len(train_ids), "valid": len(valid_ids), "test": len(ds["test"])}})
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tensorboard"))
    metric_name = get_task(task).primary[0]
    n_batches = math.ceil(len(train_set) / tcfg.batch_size)
    try:
        for epoch in range(start, tcfg.epochs + 1):
            if best["bad"] >= tcfg.patience and valid_ids:
                break
            model.train()
            if tuner is not None:
                tuner.top.train()
            total, count = 0.0, 0
            for i, batch in enumerate(_batches(train_set, tcfg.batch_size, True, generator), 1):
                batch.present = drop_modalities(batch.present, tcfg.modality_dropout, generator)
                if tuner is not None:
                    batch.text = tuner(batch)
                batch = batch.to(device)
                optimizer.zero_grad(set_to_none=True)
                losses = [batch_loss(net(*batch.inputs()), batch, task, weights) for net in nets]  # each network its own loss
                loss, n = sum(x for x, _ in losses) / len(nets), losses[0][1]
                if n:
                    _check_finite(float(loss.detach()), "training loss", epoch, out, tcfg, state is not None or epoch > 1)
                    loss.backward()
                    optimizer.step()
                total, count = total + float(loss.detach()) * n, count + n
                if progress:
                    progress(i, n_batches + 1, stage=f"epoch {epoch}/{tcfg.epochs}", loss=total / max(count, 1))
            train_loss = total / max(count, 1)
            if not all(bool(torch.isfinite(p).all()) for p in params(model, tuner)):
                _check_finite(math.inf, "model's weights", epoch, out, tcfg, state is not None or epoch > 1)
            if tuner is not None:
                tuner.top.eval()
            val = evaluate(model, valid_set, task, device, weights, text=tuner) if valid_ids else {"loss": train_loss, "metrics": {}}
            if valid_ids and val["n"]:  # a validation split without a labelled utterance has no loss (NaN), not a diverged one
                _check_finite(val["loss"], "validation loss", epoch, out, tcfg, state is not None or epoch > 1)
            record = {"epoch": epoch, "train_loss": train_loss, "valid_loss": val["loss"], "valid": val["metrics"]}
            history.append(record)
            writer.add_scalar("loss/train", train_loss, epoch)
            if valid_ids:
                writer.add_scalar("loss/valid", val["loss"], epoch)
                for k, v in val["metrics"].items():
                    writer.add_scalar(f"valid/{k}", v, epoch)
            # selection on validation loss by default: smoother than accuracy on a small validation split
            if not valid_ids:
                score = -epoch
            elif tcfg.select == "metric":  # the task's headline metric, as a loss to minimise
                name, higher = get_task(task).primary
                value = val["metrics"].get(name, float("nan"))
                score = float("inf") if value != value else (-value if higher else value)
            else:
                score = val["loss"]
            if best["score"] is None or score < best["score"]:
                best = {"score": score, "epoch": epoch, "bad": 0}
                save_checkpoint(_checkpoint(nets, tuner, task, emotion, feature_spec, tcfg, epoch), out / "checkpoint.pt")
            else:
                best["bad"] += 1
            if progress:
                progress(n_batches + 1, n_batches + 1, loss=train_loss, valid_loss=val["loss"], **{f"valid_{metric_name}": val["metrics"].get(metric_name, float("nan"))})
            save_checkpoint(
                {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                 "torch_rng": torch.get_rng_state(), "history": history, "best": best, "train_config": tcfg.to_dict(), "model_config": mcfg.to_dict(),
                 **({"text_top": tuner.top.state_dict()} if tuner is not None else {})},
                resume_path,
            )
    finally:
        writer.close()

    best_model, best_ckpt = load_model(out / "checkpoint.pt", device)
    if tuner is not None:  # scored as evaluate and predict will see it: through the saved (float16) delta
        from pipeline.training.finetune import adapted_dataset

        scored = adapted_dataset(ds, best_ckpt["text_delta"], tcfg.text_cache or DEFAULT_CACHE, tcfg.token_budget, source)
        valid_set = DialogueDataset(scored, valid_ids, task, emotion)
        test_set = DialogueDataset(scored, scored["test"], task, emotion)
    final_valid = evaluate(best_model, valid_set, task, device, weights) if valid_ids else {"loss": float("nan"), "metrics": {}}
    final_test = evaluate(best_model, test_set, task, device, weights)
    metrics = {
        "task": task,
        "emotion": emotion,
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "valid": {"loss": final_valid["loss"], **final_valid["metrics"]},
        "test": {"loss": final_test["loss"], **final_test["metrics"]},
    }
    if tcfg.joint_seeds:  # as build_ensemble reports an ensemble: its seeds and each member's test figures
        metrics["ensemble"] = list(tcfg.joint_seeds)
        metrics["members"] = {str(s): evaluate(m, test_set, task, device, weights)["metrics"] for s, m in zip(tcfg.joint_seeds, best_model.members)}
    _save_json(out / "metrics.json", metrics)
    _plot_curves(history, task, out / "curves.png")
    return metrics


def _checkpoint(nets: list[MultilogueNet], tuner: Any, task: str, emotion: str | None, feature_spec: dict, tcfg: TrainConfig, epoch: int) -> dict:
    """The checkpoint of the selected epoch: one network, or the jointly trained ones as an ensemble (`members`,
    `seeds`); when fine-tuning, the trained text layers as a delta over the packaged encoder, named in the text spec."""
    spec, extra = feature_spec, {"train_config": tcfg.to_dict(), "epoch": epoch}
    if tuner is not None:
        from pipeline.training.finetune import tuned_spec

        extra["text_delta"] = tuner.delta()
        spec = {**feature_spec, "text": tuned_spec(feature_spec["text"], extra["text_delta"])}
    ckpt = make_checkpoint(nets[0], task, emotion, spec, extra)
    if len(nets) > 1:
        del ckpt["state_dict"]
        ckpt.update(members=[{k: v.detach().cpu() for k, v in n.state_dict().items()} for n in nets], seeds=list(tcfg.joint_seeds))
    return ckpt


def params(model: MultilogueNet, tuner: Any = None) -> list[torch.Tensor]:
    """Every trained parameter: the network's and, when fine-tuning, the text encoder's."""
    return list(model.parameters()) + (list(tuner.parameters()) if tuner is not None else [])


def _check_finite(value: float, what: str, epoch: int, out: Path, tcfg: TrainConfig, kept: bool) -> None:
    """Stop a run whose loss or weights are no longer finite, before anything of this epoch is saved."""
    if math.isfinite(value):
        return
    shown = "are not finite" if what.endswith("weights") else f"is {value}"
    saved = "its last good checkpoint.pt and last.pt are kept" if kept else "nothing was saved"
    raise TrainingDiverged(f"{out}: training diverged in epoch {epoch} (the {what} {shown}); {saved}; lower --lr (it is {tcfg.lr:g}) "
                           "and train again with --overwrite")


def format_metrics(metrics: dict[str, float], title: str = "") -> str:
    """A two-column table of metric names and values."""
    lines = [title] if title else []
    for k, v in metrics.items():
        if isinstance(v, (int, float)):
            lines.append(f"  {k:<18} {v:8.4f}" if abs(v) < 10 else f"  {k:<18} {v:8.2f}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def write_summary(results: dict[str, dict], out: str | Path) -> str:
    """Write summary.json and summary.md for several runs (e.g. the six emotions); return the table."""
    out = Path(out)
    names = sorted({k for r in results.values() for k in r["test"] if k != "loss"})
    rows = ["| run | best epoch | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for run, r in results.items():
        rows.append(f"| {run} | {r['best_epoch']} | " + " | ".join(_cell(r["test"].get(k)) for k in names) + " |")
    table = "\n".join(rows)
    _save_json(out / "summary.json", results)
    atomic_write_bytes(out / "summary.md", ("Test metrics (model selected on validation)\n\n" + table + "\n").encode())
    return table
