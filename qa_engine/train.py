"""Fine-tune an extractive QA reader on SQuAD-format files (`kate qa train`).

Two modes from the DeepPavlov study: `fixed` (a set number of epochs) and `validated` (F1 on dev files
every N steps, stop after `patience` evaluations without improvement, keep the best weights).
Training chunks come from `features.encode`, the reader's own tokenisation and chunking, so the model
is trained on exactly what it will read; a chunk that does not contain the answer points at [CLS].
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

from .evaluate import QAExample, language_of_file, load_squad, predict, score_predictions, squad_questions
from .features import Chunk, effective_max_length, encode, pad_inputs
from .model_folders import staged_folder
from .model_store import load_qa_model
from .reader import Reader, resolve_device
from .types import Passage, ReaderConfig

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
    samples: dict[str, int] = field(default_factory=dict)  # file -> examples kept (random, seeded)
    cross_lingual: bool = False  # add parallel-question pairs (question of one language, context of another)
    cross_lingual_per_example: int = 1
    freeze_word_embeddings: bool = False
    seed: int = 42
    max_length: int = 384
    stride: int = 128
    max_question_tokens: int = 64
    max_steps: int | None = None  # a hard cap (time budgets on CPU)
    checkpoint_every: int = 200
    device: str = "auto"
    models_dir: str | None = None


@dataclass
class TrainFeature:
    input_ids: np.ndarray
    token_type_ids: np.ndarray | None
    start: int  # token index of the answer start, 0 ([CLS]) when the chunk does not hold the answer
    end: int


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- data ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledExample:
    question: str
    context: str
    answer_start: int  # characters
    answer_text: str


def load_labelled(path: str | Path) -> list[tuple[str, LabelledExample]]:
    """(question id, example) with the first gold answer's character position."""
    out = []
    for _, context, qa, answers in squad_questions(path):
        a = answers[0]
        start = int(a["answer_start"])
        if context[start : start + len(a["text"])] != a["text"]:  # a few datasets are off by some chars
            start = context.find(a["text"])
            if start < 0:
                continue
        out.append((str(qa["id"]), LabelledExample(qa["question"], context, start, a["text"])))
    return out


def cross_lingual_pairs(
    files: dict[str, list[tuple[str, LabelledExample]]], per_example: int, rng: random.Random
) -> list[LabelledExample]:
    """Parallel sets (XQuAD's 12 languages, Asai's fr/ja) share question ids: pair the question of one
    language with the context and answer of another, so the model learns to cross languages."""
    by_id: dict[str, list[LabelledExample]] = {}
    for examples in files.values():
        for qid, ex in examples:
            by_id.setdefault(qid, []).append(ex)
    pairs = []
    for versions in by_id.values():
        if len(versions) < 2:
            continue
        for target in versions:
            others = [v for v in versions if v.question != target.question]
            for source in rng.sample(others, min(per_example, len(others))):
                pairs.append(
                    LabelledExample(source.question, target.context, target.answer_start, target.answer_text)
                )
    return pairs


def label_chunk(chunk: Chunk, answer_start: int, answer_end: int) -> tuple[int, int]:
    """Token positions of [answer_start, answer_end) in the chunk, or (0, 0) when it is not wholly inside."""
    ctx = np.flatnonzero(chunk.context)
    if len(ctx) == 0:
        return 0, 0
    starts, ends = chunk.offsets[ctx, 0], chunk.offsets[ctx, 1]
    if starts[0] > answer_start or ends[-1] < answer_end:
        return 0, 0
    s = int(ctx[np.flatnonzero(ends > answer_start)[0]])
    e = int(ctx[np.flatnonzero(starts < answer_end)[-1]])
    return (s, e) if e >= s else (0, 0)


def build_features(
    tokenizer: object,
    examples: Sequence[LabelledExample],
    cfg: TrainConfig,
    max_length: int,
    progress: bool = True,
) -> list[TrainFeature]:
    from tqdm import tqdm

    features: list[TrainFeature] = []
    block = 256
    with tqdm(
        total=len(examples), desc="tokenising", unit="ex", disable=not progress, file=sys.stderr
    ) as bar:
        for first in range(0, len(examples), block):
            part = examples[first : first + block]
            chunks = encode(
                tokenizer,
                [e.question for e in part],
                [[Passage(e.context)] for e in part],
                max_length=max_length,
                stride=cfg.stride,
                max_question_tokens=cfg.max_question_tokens,
            )
            for chunk in chunks:
                ex = part[chunk.request]
                s, e = label_chunk(chunk, ex.answer_start, ex.answer_start + len(ex.answer_text))
                features.append(TrainFeature(chunk.input_ids, chunk.token_type_ids, s, e))
            bar.update(len(part))
    return features


def batch_order(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar lengths (sorted within pools of 50 batches): little padding, which
    is most of the cost on a CPU, while batches still mix the data."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for first in range(0, len(order), pool):
        chunk = sorted(order[first : first + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def collate(features: Sequence[TrainFeature], pad_id: int) -> dict[str, torch.Tensor]:
    batch = pad_inputs([f.input_ids for f in features], [f.token_type_ids for f in features], pad_id)
    batch["start_positions"] = torch.tensor([f.start for f in features])
    batch["end_positions"] = torch.tensor([f.end for f in features])
    return batch


def gather_training_examples(cfg: TrainConfig) -> tuple[list[LabelledExample], dict[str, int]]:
    rng = random.Random(cfg.seed)
    per_file: dict[str, list[tuple[str, LabelledExample]]] = {}
    for path in cfg.train_files:
        examples = load_labelled(path)
        wanted = _sample_size(cfg.samples, path)
        if wanted is not None and wanted < len(examples):
            # Each file has its own seeded order, and a sample is a prefix of it: samples of one file do
            # not depend on the other files, and a smaller sample is part of a larger one (learning curves).
            order = list(examples)
            random.Random(f"{cfg.seed}:{Path(path).name}").shuffle(order)
            examples = order[:wanted]
        per_file[path] = examples
    examples = [ex for exs in per_file.values() for _, ex in exs]
    counts = {Path(p).name: len(v) for p, v in per_file.items()}
    if cfg.cross_lingual:
        pairs = cross_lingual_pairs(per_file, cfg.cross_lingual_per_example, rng)
        examples += pairs
        counts["cross-lingual pairs"] = len(pairs)
    return examples, counts


def _sample_size(samples: dict[str, int], path: str) -> int | None:
    for key, n in samples.items():
        if Path(key).name == Path(path).name or key == path:
            return n
    return None


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
                },
            },
            tmp / "trainer_state.pt",
        )


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Fine-tune and write the model to `cfg.output_dir`; returns a summary (also saved as training.json)."""
    from tqdm import tqdm

    if cfg.mode not in ("fixed", "validated"):
        raise ValueError("mode must be 'fixed' or 'validated'")
    if cfg.mode == "validated" and not cfg.dev_files:
        raise ValueError("validated mode needs --dev files")
    set_seed(cfg.seed)
    output = Path(cfg.output_dir)
    checkpoint = output / "checkpoint"
    device = resolve_device(cfg.device)
    resume = (checkpoint / "trainer_state.pt").is_file()
    dropout = {"hidden_dropout_prob": cfg.dropout, "attention_probs_dropout_prob": cfg.dropout}
    model, tokenizer = load_qa_model(
        str(checkpoint) if resume else cfg.model, cfg.models_dir, model_kwargs=dropout
    )
    max_length = effective_max_length(tokenizer, model.config, cfg.max_length)
    if cfg.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    model.to(device).train()

    examples, counts = gather_training_examples(cfg)
    features = build_features(tokenizer, examples, cfg, max_length, progress)
    if not features:
        raise ValueError("no training examples found in the given files")
    dev = {p: load_squad(p, limit=cfg.dev_limit) for p in cfg.dev_files}
    steps_per_epoch = math.ceil(len(features) / cfg.batch_size)
    total_steps = math.ceil(steps_per_epoch * cfg.epochs)
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)

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
    state = {"step": 0, "best_f1": -1.0, "bad_evals": 0, "history": [], "stopped_early": False}
    if resume:
        saved = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        random.setstate(saved["rng"]["python"])
        np.random.set_state(saved["rng"]["numpy"])
        torch.set_rng_state(saved["rng"]["torch"])
        logger.info("resuming from step %d", state["step"])

    lengths = [len(f.input_ids) for f in features]
    pad_id = tokenizer.pad_token_id or 0
    started = time.time()
    bar = tqdm(
        total=total_steps,
        initial=state["step"],
        desc=f"training ({cfg.mode})",
        unit="step",
        disable=not progress,
        file=sys.stderr,
    )
    step = state["step"]
    epoch = step // steps_per_epoch
    while step < total_steps and not state["stopped_early"]:
        batches = batch_order(lengths, cfg.batch_size, cfg.seed + epoch)
        for batch_ids in batches[step - epoch * steps_per_epoch :]:
            batch = {k: v.to(device) for k, v in collate([features[i] for i in batch_ids], pad_id).items()}
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            state["step"] = step
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
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
            if step % cfg.checkpoint_every == 0 or step >= total_steps or state["stopped_early"]:
                _save_checkpoint(checkpoint, model, tokenizer, optimizer, scheduler, state)
            if step >= total_steps or state["stopped_early"]:
                break
        epoch += 1
    bar.close()

    if cfg.mode == "validated" and (output / "best" / "config.json").is_file():
        model, tokenizer = load_qa_model(str(output / "best"))
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    summary = {
        "config": asdict(cfg),
        "examples": counts,
        "features": len(features),
        "steps": step,
        "seconds": round(time.time() - started, 1),
        "best_dev_f1": state["best_f1"] if cfg.mode == "validated" else None,
        "history": state["history"],
        "stopped_early": state["stopped_early"],
    }
    (output / "training.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary
