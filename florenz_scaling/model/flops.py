"""Forward MACs of one dummy sample, measured with torch's FLOP counter on meta tensors (no memory, no time).

The paper measured F with fvcore; torch's counter counts the same matmuls and convolutions (plus attention
products) and reports FLOPs = 2 × MACs. ``python -m florenz_scaling.model.flops`` refreshes
``spec/fwd_gmacs.json``, the only place planning reads F from.
"""

from __future__ import annotations

import json
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode

from florenz_scaling.spec.sizes import FLOPS_FILE, SIZES, SizeConfig


def measure_fwd_gmacs(size: SizeConfig) -> float:
    """GMACs of one forward pass of ``size`` on its dummy sample (image, prompt and decoder tokens)."""
    from florenz_scaling.model.florenz import build_model, dummy_batch

    model = build_model(size, device="meta")
    batch = dummy_batch(size, 1, device="meta")
    counter = FlopCounterMode(display=False)
    # transformers skips all-ones masks by reading their values, which meta tensors do not have.
    no_skip = {"return_value": False}
    with (
        torch.no_grad(),
        counter,
        mock.patch("transformers.masking_utils._ignore_causal_mask_sdpa", **no_skip),
        mock.patch("transformers.masking_utils._ignore_bidirectional_mask_sdpa", **no_skip),
    ):
        model(**batch, attention_mask=None)
    return counter.get_total_flops() / 2 / 1e9


def main() -> None:
    table = {name: measure_fwd_gmacs(size) for name, size in SIZES.items()}
    note = (
        "Forward GMACs of one dummy sample per size (paper sizes: 224² image, 128 prompt and 128 decoder "
        "tokens; tiny sizes: 64² image, 32 + 32 tokens), torch.utils.flop_counter on meta tensors."
    )
    FLOPS_FILE.write_text(json.dumps({"note": note, "fwd_gmacs": table}, indent=2) + "\n")
    for name, g in table.items():
        print(f"{name:10s} {g:14.6f} GMACs")


if __name__ == "__main__":
    main()
