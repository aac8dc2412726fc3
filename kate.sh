#!/usr/bin/env bash
# Kate's launcher. The README's two commands go through it:
#   ./kate.sh up     set up (when needed) and run Kate
#   ./kate.sh test   set up (when needed) and run the whole test suite
# Anything else is passed to the `kate` CLI inside .venv (./kate.sh ask "...", ./kate.sh qa eval ...).
# Setting up is idempotent: .venv is (re)built only when it is missing or pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.kate-setup"

say() { printf '\033[1mkate.sh:\033[0m %s\n' "$*" >&2; }

# Find an interpreter of the wanted minor version (3.11 for Kate, 3.10 for Rasa) without hard-coding a path:
# the one on PATH, else the newest pyenv build of that version.
find_python() {
    local want="$1" cand
    for cand in "python$want" python3; do
        if command -v "$cand" >/dev/null 2>&1 &&
            [ "$("$cand" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; then
            command -v "$cand"; return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        cand="$(ls -d "$(pyenv root)"/versions/"$want".*/bin/python"$want" 2>/dev/null | sort -V | tail -n 1)"
        if [ -n "$cand" ] && [ -x "$cand" ]; then echo "$cand"; return 0; fi
    fi
    return 1
}

# pip's own errors still show; only the notices about absent mirror folders some machines configure are dropped.
pip_install() {
    local rc=0
    "$VENV/bin/python" -m pip install --quiet "$@" 2>&1 |
        { grep -v 'is ignored: it is neither a file nor a directory' || true; } || rc=$?
    return "$rc"
}

# Debian packages: redis-server (Kate starts its own Redis when none answers) and npm (the widget's
# browser libraries) to run Kate; chromium too to run the browser tests. Arguments: "command:package".
apt_install_missing() {
    local missing=() pair
    for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "missing system packages: ${missing[*]} (install them with your package manager)"
        return 0
    fi
    say "installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_system_packages() { apt_install_missing redis-server:redis-server npm:npm; }

# The widget bundles socket.io-client from npm (no CDN); reinstalled when its lock file changes.
WIDGET_DIR="$ROOT/admin/widget"
ensure_web_assets() {
    local stamp="$WIDGET_DIR/node_modules/.kate-setup" want
    want="$(sha256sum "$WIDGET_DIR/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
    command -v npm >/dev/null 2>&1 || { say "npm not found: install Node.js and npm first"; exit 1; }
    say "installing the widget's browser libraries (npm ci)"
    (cd "$WIDGET_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$stamp"
}

setup_fingerprint() { cat pyproject.toml kate.sh | sha256sum | cut -d' ' -f1; }

ensure_venv() {
    ensure_system_packages
    local want; want="$(setup_fingerprint)"
    if [ -x "$VENV/bin/kate" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then return 0; fi
    local py
    py="$(find_python 3.11)" || { say "Python 3.11 not found (PATH or pyenv): install it first"; exit 1; }
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating .venv with $py"
        "$py" -m venv "$VENV"
    fi
    say "installing Kate and its dependencies into .venv (first run takes a few minutes)"
    # torch first and pinned: an unpinned resolution would fetch the CUDA build (gigabytes).
    pip_install --upgrade pip
    pip_install "torch==2.13.0"
    pip_install -e ".[offline,dev]"
    echo "$want" >"$STAMP"
    say ".venv ready"
}

# Rasa 3.6 runs on Python 3.10 only: its own environment, as Rasa ships its own image.
RASA_VENV="$ROOT/.venv-rasa"
RASA_PIN="rasa==3.6.21"
# The NLU's dense featurizer (bot/components/dense.py) runs the multilingual encoder through ONNX Runtime:
# no CPU build of torch exists for Python 3.10 on PyPI. py3langid: the language detector
# (bot/components/language.py); 0.2.2, the last release that does not require numpy 2 (Rasa pins 1.23).
RASA_EXTRAS="onnxruntime==1.23.2 tokenizers==0.23.3 py3langid==0.2.2"
ensure_rasa_venv() {
    local stamp="$RASA_VENV/.kate-setup"
    if [ -x "$RASA_VENV/bin/rasa" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$RASA_PIN $RASA_EXTRAS" ]; then
        return 0
    fi
    local py
    py="$(find_python 3.10)" || { say "Python 3.10 not found (PATH or pyenv): Rasa 3.6 needs it"; exit 1; }
    [ -x "$RASA_VENV/bin/python" ] || { say "creating .venv-rasa with $py"; "$py" -m venv "$RASA_VENV"; }
    say "installing $RASA_PIN into .venv-rasa (first run takes a few minutes)"
    VENV="$RASA_VENV" pip_install --upgrade pip
    # shellcheck disable=SC2086 # RASA_EXTRAS is a list of pins
    VENV="$RASA_VENV" pip_install "$RASA_PIN" $RASA_EXTRAS
    echo "$RASA_PIN $RASA_EXTRAS" >"$stamp"
    say ".venv-rasa ready"
}

run_tests() {
    ensure_venv
    ensure_rasa_venv
    ensure_web_assets
    apt_install_missing chromium:chromium  # the browser tests drive Debian's Chromium
    [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || apt_install_missing _:fonts-noto-color-emoji
    say "ruff"
    "$VENV/bin/ruff" check .
    say "pytest"
    local rc=0
    "$VENV/bin/python" -m pytest "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then
        say "pytest collected no tests: a suite that runs nothing is a failure"
        return 1
    fi
    return "$rc"
}

cmd="${1:-up}"
case "$cmd" in
    test) shift; run_tests "$@" ;;
    setup) ensure_venv; ensure_rasa_venv; ensure_web_assets ;;
    up) ensure_venv; ensure_rasa_venv; ensure_web_assets; exec "$VENV/bin/kate" "$@" ;;
    *) ensure_venv; exec "$VENV/bin/kate" "$@" ;;
esac
