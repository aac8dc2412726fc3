"""The one settings object: defaults, parsing, clear errors, and what it hands to the reader."""

from pathlib import Path

import pytest

from core.settings import Settings, SettingsError


def test_defaults_and_reader_config():
    s = Settings.from_env({"KATE_HOME": "/srv/kate"})
    assert s.qa_model == "offline:kate-reader-e5-small"
    assert s.models_dir == Path("/srv/kate/models")
    cfg = s.reader_config()
    assert (cfg.max_length, cfg.stride, cfg.max_answer_tokens, cfg.batch_size) == (384, 128, 30, 64)
    assert cfg.models_dir == "/srv/kate/models" and cfg.device == "auto" and cfg.max_batch_tokens is None
    assert s.reader_config("org/other").model == "org/other"


def test_values_are_parsed():
    s = Settings.from_env(
        {
            "KATE_DEVICE": "cuda:1",
            "KATE_PRECISION": "BF16",
            "KATE_MIN_SCORE": "-2.5",
            "KATE_THREADS": "4",
            "KATE_MAX_BATCH_TOKENS": "4096",
            "KATE_QA_MODEL": "org/m",
        }
    )
    assert (s.device, s.precision, s.min_score, s.threads, s.max_batch_tokens, s.qa_model) == (
        "cuda:1",
        "bf16",
        -2.5,
        4,
        4096,
        "org/m",
    )


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"KATE_BATCH_SIZE": "0"}, "KATE_BATCH_SIZE"),
        ({"KATE_STRIDE": "x"}, "KATE_STRIDE"),
        ({"KATE_STRIDE": "400"}, "KATE_STRIDE"),
        ({"KATE_FETCH_TIMEOUT": "-1"}, "KATE_FETCH_TIMEOUT"),
        ({"KATE_PRECISION": "int4"}, "KATE_PRECISION"),
        ({"KATE_MIN_SCORE": "high"}, "KATE_MIN_SCORE"),
        ({"KATE_LOG_LEVEL": "loud"}, "KATE_LOG_LEVEL"),
        ({"KATE_CACHE_TTL": "0"}, "KATE_CACHE_TTL"),
        ({"KATE_FETCH_BUDGET": "soon"}, "KATE_FETCH_BUDGET"),
        ({"KATE_RANK_TOP": "0"}, "KATE_RANK_TOP"),
        ({"KATE_RANK_WEIGHT": "-1"}, "KATE_RANK_WEIGHT"),
    ],
)
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_knowledge_and_ranker_settings():
    default = Settings.from_env({})
    assert default.redis_url is None and default.redis_prefix == "kate:" and default.ranker is not None
    assert default.sources_file.name == "sources.yml" and default.sources_file.is_file()
    custom = Settings.from_env(
        {
            "REDIS_URL": "redis://db:6379/3",
            "KATE_RANKER": "none",
            "KATE_RANK_WEIGHT": "0",
            "KATE_CACHE_TTL": "60",
        }
    )
    assert (
        custom.redis_url == "redis://db:6379/3" and custom.ranker is None and custom.ranker_config() is None
    )
    assert custom.rank_weight == 0.0 and custom.cache_ttl == 60.0


def test_answer_confidence_replaces_the_raw_score_threshold():
    assert Settings.from_env({}).answer_min_confidence is None  # the calibration's own threshold
    assert Settings.from_env({"KATE_ANSWER_MIN_CONFIDENCE": "0.7"}).answer_min_confidence == 0.7
    with pytest.raises(SettingsError, match="KATE_ANSWER_MIN_CONFIDENCE"):
        Settings.from_env({"KATE_ANSWER_MIN_CONFIDENCE": "7"})
    with pytest.raises(SettingsError, match="KATE_ANSWER_MIN_CONFIDENCE"):
        Settings.from_env({"KATE_ANSWER_MIN_SCORE": "6.5"})  # the old setting says what replaced it


def test_secrets_stay_off_screens_and_command_lines(tmp_path, capsys):
    """`kate settings` masks the Redis password and the admin hash; the Rasa API token travels in the
    environment, never on the command line `ps` shows."""
    from core.settings import mask_url
    from kate.cli import cmd_settings
    from kate.stack import plan

    env = {
        "REDIS_URL": "redis://:s3cret-pw@redis.internal:6380/2",
        "KATE_ADMIN_PASSWORD_HASH": "scrypt$a$b$c",
    }
    settings = Settings.from_env({**env, "KATE_HOME": str(tmp_path)})
    cmd_settings(None, settings)
    shown = capsys.readouterr().out
    assert "s3cret-pw" not in shown and "scrypt$" not in shown
    assert "redis://:***@redis.internal:6380/2" in shown and "(set)" in shown
    assert mask_url("redis://kate:pw@h:1/0") == "redis://kate:***@h:1/0"
    assert mask_url("redis://h:1/0") == "redis://h:1/0"
    services = plan(settings, settings.redis_url, tmp_path / "model.tar.gz", "tok-123456", demo=False)
    rasa = next(s for s in services if s.name == "rasa")
    assert all("tok-123456" not in arg for s in services for arg in s.argv)
    assert "--auth-token" not in rasa.argv and rasa.env["KATE_RASA_TOKEN"] == "tok-123456"
    assert rasa.argv[1].endswith("bot/run_rasa.py")


def test_a_rasa_token_that_begins_with_a_dash_still_reaches_rasa():
    """`secrets.token_urlsafe` begins with "-" one time in 64; `--auth-token -x...` is then read as a
    missing value and Rasa refuses to start (it happened to CI once)."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "run_rasa", Path(__file__).parents[1] / "bot" / "run_rasa.py"
    )
    run_rasa = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_rasa)
    argv = run_rasa.rasa_argv(["run", "--enable-api"], "-Xy_z")
    parser = argparse.ArgumentParser(prog="rasa")
    parser.add_argument("command")
    parser.add_argument("--enable-api", action="store_true")
    parser.add_argument("-t", "--auth-token")
    assert parser.parse_args(argv[1:]).auth_token == "-Xy_z"
    assert run_rasa.rasa_argv(["run"], "") == ["rasa", "run"]


def test_every_variable_settings_read_is_in_the_readme_table():
    """docs/settings.md documents what the code reads (and only Settings reads Kate's
    variables: a variable read anywhere else would escape this check)."""
    import re

    root = Path(__file__).resolve().parents[1]
    code = (root / "core" / "settings.py").read_text()
    read = set(re.findall(r'"((?:KATE_|REDIS_)[A-Z0-9_]*)"', code)) - {"KATE_ANSWER_MIN_SCORE"}  # refused
    table = {
        m.rstrip(".")
        for m in re.findall(r"`((?:KATE_|REDIS_)[A-Z0-9_.]*)`", (root / "docs" / "settings.md").read_text())
    }
    assert read - table == set()
    elsewhere = []
    for package in ("kate", "core", "measure", "actions", "admin", "knowledge", "qa_engine"):
        for path in (root / package).rglob("*.py"):
            if path.name != "settings.py" and re.search(
                r"environ(?:\.get)?\(?\[?\s*[\"']KATE_", path.read_text()
            ):
                elsewhere.append(str(path.relative_to(root)))
    assert elsewhere == []


def test_every_command_is_in_the_readme_table():
    """Each `kate` subcommand has a row in docs/commands.md (a row may list several:
    `kate sources enable|disable|remove URL`)."""
    import argparse
    import re

    from kate.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "docs" / "commands.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `kate ")]

    def leaves(parser: argparse.ArgumentParser, prefix: list[str]):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                        yield from leaves(sub, [*prefix, name])
                    else:
                        yield [*prefix, name]

    missing = []
    for path in leaves(build_parser(), []):
        group, leaf = " ".join(["kate", *path[:-1]]), path[-1]
        if not any(
            row.startswith(f"| `{group}") and re.search(rf"[`|\s\\\\]{re.escape(leaf)}(?=[\s`|\\\\])", row)
            for row in rows
        ):
            missing.append(" ".join(["kate", *path]))
    assert missing == []


def test_links_between_the_docs_resolve():
    import re

    root = Path(__file__).resolve().parents[1]
    broken = []
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"", page.read_text()):
            link = (target[0] or target[1]).split("#")[0]
            external = link.startswith(("http://", "https://", "mailto:", "../../shared", "../shared"))
            if link and not external and not (page.parent / link).exists():
                broken.append(f"{page.name}: {link}")
    assert broken == []
