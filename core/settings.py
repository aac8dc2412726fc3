"""Kate's one settings object, read from the environment (documented in docs/settings.md).

The bottom of Kate's layers: the standard library and `qa_engine.types` (records and model names, no
torch) only, so every process, the web app included, can read its settings without loading a model."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from qa_engine.types import DEFAULT_MODEL, DEFAULT_RANKER, RankerConfig, ReaderConfig

REPOSITORY = Path(__file__).resolve().parents[1]  # the checkout, or site-packages once installed
DEFAULT_SOURCES_FILE = REPOSITORY / "knowledge" / "sources.yml"  # the demo intranet's, package data
# The QA dev data of a development checkout (`../shared` beside the repository); absent for users.
SHARED_QA_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qa" / "dev"
SHARED_QA_TRAIN = SHARED_QA_DEV.parent / "train"


# chosen by `kate feedback match-threshold` (docs/verified-answers.md)
VERIFIED_MIN_SIMILARITY = 0.82
VERIFIED_STRICT_SIMILARITY = 0.935
# Chosen on the Lumen test intranet (docs/qa-results.md, "Answers an employee can act on"): the planted
# conflict's two answers were 0.035 apart, false ones (two figures of one unit on unrelated pages) 0.135
# and more; no question of the Lumen or demo sets came above 0.925 to a FAQ question not its own.
CONFLICT_MARGIN = 0.1
AUDIENCE_MARGIN = 0.5
FAQ_MIN_SIMILARITY = 0.94


class SettingsError(ValueError):
    """A setting has a value Kate cannot use; the message names the variable."""


def _int_at_least(name: str, raw: str, least: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < least:
        raise SettingsError(f"{name} must be >= {least}, got {value}")
    return value


def _positive_int(name: str, raw: str) -> int:
    return _int_at_least(name, raw, 1)


def _count(name: str, raw: str) -> int:
    """An integer >= 0 (0: the feature is off)."""
    return _int_at_least(name, raw, 0)


def _float(name: str, raw: str, *, allow_zero: bool = False) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise SettingsError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed and not (value.startswith("cuda:") and "cuda" in allowed):
            raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _optional_float(name: str, raw: str) -> float | None:
    return None if raw.strip() == "" else _float_any(name, raw)


def _float_any(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def mask_url(url: str) -> str:
    """`url` with its password replaced by *** (redis://:s3cret@host -> redis://:***@host), for screens,
    logs and error messages."""
    try:
        parts = urlsplit(url)
        if not parts.password:
            return url
    except ValueError:
        return "(an unreadable URL)"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


@dataclass(frozen=True)
class Settings:
    home: Path
    qa_model: str
    device: str
    precision: str
    batch_size: int
    max_batch_tokens: int | None
    max_length: int
    stride: int
    max_answer_tokens: int
    top_k: int
    min_score: float | None
    threads: int | None
    fetch_timeout: float
    max_page_bytes: int
    log_level: str
    redis_url: str | None  # None: REDIS_URL unset, so Kate may start a local Redis of its own
    redis_prefix: str
    cache_ttl: float
    fetch_workers: int
    fetch_budget: float
    # the fetching policy (knowledge/fetch_policy.py): comma-separated hosts ("*.example.com") and networks
    fetch_allow: str  # "": everything but the built-in deny list (link-local, cloud metadata, broadcast)
    fetch_deny: str
    sources_file: Path
    demo_port: int
    ranker: str | None  # None: the reader reads every passage
    rank_top: int
    index_poll: float  # seconds between an action server's checks for changed pages
    refresh_interval: float  # seconds between the refresher's checks of a page (0: no refresher)
    rank_weight: float
    rank_margin: float  # read only passages whose cosine is this close to the best one's (0: no cut)
    read_first: int  # passages read first; the rest of the ranking only when their answer is not sure
    read_sure: float  # the calibrated confidence that makes the first reading enough (0: read all at once)
    read_cache: int  # readings remembered (same question, same passages: same spans, no forward pass)
    read_tokens: int  # at most this many passage tokens read per question (0: no bound)
    read_tokens_busy: int  # the bound while the reader is behind (0: the same as read_tokens)
    read_behind: float  # seconds questions waited for the reader that make it behind
    rasa_port: int
    actions_port: int
    answer_budget: float  # seconds the bot may spend on one intranet answer (fetch + rank + read)
    # below this calibrated confidence the bot says it is unsure instead of answering; None: the threshold
    # chosen with the reader's calibration (`kate qa calibrate`)
    answer_min_confidence: float | None
    max_question_chars: int  # longer messages are refused with a clear reply, not read
    conversation_days: int  # Rasa forgets a conversation this long after its last message (0: never)
    answer_ttl: float  # seconds a rated answer stays votable (its 👍/👎 buttons)
    console_language: str  # en | fr | ja: the admin console's language; "" = each browser's own
    hr_contact: str  # the contact Kate gives when the console has none: mail, http(s) URL and/or phone
    # a verified answer is a candidate for a new question from this cosine on (the reader then confirms
    # it on its passage); a typed one, found in no passage, needs `verified_strict_similarity`
    verified_min_similarity: float
    verified_strict_similarity: float
    # the secret the intranet signs employee tokens with (HS256 JWT, knowledge/audience.py); "" = none
    audience_secret: str
    # two pages' answers that disagree are both shown when the second's confidence is within this of the
    # best's; an answer from the employee's own audience's page goes first within `audience_margin`
    conflict_margin: float
    audience_margin: float
    faq_min_similarity: float  # a FAQ pair's answer is given whole from this question-question cosine on
    followup_window: float  # seconds a short follow-up is read together with the previous question
    web_port: int  # the web app: chat page, widget script, admin console
    production: bool  # KATE_ENV=production: no generated admin password, Secure cookies
    admin_user: str
    admin_password_hash: str  # "" outside production: a random password kept in $KATE_HOME/admin-password
    admin_session_hours: float
    # reverse proxies whose X-Forwarded-For the web app believes (addresses or networks, comma-separated)
    trusted_proxies: str
    public_rasa_url: str  # where browsers reach Rasa's socket.io; "" = the web app's host, KATE_RASA_PORT
    qa_url: str  # the reader service the action server calls; "" = read in-process
    qa_port: int  # where `kate qa serve` listens
    qa_batch_wait_ms: float  # how long the reader service gathers concurrent questions into one call
    quantize: str  # none | int8: the reader's Linear layers in int8 on the CPU (faster, costs F1)
    ranker_engine: str  # torch | onnx | auto (ONNX Runtime where torch would encode in fp32)
    reader_engine: str  # torch | onnx (ONNX Runtime, fp32 on a CPU: measured, not faster; docs/benchmarks.md)
    rasa_venv: Path  # the Python 3.10 environment Rasa runs in (./kate.sh setup makes .venv-rasa)
    url_variables: dict[str, str]  # KATE_URL_* variables, which a seed file's URLs may use

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def reader_config(self, model: str | None = None) -> ReaderConfig:
        return ReaderConfig(
            model=model or self.qa_model,
            device=self.device,
            precision=self.precision,
            batch_size=self.batch_size,
            max_batch_tokens=self.max_batch_tokens,
            max_length=self.max_length,
            stride=self.stride,
            max_answer_tokens=self.max_answer_tokens,
            num_threads=self.threads,
            models_dir=str(self.models_dir),
            quantize=self.quantize,
            engine=self.reader_engine,
        )

    def ranker_config(self) -> RankerConfig | None:
        if self.ranker is None:
            return None
        return RankerConfig(
            model=self.ranker,
            models_dir=str(self.models_dir),
            device=self.device,
            precision=self.precision,
            num_threads=self.threads,
            engine=self.ranker_engine,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        home = Path(get("KATE_HOME", str(Path.home() / ".cache" / "kate"))).expanduser()
        threads = get("KATE_THREADS", "")
        max_batch_tokens = get("KATE_MAX_BATCH_TOKENS", "")
        settings = cls(
            home=home,
            qa_model=get("KATE_QA_MODEL", DEFAULT_MODEL),
            device=_choice("auto", "cpu", "cuda")("KATE_DEVICE", get("KATE_DEVICE", "auto")),
            precision=_choice("auto", "fp32", "fp16", "bf16")(
                "KATE_PRECISION", get("KATE_PRECISION", "auto")
            ),
            batch_size=_positive_int("KATE_BATCH_SIZE", get("KATE_BATCH_SIZE", "64")),
            max_batch_tokens=_positive_int("KATE_MAX_BATCH_TOKENS", max_batch_tokens)
            if max_batch_tokens
            else None,
            max_length=_positive_int("KATE_MAX_LENGTH", get("KATE_MAX_LENGTH", "384")),
            stride=_positive_int("KATE_STRIDE", get("KATE_STRIDE", "128")),
            max_answer_tokens=_positive_int("KATE_MAX_ANSWER_TOKENS", get("KATE_MAX_ANSWER_TOKENS", "30")),
            top_k=_positive_int("KATE_TOP_K", get("KATE_TOP_K", "3")),
            min_score=_optional_float("KATE_MIN_SCORE", get("KATE_MIN_SCORE", "")),
            threads=_positive_int("KATE_THREADS", threads) if threads else None,
            fetch_timeout=_float("KATE_FETCH_TIMEOUT", get("KATE_FETCH_TIMEOUT", "10")),
            max_page_bytes=_positive_int("KATE_MAX_PAGE_BYTES", get("KATE_MAX_PAGE_BYTES", "5000000")),
            log_level=_choice("debug", "info", "warning", "error")(
                "KATE_LOG_LEVEL", get("KATE_LOG_LEVEL", "warning")
            ),
            redis_url=get("REDIS_URL", "") or None,
            redis_prefix=get("KATE_REDIS_PREFIX", "kate:"),
            cache_ttl=_float("KATE_CACHE_TTL", get("KATE_CACHE_TTL", "3600")),
            fetch_workers=_positive_int("KATE_FETCH_WORKERS", get("KATE_FETCH_WORKERS", "8")),
            fetch_budget=_float("KATE_FETCH_BUDGET", get("KATE_FETCH_BUDGET", "3")),
            fetch_allow=get("KATE_FETCH_ALLOW", ""),
            fetch_deny=get("KATE_FETCH_DENY", ""),
            sources_file=Path(get("KATE_SOURCES_FILE", str(DEFAULT_SOURCES_FILE))).expanduser(),
            demo_port=_positive_int("KATE_DEMO_PORT", get("KATE_DEMO_PORT", "8765")),
            ranker=None
            if get("KATE_RANKER", DEFAULT_RANKER).lower() == "none"
            else get("KATE_RANKER", DEFAULT_RANKER),
            rank_top=_positive_int("KATE_RANK_TOP", get("KATE_RANK_TOP", "10")),
            index_poll=_float("KATE_INDEX_POLL", get("KATE_INDEX_POLL", "2")),
            refresh_interval=_float(
                "KATE_REFRESH_INTERVAL", get("KATE_REFRESH_INTERVAL", "3600"), allow_zero=True
            ),
            rank_weight=_float("KATE_RANK_WEIGHT", get("KATE_RANK_WEIGHT", "10"), allow_zero=True),
            rank_margin=_float("KATE_RANK_MARGIN", get("KATE_RANK_MARGIN", "0.05"), allow_zero=True),
            read_first=_positive_int("KATE_READ_FIRST", get("KATE_READ_FIRST", "2")),
            read_sure=_float("KATE_READ_SURE", get("KATE_READ_SURE", "0.4"), allow_zero=True),
            read_cache=_count("KATE_READ_CACHE", get("KATE_READ_CACHE", "2048")),
            read_tokens=_count("KATE_READ_TOKENS", get("KATE_READ_TOKENS", "640")),
            read_tokens_busy=_count("KATE_READ_TOKENS_BUSY", get("KATE_READ_TOKENS_BUSY", "320")),
            read_behind=_float("KATE_READ_BEHIND", get("KATE_READ_BEHIND", "0.25")),
            rasa_port=_positive_int("KATE_RASA_PORT", get("KATE_RASA_PORT", "5005")),
            actions_port=_positive_int("KATE_ACTIONS_PORT", get("KATE_ACTIONS_PORT", "5055")),
            answer_budget=_float("KATE_ANSWER_BUDGET", get("KATE_ANSWER_BUDGET", "20")),
            answer_min_confidence=_optional_float(
                "KATE_ANSWER_MIN_CONFIDENCE", get("KATE_ANSWER_MIN_CONFIDENCE", "")
            ),
            max_question_chars=_positive_int(
                "KATE_MAX_QUESTION_CHARS", get("KATE_MAX_QUESTION_CHARS", "1000")
            ),
            conversation_days=_count("KATE_CONVERSATION_DAYS", get("KATE_CONVERSATION_DAYS", "30")),
            answer_ttl=_float("KATE_ANSWER_TTL", get("KATE_ANSWER_TTL", str(30 * 86400))),
            console_language=_choice("", "en", "fr", "ja")(
                "KATE_CONSOLE_LANGUAGE", get("KATE_CONSOLE_LANGUAGE", "")
            ),
            hr_contact=get("KATE_HR_CONTACT", ""),
            verified_min_similarity=_float(
                "KATE_VERIFIED_MIN_SIMILARITY",
                get("KATE_VERIFIED_MIN_SIMILARITY", str(VERIFIED_MIN_SIMILARITY)),
            ),
            verified_strict_similarity=_float(
                "KATE_VERIFIED_STRICT_SIMILARITY",
                get("KATE_VERIFIED_STRICT_SIMILARITY", str(VERIFIED_STRICT_SIMILARITY)),
            ),
            audience_secret=get("KATE_AUDIENCE_SECRET", ""),
            conflict_margin=_float(
                "KATE_CONFLICT_MARGIN", get("KATE_CONFLICT_MARGIN", str(CONFLICT_MARGIN)), allow_zero=True
            ),
            audience_margin=_float(
                "KATE_AUDIENCE_MARGIN", get("KATE_AUDIENCE_MARGIN", str(AUDIENCE_MARGIN)), allow_zero=True
            ),
            faq_min_similarity=_float(
                "KATE_FAQ_MIN_SIMILARITY", get("KATE_FAQ_MIN_SIMILARITY", str(FAQ_MIN_SIMILARITY))
            ),
            followup_window=_float(
                "KATE_FOLLOWUP_WINDOW", get("KATE_FOLLOWUP_WINDOW", "300"), allow_zero=True
            ),
            web_port=_positive_int("KATE_WEB_PORT", get("KATE_WEB_PORT", "8080")),
            production=_choice("development", "production")("KATE_ENV", get("KATE_ENV", "development"))
            == "production",
            admin_user=get("KATE_ADMIN_USER", "admin"),
            admin_password_hash=get("KATE_ADMIN_PASSWORD_HASH", ""),
            admin_session_hours=_float("KATE_ADMIN_SESSION_HOURS", get("KATE_ADMIN_SESSION_HOURS", "8")),
            trusted_proxies=""
            if get("KATE_TRUSTED_PROXIES", "").lower() == "none"
            else get("KATE_TRUSTED_PROXIES", "127.0.0.1,::1"),
            public_rasa_url=get("KATE_PUBLIC_RASA_URL", "").rstrip("/"),
            qa_url=get("KATE_QA_URL", "").rstrip("/"),
            qa_port=_positive_int("KATE_QA_PORT", get("KATE_QA_PORT", "8500")),
            qa_batch_wait_ms=_float(
                "KATE_QA_BATCH_WAIT_MS", get("KATE_QA_BATCH_WAIT_MS", "5"), allow_zero=True
            ),
            quantize=_choice("none", "int8")("KATE_QUANTIZE", get("KATE_QUANTIZE", "none")),
            ranker_engine=_choice("auto", "torch", "onnx")(
                "KATE_RANKER_ENGINE", get("KATE_RANKER_ENGINE", "auto")
            ),
            reader_engine=_choice("torch", "onnx")("KATE_READER_ENGINE", get("KATE_READER_ENGINE", "torch")),
            rasa_venv=Path(get("KATE_RASA_VENV", str(REPOSITORY / ".venv-rasa"))).expanduser(),
            url_variables={k: v for k, v in env.items() if k.startswith("KATE_URL_")},
        )
        if settings.qa_url and not settings.qa_url.startswith(("http://", "https://")):
            raise SettingsError(f"KATE_QA_URL must be an http(s) URL, got {settings.qa_url!r}")
        if env.get("KATE_ANSWER_MIN_SCORE", "").strip():
            raise SettingsError(
                "KATE_ANSWER_MIN_SCORE was a raw logit margin whose meaning changed with every retraining; "
                "set KATE_ANSWER_MIN_CONFIDENCE (a calibrated probability from 0 to 1) instead"
            )
        conf = settings.answer_min_confidence
        if conf is not None and not 0.0 <= conf <= 1.0:
            raise SettingsError(f"KATE_ANSWER_MIN_CONFIDENCE must be between 0 and 1, got {conf:g}")
        if settings.stride >= settings.max_length:
            raise SettingsError("KATE_STRIDE must be smaller than KATE_MAX_LENGTH")
        return settings

    def describe(self) -> list[tuple[str, str]]:
        """Every setting for people to read (`kate settings`), secrets masked: a Redis password shows
        as ***, the admin password hash only as whether it is set."""
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "redis_url" and value:
                value = mask_url(value)
            elif f.name in ("audience_secret", "admin_password_hash"):
                value = "(set)" if value else "(not set)"
            shown.append((f.name, str(value)))
        return shown
