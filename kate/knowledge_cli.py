"""`kate sources ...`, `kate demo-site` and the knowledge half of `kate ask`: thin layers over `knowledge`."""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from core.local_redis import open_redis
from core.settings import Settings
from core.wiring import demo_base_url, open_knowledge
from knowledge.feedback import FeedbackError
from knowledge.library import Knowledge
from knowledge.sources import Source, SourceError, normalize_url, url_variables
from knowledge.store import StoreUnavailable


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def ensure_demo_site(settings: Settings, sources: list[Source]) -> str | None:
    """When sources point at the demo intranet and nothing serves it, serve it from this process
    (a convenience for `kate ask` and `kate up` on a laptop). Returns its address if started."""
    base = demo_base_url(settings)
    if not any(s.url.startswith(base + "/") for s in sources) or not _port_free(settings.demo_port):
        return None
    from knowledge.demo_server import serve_demo_site

    serve_demo_site(settings.demo_port)
    return base


# -- kate sources -------------------------------------------------------------------------------------------
def _when(ts: float) -> str:
    if not ts:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _status_word(source: Source) -> str:
    st = source.status
    if not st.fetched_at:
        return "not fetched"
    if st.error:
        return f"error: {st.error}"
    return f"ok {st.http_status}" + (" (unchanged)" if st.not_modified else "")


def _source_dict(source: Source) -> dict:
    d = source.to_yaml_dict()
    d.update(
        enabled=source.enabled,
        added_by=source.added_by,
        added_at=_when(source.added_at),
        status=vars(source.status) | {"fetched_at": _when(source.status.fetched_at)},
    )
    return d


def _reported(command: str, action: Callable[[], int]) -> int:
    """Run an admin command: a refused request exits 2, an unreachable Redis 3, each with its reason."""
    try:
        return action()
    except (SourceError, FeedbackError) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 3


def cmd_sources(args: argparse.Namespace, settings: Settings) -> int:
    return _reported(
        f"kate sources {args.action}",
        lambda: _SOURCES_ACTIONS[args.action](args, settings, open_knowledge(settings)),
    )


def _add(args: argparse.Namespace, settings: Settings, kn: Knowledge) -> int:
    source = kn.registry.add(
        args.url,
        title=args.title or "",
        language=args.lang or "",
        tags=args.tag or [],
        added_by=args.by,
        auth=args.auth or "",
    )
    print(f"added {source.url}")
    if args.fetch:
        status = kn.fetch_source(source)
        print(f"fetched: {status.error or f'{status.n_passages} passages'}")
    return 0


def _list(args: argparse.Namespace, settings: Settings, kn: Knowledge) -> int:
    sources = kn.registry.list()
    if args.json:
        print(json.dumps([_source_dict(s) for s in sources], ensure_ascii=False, indent=2))
        return 0
    if not sources:
        print("no sources (add one with `kate sources add URL`)")
    for s in sources:
        flag = "on " if s.enabled else "off"
        lang = s.language or "--"
        print(f"{flag} {lang:5} {s.url}  {s.title!r}  [{_status_word(s)}, {s.status.n_passages} passages]")
    return 0


def _show(args: argparse.Namespace, settings: Settings, kn: Knowledge) -> int:
    source = kn.registry.get(args.url)
    if source is None:
        raise SourceError(f"{args.url} is not a source (`kate sources list` shows them)")
    page = kn.cache.get(source.url)
    if args.json:
        d = _source_dict(source)
        d["passages"] = [vars(p) for p in page.passages] if page else []
        print(json.dumps(d, ensure_ascii=False, indent=2))
        return 0
    for key, value in _source_dict(source).items():
        if key != "status":
            print(f"{key:10} {value}")
    st = source.status
    print(
        f"last fetch {_when(st.fetched_at)}: {_status_word(source)}, "
        f"{st.n_bytes:,} bytes, {st.encoding or '-'}"
    )
    if page is None:
        print("no cached text (run `kate sources refresh URL`)")
        return 0
    print(
        f"cached     {len(page.passages)} passages, {page.age():.0f} s old, language {page.language or '-'}"
    )
    for i, p in enumerate(page.passages[: args.limit]):
        print(f"\n[{i}] {p.section or p.title}")
        print("    " + p.text.replace("\n", "\n    "))
    if len(page.passages) > args.limit:
        print(f"\n... {len(page.passages) - args.limit} more (use --limit)")
    return 0


def _remove(args: argparse.Namespace, settings: Settings, kn: Knowledge) -> int:
    kn.registry.remove(args.url)
    kn.cache.invalidate(normalize_url(args.url))
    print(f"removed {args.url}")
    return 0


def _enable(args: argparse.Namespace, settings: Settings, kn: Knowledge) -> int:
    source = kn.registry.set_enabled(args.url, args.action == "enable")
    print(f"{'enabled' if source.enabled else 'disabled'} {source.url}")
    return 0


def _refresh(args: argparse.Namespace, settings: Settings, kn: Knowledge) -> int:
    sources = [kn.registry.get(args.url)] if args.url else kn.registry.list(enabled_only=True)
    if args.url and sources[0] is None:
        raise SourceError(f"{args.url} is not a source")
    started = ensure_demo_site(settings, sources)  # type: ignore[arg-type]
    if started:
        print(f"(serving the demo intranet at {started} for this command)", file=sys.stderr)
    t0 = time.perf_counter()
    results = kn.refresh(sources, force=args.force)  # type: ignore[arg-type]
    failed = 0
    for url, st in results.items():
        failed += bool(st.error)
        word = st.error or (
            f"unchanged ({st.n_passages} passages)" if st.not_modified else f"{st.n_passages} passages"
        )
        print(f"{'FAIL' if st.error else 'ok  '} {url}: {word} [{st.seconds * 1000:.0f} ms]")
    print(f"{len(results)} sources refreshed in {time.perf_counter() - t0:.1f} s, {failed} failed")
    return 1 if failed and len(results) == failed else 0


def _import(args: argparse.Namespace, settings: Settings, kn: Knowledge) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    added, problems = kn.registry.import_yaml(
        path.read_text(encoding="utf-8"),
        url_variables(settings.url_variables, demo_base_url(settings)),
        added_by=args.by,
    )
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    print(f"imported {added} sources from {path}")
    return 0


def _export(args: argparse.Namespace, settings: Settings, kn: Knowledge) -> int:
    text = kn.registry.export_yaml()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


_SOURCES_ACTIONS = {
    "add": _add,
    "list": _list,
    "show": _show,
    "remove": _remove,
    "enable": _enable,
    "disable": _enable,
    "refresh": _refresh,
    "import": _import,
    "export": _export,
}


# -- kate feedback ---------------------------------------------------------------------------------------
def _epoch(text: str | None, end_of_day: bool = False) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FeedbackError(f"{text!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end_of_day and len(text) == 10:
        return moment.timestamp() + 86400 - 0.001
    return moment.timestamp()


def _verified_export(args: argparse.Namespace, settings: Settings) -> int:
    """The answers HR verified, with their passages, as SQuAD JSON (the feedback log itself has no
    passages to train on)."""
    from knowledge.verified import VerifiedAnswers, to_squad

    answers = VerifiedAnswers(open_redis(settings), settings.redis_prefix).all()
    squad = to_squad(answers)
    kept = sum(len(p["qas"]) for d in squad["data"] for p in d["paragraphs"])
    text = json.dumps(squad, ensure_ascii=False, indent=1) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(
        f"{kept} of {len(answers)} verified answers exported (the others were typed, found in no passage)"
        + (f"; wrote {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 0


def cmd_loop_demo(args: argparse.Namespace, settings: Settings) -> int:
    from measure.verified_loop import run

    r = run(settings, Path(args.output), args.epochs, args.lr)
    for name in r.before:
        print(f"{name}: {r.before[name][0]}/{r.before[name][1]} -> {r.after[name][0]}/{r.after[name][1]}")
    print(f"wrote {args.output}")
    return 0


def cmd_match_threshold(args: argparse.Namespace, settings: Settings) -> int:
    from measure.match_threshold import run

    floor, strict = run(settings, Path(args.output), args.max_wrong, args.max_wrong_strict)
    for name, p in (("KATE_VERIFIED_MIN_SIMILARITY", floor), ("KATE_VERIFIED_STRICT_SIMILARITY", strict)):
        print(f"{name} {p.threshold:.3f}: right {100 * p.right:.1f}% "
              f"(other language {100 * p.right_cross:.1f}%), wrong {100 * p.wrong:.1f}%")  # fmt: skip
    print(f"wrote {args.output}")
    return 0


def cmd_feedback_export(args: argparse.Namespace, settings: Settings) -> int:
    return _reported("kate feedback export", lambda: _feedback_export(args, settings))


def _feedback_export(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.feedback import FeedbackLog, export

    if args.format == "squad":
        return _verified_export(args, settings)
    since, until = _epoch(args.since), _epoch(args.until, end_of_day=True)
    log = FeedbackLog(open_redis(settings), settings.redis_prefix)
    with contextlib.ExitStack() as stack:
        out = (
            stack.enter_context(Path(args.output).open("w", encoding="utf-8", newline=""))
            if args.output
            else sys.stdout
        )
        for chunk in export(log.entries(since, until), args.format):
            out.write(chunk)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


# -- kate demo-site ---------------------------------------------------------------------------------------
def cmd_demo_site(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge.demo_server import demo_pages, serve_demo_site

    port = args.port or settings.demo_port
    try:
        server, thread = serve_demo_site(port)
    except OSError as exc:
        print(f"kate demo-site: cannot listen on 127.0.0.1:{port} ({exc})", file=sys.stderr)
        return 1
    print(f"demo intranet: http://127.0.0.1:{port}/ ({len(demo_pages())} pages); Ctrl-C stops it", flush=True)
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.shutdown()
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    src = sub.add_parser("sources", help="the intranet pages Kate answers from (kept in Redis)")
    actions = src.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a page")
    add.add_argument("url")
    add.add_argument("--title")
    add.add_argument("--lang", help="language code (detected from the page when unset)")
    add.add_argument("--tag", action="append", help="tag (repeatable)")
    add.add_argument("--auth", help="<basic|bearer|cookie>:<ENV_VAR> holding the credentials")
    add.add_argument("--by", default="cli", help="who added it (shown to admins)")
    add.add_argument("--fetch", action="store_true", help="fetch it now")
    ls = actions.add_parser("list", help="every source with its last fetch status")
    ls.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="one source: status and extracted passages")
    show.add_argument("url")
    show.add_argument("--limit", type=int, default=20, help="passages to print")
    show.add_argument("--json", action="store_true")
    for name in ("remove", "enable", "disable"):
        actions.add_parser(name, help=f"{name} a source").add_argument("url")
    ref = actions.add_parser("refresh", help="fetch again (all enabled sources, or one)")
    ref.add_argument("url", nargs="?")
    ref.add_argument("--force", action="store_true", help="ignore ETag/Last-Modified, download everything")
    imp = actions.add_parser("import", help="add the sources of a YAML file")
    imp.add_argument("file")
    imp.add_argument("--by", default="import")
    exp = actions.add_parser("export", help="print the sources as YAML (the sources.yml format)")
    exp.add_argument("--output", "-o")
    src.set_defaults(func=cmd_sources)

    fb = sub.add_parser("feedback", help="the 👍/👎 log").add_subparsers(dest="action", required=True)
    ex = fb.add_parser(
        "export", help="the feedback log as CSV or JSON Lines (oldest first), or verified answers as SQuAD"
    )
    ex.add_argument("--format", choices=("csv", "jsonl", "squad"), default="csv")
    ex.add_argument("--since", help="from this date (YYYY-MM-DD, UTC)")
    ex.add_argument("--until", help="up to this date, inclusive")
    ex.add_argument("--output", "-o", help="file to write (default: standard output)")
    ex.set_defaults(func=cmd_feedback_export)
    mt = fb.add_parser(
        "match-threshold", help="choose the similarity above which a question gets a verified answer (docs/)"
    )
    mt.add_argument("--output", "-o", default="docs/verified-answers.md")
    mt.add_argument("--max-wrong", type=float, default=0.02, help="wrong matches allowed, pipeline-confirmed")
    mt.add_argument(
        "--max-wrong-strict", type=float, default=0.01, help="wrong matches allowed, encoder alone"
    )
    mt.set_defaults(func=cmd_match_threshold)
    ld = fb.add_parser(
        "loop-demo", help="train the reader on verified demo answers; measure their held-apart paraphrases"
    )
    ld.add_argument("--output", "-o", default="docs/verified-loop.md")
    ld.add_argument("--epochs", type=float, default=3.0)
    ld.add_argument("--lr", type=float, default=3e-5)
    ld.set_defaults(func=cmd_loop_demo)

    demo = sub.add_parser("demo-site", help="serve the demo intranet on 127.0.0.1")
    demo.add_argument("--port", type=int, help="default: KATE_DEMO_PORT (8765)")
    demo.set_defaults(func=cmd_demo_site)
