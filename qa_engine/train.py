"""Fine-tune an extractive QA reader on SQuAD-format files (`kate qa train`).

Two modes from the DeepPavlov study: `fixed` (a set number of epochs) and `validated` (F1 on dev files
every N steps, stop after `patience` evaluations without improvement, keep the best weights).

Built to run for hours on a 2-core CPU and across working sessions: features are cached on disk
(`train_data.FeatureStore`), batches are length-bucketed, matrix products run in bf16 where the hardware
has it (`precision`), several micro-batches can make one optimizer step (`grad_accumulation`), and a
checkpoint (weights, optimizer, scheduler, step, RNG states) is written every `checkpoint_minutes` and when
`time_budget` runs out, so `train` called again with the same config goes on exactly where it stopped.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .evaluate import QAExample, language_of_file, load_squad, predict, score_predictions
from .features import effective_max_length, pad_inputs
from .model_folders import staged_folder
from .model_store import load_qa_model
from .reader import Reader, autocast, resolve_device, resolve_precision
from .train_data import MixSpec, TrainFeature, batch_order, build_feature_store
from .types import ReaderConfig

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    model: str
    train_files: list[str]
    output_dir: str
    mode: str = "fixed"  # fixed | validated
    dev_files: list[str] = field(default_factory=list)
    epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 8
    dropout: float = 0.1
    warmup: float = 0.1  # share of steps with a linear warm-up
    weight_decay: float = 0.01
    eval_every: int = 200  # validated mode: steps between dev evaluations
    patience: int = 10
    dev_limit: int | None = None  # questions per dev file for validation (None: all)
    # file -> examples kept (seeded by question id): N, or (a, b) for positions a to b (disjoint stages)
    samples: dict[str, int | tuple[int, int]] = field(default_factory=dict)
    cross_lingual: bool = False  # add parallel-question pairs (question of one language, context of another)
    cross_lingual_per_example: int = 1
    cross_lingual_max: int | None = None  # cap on the pairs, so they do not outnumber the real examples
    freeze_word_embeddings: bool = False
    seed: int = 42
    max_length: int = 384
    stride: int = 128
    max_question_tokens: int = 64
    max_steps: int | None = None  # a hard cap on optimizer steps (the schedule is sized to it)
    checkpoint_every: int = 200  # steps
    checkpoint_minutes: float = 10.0  # also checkpoint when this much time passed since the last one
    time_budget: float | None = None  # seconds: checkpoint and stop cleanly when spent (resume later)
    grad_accumulation: int = 1  # micro-batches of batch_size per optimizer step
    precision: str = "auto"  # auto | fp32 | bf16 | fp16: autocast of the forward pass (see reader)
    device: str = "auto"
    models_dir: str | None = None


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def mix_spec(cfg: TrainConfig) -> MixSpec:
    return MixSpec(
        files=tuple(cfg.train_files),
        samples=tuple(cfg.samples.items()),
        cross_lingual=cfg.cross_lingual,
        cross_lingual_per_example=cfg.cross_lingual_per_example,
        cross_lingual_max=cfg.cross_lingual_max,
        seed=cfg.seed,
    )


def collate(features: Sequence[TrainFeature], pad_id: int) -> dict[str, torch.Tensor]:
    batch = pad_inputs([f.input_ids for f in features], [f.token_type_ids for f in features], pad_id)
    batch["start_positions"] = torch.tensor([f.start for f in features])
    batch["end_positions"] = torch.tensor([f.end for f in features])
    return batch


# -- evaluation during training --------------------------------------------------------------------------
def dev_f1(
    model: torch.nn.Module, tokenizer: object, dev: dict[str, list[QAExample]], cfg: TrainConfig
) -> float:
    """Mean F1 over the dev files (the validated mode's criterion)."""
    reader = Reader(
        ReaderConfig(model="training", device=cfg.device, max_length=cfg.max_length, stride=cfg.stride),
        model=model,
        tokenizer=tokenizer,
    )
    model.eval()
    scores = [
        score_predictions(examples, predict(reader, examples), language_of_file(path) or "en").f1
        for path, examples in dev.items()
    ]
    model.train()
    return float(np.mean(scores)) if scores else 0.0


# -- checkpoints ------------------------------------------------------------------------------------------
def _save_checkpoint(
    folder: Path, model: torch.nn.Module, tokenizer: object, optimizer: object, scheduler: object, state: dict
) -> None:
    with staged_folder(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "state": state,
                "rng": {
                    "python": random.getstate(),
                    "numpy": np.random.get_state(),
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                },
            },
            tmp / "trainer_state.pt",
        )


def _make_optimizer(model: torch.nn.Module, cfg: TrainConfig, total_steps: int) -> tuple:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate,
    )
    warmup = int(total_steps * cfg.warmup)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / max(1, warmup)
            if s < warmup
            else max(0.0, (total_steps - s) / max(1, total_steps - warmup))
        ),
    )
    return params, optimizer, scheduler


def _restore(checkpoint: Path, optimizer: object, scheduler: object) -> dict:
    saved = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    random.setstate(saved["rng"]["python"])
    np.random.set_state(saved["rng"]["numpy"])
    torch.set_rng_state(saved["rng"]["torch"])
    if saved["rng"].get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["rng"]["cuda"])
    return saved["state"]


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Fine-tune and write the model to `cfg.output_dir`; returns a summary (also saved as training.json).

    Calling it again with the same config after an interruption (or a spent `time_budget`) resumes from
    `output_dir/checkpoint`: the same weights, optimizer moments, schedule, data order and RNG states, so
    the result equals an uninterrupted run. `summary["finished"]` is False while steps remain.
    """
    from tqdm import tqdm

    if cfg.mode not in ("fixed", "validated"):
        raise ValueError("mode must be 'fixed' or 'validated'")
    if cfg.mode == "validated" and not cfg.dev_files:
        raise ValueError("validated mode needs --dev files")
    if cfg.grad_accumulation < 1 or cfg.batch_size < 1:
        raise ValueError("batch_size and grad_accumulation must be >= 1")
    started = time.time()
    set_seed(cfg.seed)
    output = Path(cfg.output_dir)
    checkpoint = output / "checkpoint"
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    resume = (checkpoint / "trainer_state.pt").is_file()
    dropout = {"hidden_dropout_prob": cfg.dropout, "attention_probs_dropout_prob": cfg.dropout}
    model, tokenizer = load_qa_model(
        str(checkpoint) if resume else cfg.model, cfg.models_dir, model_kwargs=dropout
    )
    max_length = effective_max_length(tokenizer, model.config, cfg.max_length)
    if cfg.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    model.to(device).train()

    features, counts = build_feature_store(
        tokenizer,
        mix_spec(cfg),
        output / "features",
        max_length=max_length,
        stride=cfg.stride,
        max_question_tokens=cfg.max_question_tokens,
        progress=progress,
    )
    if not len(features):
        raise ValueError("no training examples found in the given files")
    dev = {p: load_squad(p, limit=cfg.dev_limit) for p in cfg.dev_files}
    batches_per_epoch = math.ceil(len(features) / cfg.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accumulation)
    total_steps = math.ceil(steps_per_epoch * cfg.epochs)
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    params, optimizer, scheduler = _make_optimizer(model, cfg, total_steps)
    state = {
        "step": 0,
        "best_f1": -1.0,
        "bad_evals": 0,
        "history": [],
        "stopped_early": False,
        "seconds": 0.0,
    }
    if resume:
        state = _restore(checkpoint, optimizer, scheduler)
        logger.info("resuming from step %d", state["step"])
    state.setdefault("seconds", 0.0)
    seconds_before = state["seconds"]

    lengths = features.lengths.tolist()
    pad_id = tokenizer.pad_token_id or 0
    bar = tqdm(
        total=total_steps,
        initial=state["step"],
        desc=f"training ({cfg.mode}, {'fp32' if precision is None else str(precision).split('.')[-1]})",
        unit="step",
        disable=not progress,
        file=sys.stderr,
    )

    def save() -> None:
        state["seconds"] = round(seconds_before + time.time() - started, 1)
        _save_checkpoint(checkpoint, model, tokenizer, optimizer, scheduler, state)

    step = state["step"]
    last_save = time.time()
    out_of_time = False
    tokens_seen, rows_seen, loop_seconds = 0, 0, 0.0
    while step < total_steps and not state["stopped_early"] and not out_of_time:
        epoch = step // steps_per_epoch
        batches = batch_order(lengths, cfg.batch_size, cfg.seed + epoch)
        groups = [
            batches[i : i + cfg.grad_accumulation] for i in range(0, len(batches), cfg.grad_accumulation)
        ]
        for group in groups[step - epoch * steps_per_epoch :]:
            step_started = time.perf_counter()
            n_rows = sum(len(b) for b in group)
            rows_seen += n_rows
            loss_sum = 0.0
            for batch_ids in group:
                batch = {
                    k: v.to(device) for k, v in collate([features[i] for i in batch_ids], pad_id).items()
                }
                tokens_seen += int(batch["attention_mask"].sum())
                with autocast(device, precision):
                    loss = model(**batch).loss
                # Each micro-batch weighs by its rows, so the step equals one batch of all of them.
                (loss.float() * (len(batch_ids) / n_rows)).backward()
                loss_sum += loss.item() * len(batch_ids) / n_rows
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loop_seconds += time.perf_counter() - step_started
            step += 1
            state["step"] = step
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum:.3f}")
            if cfg.mode == "validated" and step % cfg.eval_every == 0:
                f1 = dev_f1(model, tokenizer, dev, cfg)
                state["history"].append({"step": step, "dev_f1": round(f1, 2)})
                if f1 > state["best_f1"]:
                    state["best_f1"], state["bad_evals"] = f1, 0
                    model.save_pretrained(output / "best")
                    tokenizer.save_pretrained(output / "best")
                else:
                    state["bad_evals"] += 1
                bar.write(f"step {step}: dev F1 {f1:.2f} (best {state['best_f1']:.2f})")
                if state["bad_evals"] >= cfg.patience:
                    state["stopped_early"] = True
            done = step >= total_steps or state["stopped_early"]
            out_of_time = cfg.time_budget is not None and time.time() - started >= cfg.time_budget
            if (
                done
                or out_of_time
                or step % cfg.checkpoint_every == 0
                or time.time() - last_save >= cfg.checkpoint_minutes * 60
            ):
                save()
                last_save = time.time()
            if done or out_of_time:
                break
    bar.close()
    finished = step >= total_steps or state["stopped_early"]

    if finished and cfg.mode == "validated" and (output / "best" / "config.json").is_file():
        model, tokenizer = load_qa_model(str(output / "best"))
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    elapsed = time.time() - started
    summary = {
        "config": asdict(cfg),
        "examples": counts,
        "features": len(features),
        "steps": step,
        "total_steps": total_steps,
        "finished": finished,
        "precision": "fp32" if precision is None else str(precision).split(".")[-1],
        "device": str(device),
        "seconds": round(seconds_before + elapsed, 1),
        "seconds_this_call": round(elapsed, 1),
        "tokens_this_call": tokens_seen,
        "features_this_call": rows_seen,
        # optimizer steps only (no loading, tokenising, evaluating or checkpointing): what a step costs
        "seconds_per_feature": round(loop_seconds / rows_seen, 4) if rows_seen else None,
        "best_dev_f1": state["best_f1"] if cfg.mode == "validated" else None,
        "history": state["history"],
        "stopped_early": state["stopped_early"],
    }
    (output / "training.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary
