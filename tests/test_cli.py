"""The `kate` console script, run as a user runs it (subprocess, real files, real local HTTP)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import FixtureServer, demo_file
from tiny_models import random_model, small_vocab_tokenizer, wired_model, xlmr_tokenizer

from core.settings import SHARED_QA_DEV

KATE = str(Path(sys.executable).parent / "kate")


def kate(
    *args: str, home: Path, extra_env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    env = {**os.environ, "KATE_HOME": str(home), "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    return subprocess.run(
        [KATE, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def wired_dir(tmp_path_factory):
    """A model folder whose answer is always the span 'alpha ... gamma'."""
    tok = small_vocab_tokenizer("w1 w2 w3 alpha beta gamma where is it what who")
    model = wired_model(len(tok), {tok.convert_tokens_to_ids("alpha")}, {tok.convert_tokens_to_ids("gamma")})
    folder = tmp_path_factory.mktemp("wired")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def random_xlmr_dir(tmp_path_factory):
    """A tiny random multilingual model (real XLM-R tokenizer): fast, answers are arbitrary spans."""
    folder = tmp_path_factory.mktemp("random-xlmr")
    tok = xlmr_tokenizer(folder)
    random_model(len(tok), layers=1, seed=5).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def squad_file(path: Path, items: list[tuple[str, str, str]]) -> Path:
    paragraphs = [
        {
            "context": c,
            "qas": [{"id": str(i), "question": q, "answers": [{"text": a, "answer_start": c.find(a)}]}],
        }
        for i, (c, q, a) in enumerate(items)
    ]
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


def test_eval_json_scores_are_exact(tmp_path, wired_dir):
    en = squad_file(
        tmp_path / "toy.en.dev.json",
        [
            ("w1 alpha beta gamma w2", "what is it", "alpha beta gamma"),  # EM 1
            ("w3 alpha w1 gamma", "who", "w3"),  # predicted 'alpha w1 gamma': EM 0, F1 0
        ],
    )
    other = squad_file(tmp_path / "toy2.en.dev.json", [("alpha beta gamma", "where", "beta gamma")])
    result = kate(
        "qa",
        "eval",
        "--model",
        str(wired_dir),
        "--data",
        str(en),
        "--data",
        str(other),
        "--json",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores[str(en)] == {"exact_match": 50.0, "f1": 50.0, "n": 2}
    assert scores[str(other)] == {"exact_match": 0.0, "f1": 80.0, "n": 1}  # P 2/3, R 1


def test_eval_runs_on_every_dev_file(tmp_path, random_xlmr_dir):
    files = sorted(SHARED_QA_DEV.glob("*.json"))
    if not files:
        pytest.skip("../shared/data/qa/dev is not beside this checkout")
    args = [a for f in files for a in ("--data", str(f))]
    result = kate(
        "qa", "eval", "--model", str(random_xlmr_dir), *args, "--limit", "3", "--json", home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert len(scores) == len(files) == 23
    assert all(s["n"] == 3 and 0 <= s["f1"] <= 100 for s in scores.values())
    table = kate(
        "qa",
        "eval",
        "--model",
        str(random_xlmr_dir),
        "--data",
        str(files[0]),
        "--limit",
        "2",
        "--no-progress",
        home=tmp_path,
    )
    assert files[0].name in table.stdout and "EM" in table.stdout


def test_ask_reads_urls_and_files_and_reports_bad_ones(tmp_path, random_xlmr_dir):
    with FixtureServer() as server:
        good, missing = server.url("/site/en/leave.html"), server.url("/missing")
        result = kate(
            "ask",
            "How many days of leave?",
            "--url",
            good,
            "--url",
            missing,
            "--file",
            str(demo_file("fr/teletravail.html")),
            "--model",
            str(random_xlmr_dir),
            "--json",
            "--top-k",
            "4",
            home=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "HTTP 404" in result.stderr
    out = json.loads(result.stdout)
    assert 1 <= len(out["answers"]) <= 4 and set(out["timings_s"]) == {
        "fetch+parse",
        "model load",
        "rank+read",
    }
    pages = {good: None, demo_file("fr/teletravail.html").resolve().as_uri(): None}
    for answer in out["answers"]:
        assert answer["url"] in pages
        assert answer["text"] in answer["sentence"]


def test_ask_without_sources_or_with_dead_ones_fails_clearly(tmp_path, random_xlmr_dir, redis_client):
    no_seed = {"KATE_SOURCES_FILE": str(tmp_path / "none.yml")}
    result = kate("ask", "question?", home=tmp_path, extra_env=no_seed)
    assert result.returncode == 1 and "no enabled sources" in result.stderr
    result = kate(
        "ask", "question?", "--url", "http://127.0.0.1:9/x", "--model", str(random_xlmr_dir), home=tmp_path
    )
    assert (
        result.returncode == 1
        and "cannot connect" in result.stderr
        and "no page could be read" in result.stderr
    )


def test_study_refuses_bad_sizes_and_missing_files_before_training(tmp_path):
    result = kate("qa", "study", "--sizes", "0,lots", home=tmp_path)
    assert result.returncode == 2 and "--sizes wants numbers" in result.stderr
    result = kate("qa", "study", "--target", str(tmp_path / "none.ja.json"), home=tmp_path)
    assert result.returncode == 2 and "missing data files" in result.stderr
    assert "none.ja.json" in result.stderr
    assert not (tmp_path / "models").exists()  # refused before any model was built or run started


def test_bad_settings_are_reported_by_name(tmp_path):
    result = kate("settings", home=tmp_path, extra_env={"KATE_BATCH_SIZE": "lots"})
    assert result.returncode == 2 and "KATE_BATCH_SIZE must be an integer" in result.stderr
    result = kate("settings", home=tmp_path, extra_env={"KATE_DEVICE": "tpu"})
    assert result.returncode == 2 and "KATE_DEVICE" in result.stderr
    page = demo_file("en/leave.html")  # a readable page: the run gets as far as loading the model
    result = kate("ask", "q?", "--file", str(page), home=tmp_path, extra_env={"KATE_QA_MODEL": "./nowhere"})
    assert result.returncode == 1 and "'./nowhere' is not a model folder" in result.stderr


def test_bench_reader_writes_its_section(tmp_path, random_xlmr_dir):
    output = tmp_path / "benchmarks.md"
    output.write_text("# Kate benchmarks\n\n<!-- bench:other -->\nkept\n<!-- /bench:other -->\n")
    args = (
        "bench",
        "reader",
        "--quick",
        "--repeats",
        "1",
        "--output",
        str(output),
        "--model",
        str(random_xlmr_dir),
    )
    result = kate(*args, home=tmp_path, extra_env={"KATE_PRECISION": "fp32"})
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert "kept" in text and "## Reader: batched vs naive loop" in text and "reads in fp32" in text
    rows = [line for line in text.splitlines() if line.startswith(("| demo intranet", "| QA dev"))]
    assert rows and all(line.rstrip().endswith("x** |") and line.count("|") == 8 for line in rows)
    # In bf16 the batched reader is also timed in fp32, so the table splits batching from bf16.
    assert kate(*args, home=tmp_path, extra_env={"KATE_PRECISION": "bf16"}).returncode == 0
    text = output.read_text()
    assert text.count("## Reader: batched vs naive loop") == 1  # rewritten, not appended
    assert "batching alone | **Kate's reader (bf16) vs naive** |" in text
    rows = [line for line in text.splitlines() if line.startswith(("| demo intranet", "| QA dev"))]
    assert rows and all(line.count("|") == 10 and line.count("x |") == 1 for line in rows)


def test_offline_default_model_end_to_end(tmp_path, redis_client):
    """The product path with no model argument: build the offline model, then answer from the demo pages."""
    build = kate("qa", "build-model", home=tmp_path)
    assert build.returncode == 0, build.stderr
    assert Path(build.stdout.strip()) == tmp_path / "models" / "kate-reader-e5-small"
    assert (tmp_path / "models" / "multilingual-e5-small" / "config.json").is_file()  # its base, built first
    result = kate(
        "ask",
        "Combien de jours par semaine peut-on télétravailler ?",
        "--file",
        str(demo_file("fr/teletravail.html")),
        "--json",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)["answers"]
    assert "trois jours" in answers[0]["text"]  # the shipped reader answers, it does not just return a span
    page = demo_file("fr/teletravail.html").read_text()
    assert answers and all(a["text"] in a["sentence"] and a["sentence"][:20] in page for a in answers)

    # `kate ask "question"` with no page given: seeded sources, demo site, fetch, cache, rank, read.
    question = "Combien de jours par semaine peut-on télétravailler ?"
    cold = kate("ask", question, "--json", home=tmp_path)
    assert cold.returncode == 0, cold.stderr
    assert "17 sources added" in cold.stderr
    out = json.loads(cold.stdout)
    best = out["answers"][0]
    assert "trois jours" in best["text"] and best["url"].endswith("/fr/teletravail.html")
    assert best["section"] == "Télétravail > Combien de jours ?"
    warm = kate("ask", question, "--json", home=tmp_path)
    timings = json.loads(warm.stdout)["timings_s"]
    assert set(timings) == {"sources", "fetch+parse", "model load", "rank+read"}
    assert timings["fetch+parse"] < out["timings_s"]["fetch+parse"]  # warm: from the Redis cache
    listed = json.loads(kate("sources", "list", "--json", home=tmp_path).stdout)
    assert len(listed) == 17 and all(s["status"]["http_status"] == 200 for s in listed)


def dev_subset(tmp_path: Path) -> Path:
    """Two real dev files (40 and 8 paragraphs) in a folder of their own: small bench runs."""
    data = tmp_path / "dev"
    data.mkdir()
    for name in ("xquad.en.dev.json", "asai2018.fr.dev.json"):
        (data / name).write_text((SHARED_QA_DEV / name).read_text(encoding="utf-8"), encoding="utf-8")
    return data


def test_bench_scale_writes_recall_tradeoff_and_latency(tmp_path, random_xlmr_dir, redis_client):
    """Small sizes, a tiny model as reader and ranker: the three tables are there, the pages were really
    served, fetched and cached (passage counts), and the bench's private Redis keys are removed."""
    data = dev_subset(tmp_path)
    output = tmp_path / "benchmarks.md"
    args = ["bench", "scale", "--model", str(random_xlmr_dir), "--data-dir", str(data), "--sizes", "1,5"]
    args += ["--questions", "2", "--per-file", "1", "--languages", "en", "--output", str(output)]
    result = kate(*args, home=tmp_path, extra_env={"KATE_RANKER": str(random_xlmr_dir)})
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert "| xquad.en | 40 | 182 |" in text and "| asai2018.fr | 8 | 46 |" in text
    assert "| all |" in text and "| 10 |" in text and "| K | F1 | F1 en | time p50 |" in text
    latency = text.split("### Answer latency")[1].splitlines()
    rows = [line for line in latency if line.startswith(("| 1 | ", "| 5 | "))]
    assert [r.split(" | ")[1] for r in rows] == ["1", "5"]  # one paragraph per page, every page cached
    assert not list(redis_client.scan_iter("kate:bench-scale-*"))


def test_bench_cpu_reports_speed_and_f1_per_variant(tmp_path, random_xlmr_dir):
    data = dev_subset(tmp_path)
    output = tmp_path / "benchmarks.md"
    args = ["bench", "cpu", "--model", str(random_xlmr_dir), "--data-dir", str(data), "--limit", "3"]
    args += ["--repeats", "1", "--output", str(output), "--ranker", str(random_xlmr_dir)]
    result = kate(*args, home=tmp_path, extra_env={"KATE_DEVICE": "cpu"})
    assert result.returncode == 0, result.stderr
    text = output.read_text()
    assert "| F1 xquad.en | F1 asai2018.fr |" in text
    rows = [line for line in text.splitlines() if line.startswith(("| fp32", "| bf16", "| int8"))]
    assert len(rows) == 4 and rows[0].split(" | ")[3] == "**1.00x**"
    assert sum("what `auto` picks here" in row for row in rows) == 1
    engines = {
        line.split(" | ")[0]: line.split(" | ") for line in text.splitlines() if "1 - cosine" not in line
    }
    assert {"| torch fp32", "| ONNX Runtime fp32"} <= set(engines), text
    assert float(engines["| ONNX Runtime fp32"][4].rstrip(" |")) < 1e-4  # the same vectors, not close ones
