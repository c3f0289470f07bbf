"""Decoding held-out samples: greedy and beam search with a key/value cache, with or without a decoder prefix.

    batch ─▶ encoder (once per batch) ─▶ decoder seeded with [bos] + prefix ─▶ one new token per step
                                           (cached: only the new token runs through the decoder)

- The decoder prefix ("Das Bild zeigt", ``data.language.DECODER_PREFIXES``) is *given*: it is fed to the
  decoder but never generated or scored; outputs are the continuation only.
- Generation is capped at the target length of training: prefix + continuation + EOS fit in
  ``data.target_len`` decoder positions, as in ``data.collate``.
- Beam search keeps ``width`` hypotheses; a hypothesis that ends (EOS) keeps its slot, so the live beam
  shrinks as hypotheses finish and search stops when none is left. The best finished hypothesis by
  log-probability / length (Hugging Face's default length penalty 1.0) wins. Width 1 is greedy decoding
  exactly. (Hugging Face keeps ``width`` live beams after some finish; outputs can differ at width > 1.)
- ``use_cache=False`` reruns the whole prefix every step: the reference the cache is tested against.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from florenz_scaling.data import HeldOut, Sample, collate, heldout_scene
from florenz_scaling.data.language import DECODER_PREFIXES, Obj, describe
from florenz_scaling.results.records import MetricRecord, Record, sample_record
from florenz_scaling.results.records import (
    append_jsonl as append_jsonl,  # re-exported: the one durable append
)
from florenz_scaling.spec import Pair
from florenz_scaling.train.evaluate import eval_pairs
from florenz_scaling.train.intervals import sample_cider, sample_counts, score_intervals
from florenz_scaling.train.score import objects_from_key, score_set


@dataclass(frozen=True)
class Decoding:
    """One way of decoding: beam width (1 = greedy) and whether captions are seeded with the prefix."""

    beam: int = 1
    prefix: bool = False

    @property
    def name(self) -> str:
        """``greedy``, ``beam4``, ``greedy+prefix``, ...: the ``decoding`` column of metrics.jsonl."""
        return ("greedy" if self.beam == 1 else f"beam{self.beam}") + ("+prefix" if self.prefix else "")


def decodings(beam: int, greedy: bool, prefix: bool, no_prefix: bool) -> tuple[Decoding, ...]:
    """The decodings a generation spec asks for, greedy before beam, without prefix before with."""
    widths = ([1] if greedy or beam == 1 else []) + ([beam] if beam > 1 else [])
    seeds = ([False] if no_prefix else []) + ([True] if prefix else [])
    return tuple(Decoding(w, p) for p in seeds for w in widths)


def prefix_text(task: str, lang: str, decoding: Decoding) -> str:
    """The decoder prefix given to a sample of (task, lang): the language's prefix for captions decoded
    with ``prefix``, else none (translation targets are never prefixed)."""
    return DECODER_PREFIXES.get(lang, "") if decoding.prefix and task == "caption" else ""


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model)  # a DeepSpeed engine wraps the FlorenzModel


class _Decoder:
    """The decoder of one encoded batch, stepped one token at a time (cached) or rerun whole (uncached)."""

    def __init__(self, model: Any, enc: torch.Tensor, mask: torch.Tensor | None, use_cache: bool) -> None:
        self.decoder, self.enc, self.mask = model.decoder, enc, mask
        self.cache = model.decoder.new_cache() if use_cache else None

    def logits(self, seq: torch.Tensor, new: int) -> torch.Tensor:
        """Next-token logits (rows, V) after ``seq`` (rows, t), whose last ``new`` tokens are uncached."""
        if self.cache is None:
            return self.decoder(seq, self.enc, self.mask)[:, -1]
        return self.decoder(seq[:, -new:], self.enc, self.mask, self.cache)[:, -1]

    def reorder(self, index: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.reorder_cache(index)


def _encoded(
    model: Any, batch: dict[str, Any], prefix: Sequence[int], bos: int, use_cache: bool
) -> tuple[_Decoder, torch.Tensor]:
    """The batch's encoder output (computed once) in a stepping decoder, and the seed ``[bos] + prefix``."""
    model = _unwrap(model)
    device = next(model.parameters()).device
    enc, mask = model.encode(
        batch["pixel_values"].to(device), batch["input_ids"].to(device), batch["attention_mask"].to(device)
    )
    start = torch.tensor([[bos, *prefix]], dtype=torch.long, device=device).expand(enc.shape[0], -1)
    return _Decoder(model, enc, mask, use_cache), start


@torch.no_grad()
def generate(
    model: Any,
    batch: dict[str, Any],
    prefix: Sequence[int],
    *,
    max_new: int,
    bos: int,
    eos: int,
    beam: int = 1,
    use_cache: bool = True,
) -> list[list[int]]:
    """Continuations (token ids, EOS and prefix excluded) of every sample of ``batch`` after
    ``[bos] + prefix``, at most ``max_new`` tokens each (EOS counted): greedy for beam 1, else beam search."""
    if beam == 1:
        return greedy_search(model, batch, prefix, max_new=max_new, bos=bos, eos=eos, use_cache=use_cache)
    return beam_search(
        model, batch, prefix, max_new=max_new, bos=bos, eos=eos, width=beam, use_cache=use_cache
    )


@torch.no_grad()
def greedy_search(
    model: Any,
    batch: dict[str, Any],
    prefix: Sequence[int],
    *,
    max_new: int,
    bos: int,
    eos: int,
    use_cache: bool = True,
) -> list[list[int]]:
    """``generate`` with greedy decoding."""
    dec, start = _encoded(model, batch, prefix, bos, use_cache)
    return _greedy(dec, start, max_new, eos) if max_new > 0 else [[] for _ in range(len(start))]


@torch.no_grad()
def beam_search(
    model: Any,
    batch: dict[str, Any],
    prefix: Sequence[int],
    *,
    max_new: int,
    bos: int,
    eos: int,
    width: int,
    use_cache: bool = True,
) -> list[list[int]]:
    """``generate`` with beam search of ``width`` (width 1 gives exactly the greedy outputs)."""
    dec, start = _encoded(model, batch, prefix, bos, use_cache)
    n = len(start)
    if max_new <= 0:
        return [[] for _ in range(n)]
    dec.enc = dec.enc.repeat_interleave(width, dim=0)
    dec.mask = dec.mask.repeat_interleave(width, dim=0) if dec.mask is not None else None
    return _beam(dec, start.repeat_interleave(width, dim=0), n, width, max_new, eos)


def _greedy(dec: _Decoder, seq: torch.Tensor, max_new: int, eos: int) -> list[list[int]]:
    n, p = seq.shape
    done = torch.zeros(n, dtype=torch.bool, device=seq.device)
    new = p
    for _ in range(max_new):
        tok = dec.logits(seq, new).argmax(dim=-1)
        tok = tok.masked_fill(done, eos)  # finished rows keep emitting EOS (dropped below)
        seq, new = torch.cat([seq, tok[:, None]], dim=1), 1
        done |= tok == eos
        if bool(done.all()):
            break
    return [_until_eos(row[p:].tolist(), eos) for row in seq]


def _until_eos(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos)] if eos in ids else ids


def _beam(dec: _Decoder, seq: torch.Tensor, n: int, k: int, max_new: int, eos: int) -> list[list[int]]:
    """Beam search over ``n`` samples × ``k`` rows (row ``i*k + j`` is beam j of sample i)."""
    p = seq.shape[1]
    scores = torch.full((n, k), float("-inf"), device=seq.device)
    scores[:, 0] = 0.0  # all k rows start identical: only one may expand
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    new = p
    for step in range(max_new):
        logp = torch.log_softmax(dec.logits(seq, new).float(), dim=-1)
        vocab = logp.shape[-1]
        cand = (scores[:, :, None] + logp.view(n, k, vocab)).view(n, k * vocab)
        top, idx = cand.topk(k, dim=1)
        parent, tok = idx // vocab, idx % vocab
        slots = torch.tensor([k - len(f) for f in finished], device=seq.device)
        live = torch.isfinite(top) & (torch.arange(k, device=seq.device)[None, :] < slots[:, None])
        ends = live & (tok == eos)
        for i, r in ends.nonzero().tolist():
            hyp = seq[i * k + parent[i, r], p:].tolist()
            finished[i].append((top[i, r].item() / (len(hyp) + 1), hyp))
        keep = live & ~ends
        scores = torch.where(keep, top, torch.full_like(top, float("-inf")))
        rows = (torch.arange(n, device=seq.device)[:, None] * k + parent).view(-1)
        seq = torch.cat([seq.index_select(0, rows), tok.view(-1, 1)], dim=1)
        dec.reorder(rows)
        new = 1
        if not bool(keep.any()):
            break
        if step == max_new - 1:  # out of length: live hypotheses end here, without EOS
            for i, r in keep.nonzero().tolist():
                hyp = seq[i * k + r, p:].tolist()
                finished[i].append((top[i, r].item() / len(hyp), hyp))
    return [max(f, key=lambda h: h[0])[1] if f else [] for f in finished]


def max_new_tokens(target_len: int, prefix: Sequence[int]) -> int:
    """New tokens allowed after a prefix: prefix + continuation + EOS fill at most ``target_len`` slots."""
    return target_len - len(prefix)


# --- held-out sets: decode, score, record ---------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """One decoded held-out sample: what the decoder was given, what it said, and what it should have said."""

    index: int  # position in the pair's held-out set
    sample: Sample
    prefix: str  # given to the decoder, not generated, not scored
    reference: str  # what the output is scored against (the target after ``prefix``)
    output: str
    objects: tuple[Obj, ...] | None  # the scene's objects (synthetic world), for attribute accuracy


def reference_after(sample: Sample, prefix: str, seed: int | None, index: int) -> str:
    """The reference for an output that follows ``prefix``: the whole target without a prefix; with one, the
    target's rest after it, or for a scene described without it (plain style), the same scene's prefixed
    description (the held-out scene is drawn again from the data ``seed``)."""
    target = sample.target
    if not prefix:
        return target.strip()
    if target.startswith(prefix):
        return target[len(prefix) :].strip()
    if seed is not None:
        scene = heldout_scene(seed, index)
        if scene.key == sample.key:
            return describe(scene.objects, sample.lang, True)[1].strip()
    return target.strip()  # e.g. a WebDataset caption: no prefixed reference exists


def decode_pair(
    model: Any,
    heldout: HeldOut,
    pair: Pair,
    decoding: Decoding,
    *,
    max_samples: int,
    batch_size: int,
    use_cache: bool = True,
) -> list[Decoded]:
    """Decode the first ``max_samples`` held-out samples of ``pair`` one way."""
    tok, spec = heldout.tokenizer, heldout.spec
    samples = heldout.samples(pair)[:max_samples]
    prefix = prefix_text(pair[0], pair[1], decoding)
    prefix_ids = tok.encode(prefix) if prefix else []
    seed = spec.seed if spec.kind == "synthetic" else None
    out: list[Decoded] = []
    for lo in range(0, len(samples), batch_size):
        chunk = samples[lo : lo + batch_size]
        batch = collate(chunk, tok, spec.prompt_len, spec.target_len, heldout.prompt_tokenizer)
        ids = generate(
            model,
            batch,
            prefix_ids,
            max_new=max_new_tokens(spec.target_len, prefix_ids),
            bos=tok.bos_id,
            eos=tok.eos_id,
            beam=decoding.beam,
            use_cache=use_cache,
        )
        for i, (s, gen) in enumerate(zip(chunk, ids, strict=True)):
            objects = objects_from_key(s.key) if seed is not None else None
            out.append(
                Decoded(
                    lo + i,
                    s,
                    prefix,
                    reference_after(s, prefix, seed, lo + i),
                    tok.decode(gen).strip(),
                    objects,
                )
            )
    return out


def generation_records(
    model: Any,
    heldout: HeldOut,
    decode: tuple[Decoding, ...],
    *,
    run_id: str,
    step: int,
    seen_samples: int,
    max_samples: int,
    batch_size: int,
    examples: int = 0,
    samples: list[Record] | None = None,
    primary_samples: int = 0,
) -> tuple[list[MetricRecord], list[dict[str, Any]]]:
    """Every pair × decoding, scored: (metric records, the first ``examples`` decoded samples per pair and
    decoding). Translation pairs are decoded without prefix only. ``max_samples`` are decoded per pair and
    decoding, ``primary_samples`` (when > 0) per caption pair with beam search and prefix, the paper's
    primary protocol. The model's training mode is restored.

    Each metric record carries its bootstrap interval over the decoded samples (``train.intervals``); when
    ``samples`` is a list, one ``sample`` record per decoded sample is appended to it (its own scores)."""
    was_training = model.training
    model.eval()
    metrics: list[MetricRecord] = []
    shown: list[dict[str, Any]] = []
    try:
        for pair, groups in eval_pairs(heldout):
            try:
                heldout.samples(pair)
            except KeyError:  # no held-out set for this training pair (e.g. WebDataset shards)
                continue
            for d in decode:
                if d.prefix and pair[0] != "caption":
                    continue
                primary = pair[0] == "caption" and d.prefix and d.beam > 1 and primary_samples > 0
                n = primary_samples if primary else max_samples
                decoded = decode_pair(model, heldout, pair, d, max_samples=n, batch_size=batch_size)
                if not decoded:
                    continue
                hyps, refs = [x.output for x in decoded], [x.reference for x in decoded]
                objects = [x.objects for x in decoded]
                scores = score_set(hyps, refs, pair[1], objects)
                ci = score_intervals(hyps, refs, pair[1], objects)
                metrics += [
                    MetricRecord(run_id, step, seen_samples, pair[0], pair[1], g, m, d.name, v, n, *ci[m])
                    for g in groups
                    for m, (v, n) in scores.items()
                ]
                if samples is not None:
                    samples += _sample_records(decoded, pair, d, run_id, step)
                shown += [example_record(x, d, run_id, step) for x in decoded[:examples]]
    finally:
        model.train(was_training)
    return metrics, shown


def _sample_records(decoded: list[Decoded], pair: Pair, d: Decoding, run_id: str, step: int) -> list[Record]:
    """One ``sample`` record per decoded sample: its CIDEr under the set's IDF, exact match, and (synthetic
    world) its object count, exactly-said objects and per-attribute counts."""
    hyps, refs = [x.output for x in decoded], [x.reference for x in decoded]
    per = sample_counts(hyps, refs, pair[1], [x.objects for x in decoded])
    per["cider"] = sample_cider(hyps, refs, pair[1])
    return [
        sample_record(run_id, step, pair, d.name, x.index, {k: v[i] for k, v in per.items()})
        for i, x in enumerate(decoded)
    ]


def example_record(x: Decoded, decoding: Decoding, run_id: str, step: int) -> dict[str, Any]:
    """One line of examples.jsonl: prompt, given prefix, reference, output and the image as a PNG (base64)."""
    return {
        "run_id": run_id,
        "step": step,
        "task": x.sample.task,
        "lang": x.sample.lang,
        "index": x.index,
        "decoding": decoding.name,
        "prompt": x.sample.prompt,
        "prefix": x.prefix,
        "reference": x.reference,
        "output": x.output,
        "image_png": png_base64(x.sample.image),
    }


def png_base64(image: np.ndarray) -> str:
    """A uint8 H×W×3 image as base64 PNG text (the held-out images are small: 64² is about 1 kB)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


__all__ = [
    "Decoded",
    "Decoding",
    "append_jsonl",
    "beam_search",
    "decode_pair",
    "decodings",
    "example_record",
    "generate",
    "generation_records",
    "greedy_search",
    "max_new_tokens",
    "png_base64",
    "prefix_text",
    "reference_after",
]
