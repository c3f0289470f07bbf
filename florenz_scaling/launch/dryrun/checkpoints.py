"""Checkpoints and tokenizers against the sizes, before anything is submitted (``launch``, ``--dry-run``,
``run`` and ``pretrained check``): every size's checkpoints are planned (layout, config, keys, shapes; no
weights read), and each tokenizer's vocabulary must fit the tables that read it. A mismatch is a
``SpecError`` naming the field (``pretrained.SIZE.florence``, ``data.encoder_tokenizer``, ...)."""

from __future__ import annotations

from pathlib import Path

from florenz_scaling.plan import PlannedRun
from florenz_scaling.spec import SpecError, SweepSpec


def vocabulary_switches(spec: SweepSpec) -> bool:
    """Whether the decoders' (target) vocabulary differs from the Florence-2 checkpoints' (the encoder's):
    then a BART decoder's rows are switched to the target tokenizer's by the mean of their pieces."""
    data = spec.data
    if data.encoder_tokenizer is None:
        return data.tokenizer is None  # trained: an English encoder tokenizer beside the multilingual one
    return Path(data.encoder_tokenizer).resolve() != Path(data.tokenizer or "").resolve()


def _absent(path: str | None) -> bool:
    return path is not None and not Path(path).is_dir()


def check_tokenizers(spec: SweepSpec, sizes: list[str], absent_ok: bool = False) -> list[str]:
    """Each given tokenizer exists and its vocabulary fits the embedding tables that read it; with
    ``absent_ok`` (a dry run away from the data) a missing directory is reported instead of refused."""
    from florenz_scaling.spec.sizes import get_size

    data = spec.data
    if data.tokenizer is None and data.encoder_tokenizer is None:
        return []  # trained tokenizers: data.vocab_size is checked with the spec
    from florenz_scaling.data.tokenizer import vocab_size_of  # loads torch: only when directories are given

    given = {"data.tokenizer": data.tokenizer, "data.encoder_tokenizer": data.encoder_tokenizer}
    notes = []
    for field, path in given.items():
        if _absent(path):
            if not absent_ok:
                raise SpecError(field, f"{path!r} is not a directory", "give a local tokenizer directory")
            notes.append(f"{field}: {path} is not on this machine, not checked")
    target = vocab_size_of(data.tokenizer) if data.tokenizer and not _absent(data.tokenizer) else None
    encoder_path = data.encoder_tokenizer or data.tokenizer
    encoder = vocab_size_of(encoder_path) if encoder_path and not _absent(encoder_path) else None
    for name in sizes:
        size = get_size(name)
        if target is not None and target > size.decoder.vocab:
            raise SpecError(
                "data.tokenizer",
                f"its vocabulary has {target} tokens but size {name}'s decoder holds {size.decoder.vocab}",
                "give the decoders' tokenizer (Gemma-2's for the paper's sizes)",
            )
        if encoder is not None and encoder > size.encoder.vocab:
            field = "data.encoder_tokenizer"
            raise SpecError(
                field,
                f"the prompt tokenizer ({encoder_path}) has {encoder} tokens but size {name}'s encoder "
                f"holds {size.encoder.vocab}",
                "set data.encoder_tokenizer to the Florence-2 (BART) tokenizer directory",
            )
    return notes


def check_checkpoints(spec: SweepSpec, plan: list[PlannedRun], absent_ok: bool = False) -> list[str]:
    """Plan every size's checkpoints (``SpecError`` on the first that cannot start its size); returns
    what ``pretrained check`` prints, one block per size. ``absent_ok``: directories not on this machine
    are reported as unchecked (a dry run on a laptop), not refused."""
    from florenz_scaling.spec.sizes import get_size

    sizes = sorted({r.run.size for r in plan})
    blocks = check_tokenizers(spec, sizes, absent_ok)
    switch = vocabulary_switches(spec)
    for name in sizes:
        pre = spec.pretrained.get(name)
        if pre is None or (pre.florence is None and pre.gemma is None):
            blocks.append(f"{name}: no checkpoints (random init)")
            continue
        # torch and transformers are loaded only for a sweep that names checkpoints
        from florenz_scaling.model.checkpoints import describe, plan_checkpoints
        from florenz_scaling.model.layouts import CheckpointError

        absent = [kind for kind in ("florence", "gemma") if _absent(getattr(pre, kind))]
        if absent and absent_ok:
            blocks.append(f"{name}: " + ", ".join(f"{getattr(pre, k)} ({k})" for k in absent) + " not here")
            continue
        for kind in absent:
            raise SpecError(
                f"pretrained.{name}.{kind}",
                f"{getattr(pre, kind)!r} is not a directory",
                "point it at a local checkpoint directory (nothing is downloaded)",
            )
        try:
            size_plan = plan_checkpoints(get_size(name), pre.florence, pre.gemma, switch_vocabulary=switch)
        except CheckpointError as e:
            raise SpecError(f"pretrained.{name}.{e.kind}", e.problem, e.fix) from None
        except FileNotFoundError as e:
            raise SpecError(f"pretrained.{name}", str(e), "give a save_pretrained directory") from None
        blocks.append(describe(size_plan))
    return blocks
