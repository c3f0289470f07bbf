"""One training run of a sweep, start to finish: ``main(run_dir)``.

    run.yaml ─▶ model, data, AdamW + cosine ─▶ DeepSpeed engine ─▶ resume from the newest complete checkpoint
      ─▶ loop: step · train record · held-out eval every eval_every · checkpoint every checkpoint_every
      ─▶ final eval ─▶ final checkpoint ─▶ DONE

Exactness: a run killed at any moment and restarted ends where an uninterrupted one ends. The data stream is
a pure function of its position, which the checkpoint holds (with the RNG states); records written after the
checkpoint are dropped on resume and written again; DONE is written atomically, last. Same code as 1 process
or N (torchrun or srun tasks); each rank trains on its own share of the stream, only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from florenz_scaling.data import PreparedData, decoder_pieces, prepare
from florenz_scaling.files import Busy, RunDir, exclusive_lock, write_atomic
from florenz_scaling.model.florenz import token_loss
from florenz_scaling.results.records import LossRecord, RecordWriter, read_records, truncate_after_step
from florenz_scaling.spec import RunSpec, load_run
from florenz_scaling.spec.sizes import get_size
from florenz_scaling.train import checkpoint, zero3
from florenz_scaling.train.engine import deepspeed_config, resolve_precision
from florenz_scaling.train.evaluate import evaluate, group_means, model_inputs
from florenz_scaling.train.generate import append_jsonl, decodings, generation_records
from florenz_scaling.train.observe import Tracker, close_logging, eval_metrics, setup_logging
from florenz_scaling.train.optim import decay_start, make_optimizer, make_scheduler
from florenz_scaling.train.process import (
    EXIT_PREEMPTED,
    DistEnv,
    StopFlag,
    all_reduce_sum,
    init_distributed,
    shutdown_distributed,
)
from florenz_scaling.train.zero3 import param_summary, whole_model

log = logging.getLogger("florenz_scaling.train.run")
LOG_EVERY = 10  # optimizer steps between train records (each fsynced line costs a few ms)


def vocabulary_pieces(run: RunSpec, data: PreparedData | None) -> list[list[int]] | None:
    """Target id -> prompt-tokenizer ids, when a BART decoder starts from a Florence-2 checkpoint whose
    vocabulary (the encoder tokenizer's) is not the decoders' (the target tokenizer's); else None."""
    if data is None or run.pretrained is None or run.pretrained.florence is None:
        return None
    tokenizers = data.manifest  # each tokenizer's SHA-1, recorded once by prepare
    if (
        get_size(run.size).family != "florence"
        or tokenizers["encoder_tokenizer"]["sha1"] == tokenizers["tokenizer"]["sha1"]
    ):
        return None
    return decoder_pieces(data.tokenizer, data.encoder_tokenizer)


def build_engine(run: RunSpec, env: DistEnv, data: PreparedData | None = None) -> Any:
    """The run's model (seeded), AdamW over trainable parameters and the cosine schedule, in DeepSpeed.

    At ZeRO-3 the model is built inside ``deepspeed.zero.Init``: each module's parameters are partitioned
    over the ranks as soon as the module exists, so no rank ever holds the whole model (an 11B size does not
    fit one GPU); pretrained tensors are then copied in one gathered parameter at a time.
    """
    import deepspeed

    precision = resolve_precision(run.train, env.device.type == "cuda")
    config = deepspeed_config(run, precision)
    model = zero3.build(run, env.device, config)
    if run.train.checkpoints_activations(run.size):
        model.enable_activation_checkpointing()
    if run.pretrained is not None:
        from florenz_scaling.model.pretrained import load_pretrained

        log.info(
            "pretrained %s: %s",
            run.pretrained,
            load_pretrained(
                model, run.pretrained.florence, run.pretrained.gemma, vocabulary_pieces(run, data)
            ),
        )
    if precision == "bf16":  # DeepSpeed casts parameters but not the projector's fp32 buffer
        if run.train.zero_stage == 3:  # parameters are bf16 from zero.Init; casting them would gather them
            for b in model.buffers():
                if b.is_floating_point():
                    b.data = b.data.to(torch.bfloat16)
        else:
            model = model.to(torch.bfloat16)
    optimizer = make_optimizer(model, run.train)
    engine, *_ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=make_scheduler(optimizer, run.train, run.steps, decay_start(run)),
        config=config,
    )
    if env.world_size == 1 and run.train.zero_stage == 0:
        # Alone, DeepSpeed would still flatten every gradient, all-reduce it with itself and copy it back.
        engine.enable_backward_allreduce = False
    log.info(
        "%s: %s on %s, %d rank(s), ZeRO-%d, %s, %d micro-batch(es) of %d per step",
        run.size,
        param_summary(model),
        env.device,
        env.world_size,
        run.train.zero_stage,
        precision,
        run.grad_accum,
        run.train.micro_batch,
    )
    return engine


def train_step(engine: Any, next_batch: Callable[[], dict[str, Any]]) -> tuple[float, int]:
    """One optimizer step: ``gradient_accumulation_steps`` micro-batches, then DeepSpeed's clipped update and
    scheduler step. Returns this rank's mean micro-batch loss and its scored target tokens."""
    losses, tokens = [], 0
    for _ in range(engine.gradient_accumulation_steps()):
        batch = next_batch()
        labels = batch["labels"]
        loss = token_loss(engine(**model_inputs(batch, engine.device)), labels.to(engine.device))
        engine.backward(loss)  # DeepSpeed divides by the accumulation steps
        engine.step()  # and updates only at the accumulation boundary
        losses.append(loss.detach())
        tokens += int((labels != -100).sum())
    return float(torch.stack(losses).mean()), tokens


def main(run_dir: str | Path) -> int:
    """Train the run in ``run_dir`` to completion (0) or until told to stop (EXIT_PREEMPTED, checkpointed).

    Idempotent: a run with DONE returns 0 at once; otherwise it resumes from its newest complete checkpoint.
    """
    rd = RunDir(run_dir)
    if rd.done.exists():
        print(f"{rd.root}: DONE exists, nothing to do")
        return 0
    run = load_run(rd.run_yaml)
    env = init_distributed()
    if env.world_size != run.train.world_size:  # the accumulation steps, hence the global batch, depend on it
        raise ValueError(
            f"{rd.run_yaml} has train.world_size={run.train.world_size} but {env.world_size} "
            "processes were started; launch as many processes as the spec says"
        )
    setup_logging(rd.logs / "train.log" if env.is_main else None)
    if run.train.threads > 0:
        torch.set_num_threads(run.train.threads)
    stop = StopFlag().install()  # from here on a SIGTERM means "checkpoint and requeue", not death
    try:
        with _sole_trainer(rd, env):
            return _train(run, rd, env, stop)
    finally:
        stop.restore()
        close_logging()
        shutdown_distributed()  # lets a later main() in this process start afresh


@contextlib.contextmanager
def _sole_trainer(rd: RunDir, env: DistEnv) -> Iterator[None]:
    """Rank 0 holds the run's trainer lock; if another live trainer has it, every rank of this one stops.

    Two trainers on one directory would interleave their records and checkpoints.
    """
    with contextlib.ExitStack() as stack:
        busy = ""
        if env.is_main:
            try:
                stack.enter_context(exclusive_lock(rd.trainer_lock, wait=False, what=f"run {rd.root.name}"))
            except Busy as e:
                busy = str(e)
        if all_reduce_sum([1.0 if busy else 0.0], env)[0] > 0:
            raise Busy(busy or f"run {rd.root.name} is held by another live trainer")
        yield


def _train(run: RunSpec, rd: RunDir, env: DistEnv, stop: StopFlag) -> int:
    run_id = rd.root.name
    log.info(
        "run %s (%s, %d steps × %d samples) rank %d/%d",
        run_id,
        run.size,
        run.steps,
        run.global_batch,
        env.rank,
        env.world_size,
    )
    data = prepare(run.data, rd.sweep.data)
    heldout = data.heldout()
    engine = build_engine(run, env, data)
    stream = data.train_stream(run.seed, env.rank, env.world_size)

    if run.start_from is not None:  # a WSD trunk segment or branch begins at its parent's checkpoint
        checkpoint.adopt(rd.sweep.run(run.start_from).checkpoints, rd.checkpoints, run.start_step, env)
    start, client = checkpoint.load_latest(engine, rd.checkpoints, env)
    total, squares = all_reduce_sum([float(start), float(start) ** 2], env)
    if total != start * env.world_size or squares != start**2 * env.world_size:  # equal only if all agree
        raise RuntimeError(
            f"the ranks of run {rd.root.name} resumed from different checkpoint steps (rank {env.rank}: "
            f"{start}); every rank must see the same checkpoints directory {rd.checkpoints}"
        )
    wall0 = 0.0  # wall time of earlier sessions of this run
    if client is not None:
        stream.load_state_dict(client["stream"])
        checkpoint.set_rng_state(client["rng"])
        wall0 = client["wall_time_s"]
        log.info(
            "resumed from checkpoint at step %d (%d samples seen) on all %d rank(s)",
            start,
            start * run.global_batch,
            env.world_size,
        )
    t_session = time.perf_counter()
    writer, tracker = None, Tracker()  # on ranks other than 0 the tracker is never started: a no-op
    if env.is_main:
        dropped = truncate_after_step(rd.losses, start)  # records past the checkpoint are redone
        if dropped:
            log.info("dropped %d record(s) written after step %d", dropped, start)
        for path in (rd.metrics, rd.examples):  # so are decoded samples and their scores
            truncate_after_step(path, start)
        writer = RecordWriter(rd.losses)
        tracker.start(run, run_id, rd.root)  # wandb writes into <run dir>/wandb/

    def wall() -> float:
        return wall0 + time.perf_counter() - t_session

    def record(records: list[LossRecord], metrics: dict[str, float], step: int) -> None:
        if writer is not None:
            writer.write(records)
        tracker.log(metrics, step)

    def save(step: int) -> int:
        client_state = {"stream": stream.state_dict(), "rng": checkpoint.rng_state(), "wall_time_s": wall()}
        checkpoint.save(
            engine,
            rd.checkpoints,
            step,
            client_state,
            {"seen_samples": step * run.global_batch},
            env,
            run.train.keep_checkpoints,
        )
        log.info("checkpoint at step %d", step)
        return step

    def held_out(step: int, final: bool = False) -> None:
        records = evaluate(
            engine,
            heldout,
            run_id,
            step,
            step * run.global_batch,
            batch_size=run.train.micro_batch,
            device=env.device,
        )
        record(records, eval_metrics(records), step)
        log.info("step %d held-out: %s", step, _fmt(group_means(records)) or _fmt({"all": records[0].loss}))
        for what in ("image", "prompt") if final else ():  # once per run: does it use its image, prompt?
            shuffled = evaluate(
                engine,
                heldout,
                run_id,
                step,
                step * run.global_batch,
                batch_size=run.train.micro_batch,
                device=env.device,
                shuffled=what,
            )
            means = group_means(shuffled, kind=f"shuffled_{what}")
            record(shuffled, {f"shuffled_{what}/group/{g}": v for g, v in means.items()}, step)
            log.info("step %d loss with %ss shuffled: %s", step, what, _fmt(means))
        if run.generate.enabled and (final or run.generate.every_eval):
            _generation(engine, heldout, run, rd, step, writer is not None)

    # --- the loop: one optimizer step per iteration; records, eval and checkpoints at step boundaries -------
    step, last_saved, exit_code = start, start, 0
    samples, busy = 0, 0.0  # since the last train record: throughput counts training time only
    while step < run.steps:
        t0, lr = time.perf_counter(), engine.get_lr()[0]
        loss, tokens = train_step(engine, lambda: stream.next_batch(run.train.micro_batch))
        # One collective per step: the mean loss across ranks, tokens, and whether any rank was told to stop.
        loss_sum, tokens, stops = all_reduce_sum([loss, tokens, float(bool(stop))], env)
        step, samples, busy = step + 1, samples + run.global_batch, busy + time.perf_counter() - t0
        if step % LOG_EVERY == 0 or step in (1, run.steps):  # fixed steps, so a resumed run writes the same
            rate = samples / busy
            rec = LossRecord(
                run_id=run_id,
                step=step,
                seen_samples=step * run.global_batch,
                kind="train",
                task="",
                lang="",
                group="",
                loss=loss_sum / env.world_size,
                samples=run.global_batch,
                tokens=int(tokens),
                lr=lr,
                samples_per_s=rate,
                time=wall(),
            )
            record([rec], {"train/loss": rec.loss, "train/lr": lr, "train/samples_per_s": rate}, step)
            log.info("step %d/%d loss %.4f lr %.3g %.1f samples/s", step, run.steps, rec.loss, lr, rate)
            samples, busy = 0, 0.0
        if step == run.steps:
            break
        if step % run.train.eval_every == 0:
            held_out(step)
        if step % run.train.checkpoint_every == 0:
            last_saved = save(step)
        if stops > 0:
            if last_saved != step:
                last_saved = save(step)
            log.warning(
                "stop signal: checkpointed at step %d, exiting with %d for a requeue", step, EXIT_PREEMPTED
            )
            exit_code = EXIT_PREEMPTED
            break

    if exit_code == 0:
        if start < run.steps:  # else resumed from the final checkpoint: its records are already written
            held_out(run.steps, final=not run.trunk)  # a trunk's end is no schedule's endpoint
            save(run.steps)  # kept for fine-tuning, as the paper fine-tunes from its final checkpoints
        if writer is not None:
            summary = _summary(run, rd, run_id, wall())
            write_atomic(rd.done, json.dumps(summary, indent=2) + "\n")  # last, atomically: the run is done
            tracker.summary(summary["final"])
            log.info("run %s done, %.0f s wall time", run_id, wall())
    tracker.finish(exit_code)
    if writer is not None:
        writer.close()
    return exit_code


def _summary(run: RunSpec, rd: RunDir, run_id: str, elapsed: float) -> dict[str, Any]:
    """DONE's content, read back from losses.jsonl so that it is the same whether or not the run resumed."""
    final = [r for r in read_records(rd.losses).records if r.step == run.steps]
    evals = [r for r in final if r.kind == "eval"]
    train = [r.loss for r in final if r.kind == "train"]
    return {
        "run_id": run_id,
        "final_step": run.steps,
        "seen_samples": run.seen_samples,
        "wall_time_s": elapsed,
        "final": {
            "train_loss": train[-1] if train else None,
            "groups": group_means(evals),
            "pairs": {f"{r.task}/{r.lang}": r.loss for r in evals},
        },
    }


def _generation(engine: Any, heldout: Any, run: RunSpec, rd: RunDir, step: int, write: bool) -> None:
    """Decode every pair's held-out samples (bounded by generate.max_samples), score what the model says and
    append the scores to metrics.jsonl and a few decoded samples to examples.jsonl (every rank decodes, as
    every rank evaluates; rank 0 writes)."""
    gen, t0 = run.generate, time.perf_counter()
    samples: list[Any] = []  # per-sample scores, beside the metric records (intervals across runs)
    with whole_model(engine):
        metrics, examples = generation_records(
            engine,
            heldout,
            decodings(gen.beam, gen.greedy, gen.prefix, gen.no_prefix),
            run_id=rd.root.name,
            step=step,
            seen_samples=step * run.global_batch,
            max_samples=gen.max_samples,
            batch_size=run.train.micro_batch,
            examples=gen.examples,
            samples=samples,
            primary_samples=gen.primary_samples,
        )
    if write:
        RecordWriter(rd.metrics).write([*metrics, *samples])  # the one record writer, as for losses
        append_jsonl(rd.examples, examples)
    cider: dict[str, list[float]] = {}
    for r in (r for r in metrics if r.metric == "cider" and r.group):
        cider.setdefault(f"{r.group}/{r.decoding}", []).append(r.value)
    log.info(
        "step %d generation (%.1f s, %d scores), mean CIDEr by group/decoding: %s",
        step,
        time.perf_counter() - t0,
        len(metrics),
        _fmt({k: sum(v) / len(v) for k, v in cider.items()}),
    )


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in values.items())


__all__ = ["EXIT_PREEMPTED", "build_engine", "main", "train_step"]
