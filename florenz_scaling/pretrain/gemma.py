"""The tiny Gemma-2: a decoder-only LM pretrained on the world's descriptions in every language (no images),
so that, like Gemma-2, the decoder is multilingual before any Florenz training.

Each training sample is one training-split scene described in a language drawn uniformly from
``data.languages`` (plain or framed style, as the scene says): ``<s> text </s>``, next-token loss on every
real token. Saved with ``Gemma2ForCausalLM.save_pretrained``; the held-out numbers are the LM loss per
language on the components' held-out scenes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from florenz_scaling.data.language import describe
from florenz_scaling.data.tokenizer import Tokenizer
from florenz_scaling.data.world import Scene
from florenz_scaling.model.florenz import gemma_hf_config
from florenz_scaling.pretrain.loop import heldout_scenes, scenes, train_loop
from florenz_scaling.spec.sizes import GemmaConfigLite


def text_batch(texts: list[str], tokenizer: Tokenizer, max_len: int) -> dict[str, torch.Tensor]:
    """``<s> text </s>`` right-padded to the longest; labels -100 at padding (HF shifts them itself)."""
    ids = [[tokenizer.bos_id, *tokenizer.encode(t), tokenizer.eos_id][:max_len] for t in texts]
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), tokenizer.pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    labels = np.where(mask == 1, input_ids, -100)
    return {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.from_numpy(labels),
    }


@torch.no_grad()
def lm_loss_per_language(
    lm: Any, held: list[Scene], tokenizer: Tokenizer, langs: list[str], max_len: int
) -> dict[str, float]:
    """Held-out next-token loss (nats per token) per language."""
    lm.eval()
    out = {}
    for lang in langs:
        total, tokens = 0.0, 0
        for i in range(0, len(held), 32):
            texts = ["".join(describe(s.objects, lang, s.framed)) for s in held[i : i + 32]]
            batch = text_batch(texts, tokenizer, max_len)
            logits = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            labels = batch["labels"][:, 1:]
            ce = torch.nn.functional.cross_entropy(
                logits[:, :-1].transpose(1, 2).float(), labels, ignore_index=-100, reduction="sum"
            )
            total += float(ce)
            tokens += int((labels != -100).sum())
        out[lang] = total / max(tokens, 1)
    lm.train()
    return out


def train_gemma(
    decoder: GemmaConfigLite, spec: dict[str, Any], tokenizer: Tokenizer, out: Path, heldout: int
) -> dict[str, Any]:
    """Pretrain the LM; saves it into ``out``; returns held-out numbers and timings."""
    from transformers import Gemma2ForCausalLM

    r, text = spec["recipe"], spec["text"]
    langs, max_len = list(text["languages"]), text["target_len"]
    torch.manual_seed(r["seed"])
    lm = Gemma2ForCausalLM(gemma_hf_config(decoder)).train()
    stream = scenes(r["seed"], "gemma", "train")
    rng = np.random.default_rng([r["seed"], 13, 0])

    def loss_fn(_step: int) -> torch.Tensor:
        picks = rng.integers(0, len(langs), size=r["batch"])
        texts = [
            "".join(describe(next(stream).objects, langs[int(k)], bool(rng.random() < 0.5))) for k in picks
        ]
        return lm(**text_batch(texts, tokenizer, max_len)).loss

    params = list(dict(lm.named_parameters()).values())
    timing = train_loop(
        params, loss_fn, r["steps"], r["lr"], r["warmup"], out / "train_log.jsonl", "gemma LM"
    )
    t0 = time.perf_counter()
    per_lang = lm_loss_per_language(lm, heldout_scenes(r["seed"], heldout), tokenizer, langs, max_len)
    timing["eval_s"] = round(time.perf_counter() - t0, 2)
    lm.save_pretrained(out)
    return {"heldout": {"lm_loss": per_lang, "heldout_scenes": heldout}, "timings": {"lm": timing}}
