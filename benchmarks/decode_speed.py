"""Decoding throughput: ``train.generate``'s cached greedy decoding vs Hugging Face ``generate``.

Both decode the same held-out batches with the same BART-decoder model: a Florenz size, and a
``BartForConditionalGeneration`` sharing its encoder, decoder and tied LM head (the same tensors). Both start
from the same encoder output (image features + prompt through the BART encoder, computed by
``FlorenzModel.encode``; HF is given it as ``encoder_outputs``), decode greedily to EOS or ``max_new`` tokens,
and must agree token for token. Timed: encoder + decoding, best of ``--repeats``.

    python benchmarks/decode_speed.py [--size T-1.3M] [--batch 16] [--batches 4] [--max-new 40]
                                      [--checkpoint RUN_DIR/checkpoints/stepN] [--threads 1]

Without a checkpoint the weights are random (every decode then runs to ``max_new``: pure per-step cost).
Target (issue 14): same outputs, throughput ratio ours / HF >= 0.9.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def build(size: str, checkpoint: str | None):
    from transformers import BartForConditionalGeneration

    from florenz_scaling.model.florenz import bart_hf_config, build_model

    model = build_model(size, seed=0).eval()
    if checkpoint:
        state = torch.load(f"{checkpoint}/mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(state["module"])
    cfg = bart_hf_config(model.size.decoder)
    hf = BartForConditionalGeneration(cfg).eval()
    hf.model.encoder = model.encoder  # unused (encoder_outputs are given) but shared for honesty
    hf.model.decoder = model.decoder.decoder
    hf.model.shared = model.decoder.decoder.embed_tokens
    hf.lm_head.weight = model.decoder.decoder.embed_tokens.weight
    g = hf.generation_config
    g.forced_bos_token_id = g.forced_eos_token_id = None
    g.no_repeat_ngram_size, g.num_beams, g.do_sample, g.min_length = 0, 1, False, 0
    g.early_stopping, g.length_penalty = False, 1.0
    return model, hf


def batches(n: int, batch: int):
    """Real held-out batches of the demo world (caption es, with its images and prompts)."""
    import tempfile

    from florenz_scaling.data import prepare
    from florenz_scaling.spec import DataSpec

    data = prepare(DataSpec(heldout_per_pair=n * batch), tempfile.mkdtemp(prefix="decode-speed-"))
    return list(data.heldout().batches(("caption", "es"), batch)), data.tokenizer


@torch.no_grad()
def ours(model, batch, max_new: int, tok) -> list[list[int]]:
    from florenz_scaling.train.generate import greedy_search

    return greedy_search(model, batch, [], max_new=max_new, bos=tok.bos_id, eos=tok.eos_id)


@torch.no_grad()
def theirs(model, hf, batch, max_new: int, tok) -> list[list[int]]:
    from transformers.modeling_outputs import BaseModelOutput

    enc, mask = model.encode(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    start = torch.full((enc.shape[0], 1), tok.bos_id, dtype=torch.long)
    out = hf.generate(
        encoder_outputs=BaseModelOutput(last_hidden_state=enc),
        attention_mask=mask,
        decoder_input_ids=start,
        max_new_tokens=max_new,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
        do_sample=False,
        num_beams=1,
    )
    rows = []
    for row in out[:, 1:].tolist():
        rows.append(row[: row.index(tok.eos_id)] if tok.eos_id in row else row)
    return rows


def timed(fn, repeats: int) -> tuple[float, list]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="T-1.3M")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--max-new", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, hf = build(args.size, args.checkpoint)
    data, tok = batches(args.batches, args.batch)
    ours(model, data[0], 4, tok), theirs(model, hf, data[0], 4, tok)  # warm-up
    t_ours, a = timed(lambda: [ours(model, b, args.max_new, tok) for b in data], args.repeats)
    t_hf, b = timed(lambda: [theirs(model, hf, b, args.max_new, tok) for b in data], args.repeats)
    same = a == b
    tokens = sum(len(r) + 1 for rows in a for r in rows)
    print(
        f"{args.size}, {args.batches} batch(es) of {args.batch}, max {args.max_new} new tokens, "
        f"{args.threads} thread(s), {'trained' if args.checkpoint else 'random'} weights"
    )
    print(f"  ours (train.generate, cached greedy): {t_ours:.3f} s  {tokens / t_ours:8.0f} tokens/s")
    print(f"  Hugging Face generate (greedy):       {t_hf:.3f} s  {tokens / t_hf:8.0f} tokens/s")
    print(f"  same outputs: {same}; throughput ratio ours/HF = {t_hf / t_ours:.2f} (target >= 0.9)")
    return 0 if same and t_hf / t_ours >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
