"""What each process loads: the web app, the CLI's light commands and the knowledge layer run without
torch (the web image ships none of its weight)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WEB_APP = """
import sys
from kate.cli import build_parser
from core.wiring import open_knowledge
from core.settings import Settings
from admin.app import create_app
import knowledge, knowledge.library, knowledge.fetch, knowledge.feedback, knowledge.unanswered
settings = Settings.from_env()
kn = open_knowledge(settings)
app = create_app(settings, kn)
build_parser().parse_args(["web"])
loaded = sorted(m for m in ("torch", "transformers", "safetensors") if m in sys.modules)
print("loaded:", loaded)
tops = {m.split(".")[0] for m in list(sys.modules) if not m.startswith("_")} - set(sys.stdlib_module_names)
print("modules:", " ".join(sorted(tops)))
kn.close()
"""


def test_the_web_app_and_the_knowledge_layer_load_no_torch(tmp_path, redis_server):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KATE_HOME": str(tmp_path),
        "REDIS_URL": redis_server.url,
        "KATE_SOURCES_FILE": str(tmp_path / "none.yml"),
    }
    result = subprocess.run(
        [sys.executable, "-c", WEB_APP], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loaded: []" in result.stdout, result.stdout


def _closure(packages: list[str]) -> set[str]:
    """The distributions `packages` install, with everything they require, extras included."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[tuple[str, str]] = set()
    todo = [(canonicalize_name(p), "") for p in packages]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo += [(canonicalize_name(req.name), "")] + [
                    (canonicalize_name(req.name), e) for e in req.extras
                ]
    return {name for name, _ in seen}


def test_the_web_image_packages_cover_what_the_web_app_imports(tmp_path, redis_server):
    """docker/web.Dockerfile installs WEB_PACKAGES and Kate without its dependencies: every module the
    web app loads must come from those packages (or their requirements), or the image would not start."""
    import re
    from importlib import metadata

    from packaging.utils import canonicalize_name

    text = (ROOT / "docker" / "web.Dockerfile").read_text()
    packages = re.search(r'ARG WEB_PACKAGES="([^"]+)"', text).group(1).split()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KATE_HOME": str(tmp_path),
           "REDIS_URL": redis_server.url, "KATE_SOURCES_FILE": str(tmp_path / "none.yml")}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", WEB_APP], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    modules = result.stdout.split("modules:", 1)[1].split()
    owners = metadata.packages_distributions()
    available = _closure(packages)
    ours = {"kate", "core", "measure", "qa_engine", "knowledge", "actions", "admin"}
    optional = {"opentelemetry", "ujson"}  # used by redis and fastapi only when they are installed
    missing = {
        m: owners.get(m)
        for m in modules
        if m not in ours | optional
        and owners.get(m)
        and not any(canonicalize_name(d) in available for d in owners[m])
    }
    assert not missing, missing


def test_the_packages_keep_their_layers():
    """`lint-imports` (import-linter, contract in pyproject.toml): kate > actions | admin | measure > core >
    knowledge > qa_engine, so no two packages import each other, function-level imports included."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
    assert "1 kept, 0 broken" in result.stdout


def test_settings_load_only_the_standard_library_and_the_reader_records():
    code = (
        "import sys; before = set(sys.modules); import core.settings; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "['core', 'qa_engine']", result.stdout + result.stderr


def test_the_default_sources_file_is_the_knowledge_layers():
    from core.settings import DEFAULT_SOURCES_FILE
    from knowledge.sources import DEFAULT_SOURCES_FILE as KNOWLEDGE_DEFAULT

    assert DEFAULT_SOURCES_FILE.resolve() == KNOWLEDGE_DEFAULT.resolve() and DEFAULT_SOURCES_FILE.is_file()
