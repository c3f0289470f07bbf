"""Held-out loss per (task, language) pair: the quantity every scaling law here is fitted to.

The paper's held-out loss of a sample is its masked token-mean cross-entropy (padding and decoder-prefix
slots unscored); a pair's loss is the mean over its samples (sample-weighted, so long and short targets count
alike), and a group's loss (SC, UC, ST) is the sample-weighted mean of its pairs' losses.

The conditioning probe (``shuffle=``): the same loss with each sample's image (``"image"``), prompt
(``"prompt"``) or both (``"both"``, the older probe) taken from the next sample of its batch, written as
records of kind ``shuffled_image`` / ``shuffled_prompt`` / ``shuffled``. Its gap to the true loss says
whether captioning uses the image and translation the source sentence.

Pairs evaluated: every pair of every group, plus every training pair (a training pair that no group lists gets
group ""). A pair listed by several groups yields one record per group, so a group's records are all of its
pairs. Under DeepSpeed every rank must call ``evaluate`` (ZeRO-3 gathers parameters with collectives during
the forward pass); each rank scores the whole set, so all ranks return the same records.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from florenz_scaling.data import HeldOut
from florenz_scaling.model.florenz import per_sample_loss
from florenz_scaling.results.records import LossRecord
from florenz_scaling.spec import Pair

log = logging.getLogger("florenz_scaling.train.evaluate")

MODEL_INPUTS = ("pixel_values", "input_ids", "attention_mask", "decoder_input_ids")


def eval_pairs(heldout: HeldOut) -> list[tuple[Pair, tuple[str, ...]]]:
    """Every pair to score with the groups it is reported under: group pairs in group order, then the
    training pairs no group lists (under group "")."""
    out = [(p, heldout.groups_of(p)) for p in heldout.pairs]
    listed = set(heldout.pairs)
    out += [((t, lang), ("",)) for t, lang in heldout.spec.pairs() if (t, lang) not in listed]
    return out


def model_inputs(batch: dict[str, Any], device: torch.device | str) -> dict[str, torch.Tensor]:
    """The tensors the model's forward takes, on ``device`` (labels and the task/lang lists stay behind)."""
    return {k: batch[k].to(device, non_blocking=True) for k in MODEL_INPUTS}


# What each probe takes from another sample: the image, the prompt (with its mask), or both.
SHUFFLED = {
    "image": ("pixel_values",),
    "prompt": ("input_ids", "attention_mask"),
    "both": ("pixel_values", "input_ids", "attention_mask"),
}
SHUFFLE_KINDS = {"image": "shuffled_image", "prompt": "shuffled_prompt", "both": "shuffled"}
CONDITIONING = SHUFFLED["both"]


@torch.no_grad()
def pair_loss(
    model: Callable[..., torch.Tensor],
    batches: Iterable[dict[str, Any]],
    device: torch.device | str,
    shuffled: bool | str = False,
) -> tuple[float, int, int, float]:
    """(mean per-sample loss, samples, scored tokens, standard deviation of the per-sample losses) of one
    pair's held-out batches (the deviation gives intervals on losses and on the gaps between them).

    ``shuffled`` ("image", "prompt", "both"; True = "both"): each target is scored given that input of the
    next sample in its batch (a batch of one has no other sample and is left out).
    """
    keys = SHUFFLED[_shuffle_name(shuffled)] if shuffled else ()
    total, squares, samples, tokens = 0.0, 0.0, 0, 0
    for batch in batches:
        inputs = model_inputs(batch, device)
        if keys:
            if len(batch["labels"]) < 2:
                continue
            inputs.update({k: inputs[k].roll(1, dims=0) for k in keys})
        logits = model(**inputs)
        loss, ntok = per_sample_loss(logits, batch["labels"].to(logits.device))
        total += float(loss.double().sum())
        squares += float(loss.double().square().sum())
        samples += int(loss.numel())
        tokens += int(ntok.sum())
    mean = total / max(samples, 1)
    var = (squares - samples * mean * mean) / (samples - 1) if samples > 1 else 0.0
    return mean, samples, tokens, math.sqrt(max(var, 0.0))


def evaluate(
    model: torch.nn.Module | Any,
    heldout: HeldOut,
    run_id: str,
    step: int,
    seen_samples: int,
    *,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    shuffled: bool | str = False,
) -> list[LossRecord]:
    """Held-out loss of every pair (see module doc) as ``kind="eval"`` records of ``run_id`` at ``step``;
    with ``shuffled="image"`` / ``"prompt"`` / ``"both"`` (True), records of kind ``shuffled_image`` /
    ``shuffled_prompt`` / ``shuffled``: the loss given other samples' images, prompts, or both.

    ``model`` is a ``FlorenzModel`` or the DeepSpeed engine wrapping one (anything whose call returns logits
    and that has ``train``/``eval``); its training mode is restored afterwards.
    """
    if device is None:
        device = getattr(model, "device", None) or next(model.parameters()).device
    kind = SHUFFLE_KINDS[_shuffle_name(shuffled)] if shuffled else "eval"
    was_training = model.training
    model.eval()
    records = []
    try:
        for pair, groups in eval_pairs(heldout):
            try:
                batches = heldout.batches(pair, batch_size)
                loss, samples, tokens, sd = pair_loss(model, batches, device, shuffled)
            except KeyError:  # e.g. a WebDataset held-out shard only holds the pairs of data.groups
                log.warning("no held-out set for training pair %s; it is not evaluated", pair)
                continue
            if samples == 0:
                continue
            records += [
                LossRecord(
                    run_id=run_id,
                    step=step,
                    seen_samples=seen_samples,
                    kind=kind,  # type: ignore[arg-type]
                    task=pair[0],
                    lang=pair[1],
                    group=g,
                    loss=loss,
                    samples=samples,
                    tokens=tokens,
                    loss_sd=sd,
                )
                for g in groups
            ]
    finally:
        model.train(was_training)
    return records


def _shuffle_name(shuffled: bool | str) -> str:
    name = "both" if shuffled is True else str(shuffled)
    if name not in SHUFFLED:
        raise ValueError(f"shuffled must be one of {', '.join(SHUFFLED)} or True, got {shuffled!r}")
    return name


def conditioning_probes(
    model: torch.nn.Module | Any,
    heldout: HeldOut,
    run_id: str,
    step: int,
    seen_samples: int,
    *,
    batch_size: int = 32,
    device: torch.device | str | None = None,
) -> list[LossRecord]:
    """The image-shuffled and the prompt-shuffled records of every pair (a run's final-step probe)."""
    return [
        r
        for what in ("image", "prompt")
        for r in evaluate(
            model, heldout, run_id, step, seen_samples, batch_size=batch_size, device=device, shuffled=what
        )
    ]


def group_means(records: Iterable[LossRecord], kind: str = "eval") -> dict[str, float]:
    """Per group: the sample-weighted mean of its pairs' losses (records of group "" are left out)."""
    sums: dict[str, list[float]] = {}
    for r in records:
        if r.kind == kind and r.group:
            acc = sums.setdefault(r.group, [0.0, 0.0])
            acc[0] += r.loss * r.samples
            acc[1] += r.samples
    return {g: s / n for g, (s, n) in sums.items() if n}


def evaluate_groups(
    model: torch.nn.Module | Any,
    heldout: HeldOut,
    *,
    batch_size: int = 32,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Convenience: group name -> held-out loss of ``model`` now (e.g. in a notebook)."""
    return group_means(evaluate(model, heldout, "", 0, 0, batch_size=batch_size, device=device))
