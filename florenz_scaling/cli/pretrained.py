"""``florenz-scaling pretrained check SWEEP.yaml [-o k=v]``: per size and checkpoint, the layout detected, the
tensors that will load, those ignored and why, the modules that start at init and the vocabulary switch —
the same check ``launch`` makes before submitting, without reading any weight."""

from __future__ import annotations

import argparse

from florenz_scaling.cli.plan import add_spec_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``pretrained``."""
    p = sub.add_parser(
        "pretrained", help="check a sweep's local checkpoints and tokenizers against its sizes"
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    c = verbs.add_parser("check", help="what each size loads from its checkpoints, and what starts at init")
    add_spec_args(c)
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the coverage of every size; a checkpoint that cannot start its size is an invalid spec (2)."""
    from florenz_scaling.launch.dryrun.checkpoints import check_checkpoints, vocabulary_switches
    from florenz_scaling.plan import make_plan
    from florenz_scaling.spec import load_sweep

    spec = load_sweep(args.sweep, args.override)
    blocks = check_checkpoints(spec, make_plan(spec))
    data = spec.data
    print(
        f"tokenizers: prompts {data.encoder_tokenizer or data.tokenizer or 'trained (English)'}, "
        f"targets {data.tokenizer or 'trained (every language)'}; vocabulary switch of BART decoders: "
        f"{'yes' if vocabulary_switches(spec) else 'no'}"
    )
    print("\n".join(blocks))
    if spec.components is not None:
        print(
            "note: sizes without `pretrained:` start from the sweep's tiny components, checked when "
            "`launch` has built them"
        )
    return 0
