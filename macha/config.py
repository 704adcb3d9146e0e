"""One typed Settings object for all of Macha.

Sources, highest first: keyword arguments, environment (``MACHA_*``, nested with ``__``), a TOML file
(``--config`` or ``MACHA_CONFIG``), defaults. TOML keys may be written as in the NixOS module
(``autonomyLevel``) or in snake case (``autonomy_level``), one spelling per option. Every number and duration is
bounded and every rule across options is checked here, at load: a value that would crash or invert later is refused
now, in one line naming its key.
"""

from __future__ import annotations

import difflib
import errno
import ipaddress
import json
import logging
import os
import re
import socket
import stat
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from macha.core.errors import ConfigError
from macha.core.severity import RaisedSeverity
from macha.core.units import UNIT_GLOB, UNIT_TEXT

log = logging.getLogger(__name__)

AutonomyLevel = Literal["observe", "suggest", "auto-safe", "auto-full"]

MINUTE, HOUR, DAY = 60, 3600, 86400
#: The longest span any option may name: far enough for every real use, near enough that now() plus or minus it is
#: still a date (timedelta and datetime overflow past year 9999).
MAX_SECONDS = 3650 * DAY

_DURATION = re.compile(r"([0-9]{1,12})([smhd])")
_UNITS = {"s": 1, "m": MINUTE, "h": HOUR, "d": DAY}


def parse_duration(text: str) -> timedelta:
    """A span such as 30s, 10m, 1h or 2d: digits and one unit, no sign (a negative span inverts every deadline)."""
    m = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    try:
        if m is None:
            raise ValueError
        return timedelta(seconds=int(m[1]) * _UNITS[m[2]])
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a duration like 30s, 10m, 1h or 2d") from None


def _show_span(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def duration(minimum: int, maximum: int = MAX_SECONDS) -> Any:
    """A duration option ("30s", "10m", "1h", "2d") checked at load to lie in [minimum, maximum] seconds."""

    def check(text: str) -> str:
        span = parse_duration(text).total_seconds()
        if not minimum <= span <= maximum:
            raise ValueError(f"must be between {_show_span(minimum)} and {_show_span(maximum)}")
        return text

    return Annotated[str, AfterValidator(check)]


#: Ollama's keep_alive: a Go duration ("10m", "1h30m", "0" unloads at once, a negative one keeps the model loaded).
_GO_PART = r"([0-9]{1,9}(?:\.[0-9]{1,9})?)(ns|us|µs|ms|s|m|h)"
_GO_DURATION = re.compile(rf"[-+]?(?:0|(?:{_GO_PART})+)")
_GO_UNITS = {"h": HOUR, "m": MINUTE, "s": 1}


def _keep_alive(text: str) -> str:
    if not _GO_DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration Ollama reads, like 10m, 1h, 0 or -1m")
    # Go refuses spans past 290 years; cap it like every other duration.
    if sum(float(n) * _GO_UNITS.get(u, 0) for n, u in re.findall(_GO_PART, text)) > MAX_SECONDS:
        raise ValueError(f"must be at most {_show_span(MAX_SECONDS)}")
    return text


#: keep_alive as Ollama reads it.
KeepAlive = Annotated[str, AfterValidator(_keep_alive)]


def _http_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return url.rstrip("/") if url else url


#: An optional server URL (http or https), stored without a trailing slash.
HttpUrl = Annotated[str | None, AfterValidator(_http_url)]

#: A duration option such as "30s", "10m", "1h" or "2d" from zero to MAX_SECONDS, checked when settings load.
Duration = duration(0)
#: The same, where zero makes no sense (a zero approval timeout expires every approval at once).
PositiveDuration = duration(1)


def _default_state_dir() -> Path:
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "macha"


class _Section(BaseModel):
    # Infinity and NaN pass every bound check and then crash (or never fire) where the value is used.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class TimescaleSettings(_Section):
    enable: bool = False
    retention_days: int = Field(30, ge=1, le=MAX_SECONDS // DAY)
    port: int = Field(5432, ge=1, le=65535)


class WebInterfaceSettings(_Section):
    enable: bool = True
    port: int = Field(8080, ge=1, le=65535)
    listen_address: str = Field("127.0.0.1", min_length=1, max_length=255,
                                description="where the dashboard listens; anything but loopback wants TLS")
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
                                     description="Host header names the dashboard answers (others get 400)")
    token_file: Path | None = Field(None, description="the login token; unset: stateDir/secrets/web-token, made at "
                                    "first start with mode 0600")
    operator_groups: list[str] = Field(default_factory=lambda: ["wheel"],
                                       description="Unix groups whose members may approve, reject and chat")
    pam_service: str = Field("macha", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the PAM service of the login")
    session_idle: PositiveDuration = Field("30m", description="a session not used for this long logs out")
    login_attempts: int = Field(5, ge=1, le=1000, description="failed logins per source per minute before a pause")
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> "WebInterfaceSettings":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tlsCert and tlsKey go together: set both or neither")
        return self


#: Host names that mean this machine: the MCP server's default Host allowlist, and the listen addresses that need
#: no token file named by the operator.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(address: str) -> bool:
    """Whether a listen address keeps a server on this machine (the default for every interface)."""
    if address in LOOPBACK_NAMES or address.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


class McpServerSettings(_Section):
    """The MCP server (macha-mcp): what other AI assistants may read and propose. Write tools exist only when the
    autonomy level is not observe and readOnly is false."""

    enable: bool = Field(True, description="macha-ai starts and supervises the MCP HTTP server")
    listen_address: str = Field("127.0.0.1", description="address the HTTP server binds")
    port: int = Field(8081, ge=1, le=65535)
    token_file: Path | None = Field(
        None, description="the bearer token's file; unset: stateDir/secrets/mcp-token, created at first start"
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "[::1]"],
        description="Host header names (and Origin hosts) the HTTP server answers; any port",
    )
    read_only: bool = Field(False, description="no write tools at all, whatever the autonomy level")
    respect_autonomy: bool = Field(
        True, description="write tools are judged like the review model's proposals; false: like an operator's"
    )
    max_result_chars: int = Field(
        60_000, ge=2_000, le=4_000_000, description="characters of one tool result or resource, beyond which it is cut"
    )

    @field_validator("listen_address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.:_-]{1,253}", v):
            raise ValueError(f"{v!r} is not an IP address or host name")
        return v

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        for name in v:
            if not re.fullmatch(r"\[?[A-Za-z0-9.:_-]{1,253}\]?", name):
                raise ValueError(f"{name!r} is not a host name (no port, scheme or path)")
        return v


class ActionSettings(_Section):
    """The action catalog's local knobs. Risk levels are not here: they belong to the catalog."""

    approval_timeout: PositiveDuration = Field("24h", description="a queued proposal expires after this long")
    protected_units: list[str] = Field(
        default_factory=list, description="unit names or globs no action may touch, added to the built-in list"
    )
    clean_tmp_roots: list[str] = Field(
        default_factory=lambda: ["/tmp", "/var/tmp"], description="the only trees clean_tmp may delete in"
    )
    max_output_bytes: int = Field(65536, ge=1024, le=64 << 20, description="stdout/stderr kept per executed action")
    max_proposals_per_review: int = Field(20, ge=1, le=200)
    redeliver_after: int = Field(
        120, ge=10, le=30 * DAY, description="seconds before an approved action's task is sent again"
    )

    @field_validator("protected_units")
    @classmethod
    def _globs(cls, v: list[str]) -> list[str]:
        for name in v:
            if not UNIT_GLOB.fullmatch(name):
                raise ValueError(f"{name!r} is not a unit name or glob")
        return v

    @field_validator("clean_tmp_roots")
    @classmethod
    def _temporary_trees(cls, v: list[str]) -> list[str]:
        # The catalog compares resolved paths with these roots, so they are kept resolved.
        resolved: list[str] = []
        for root in v:
            real = tmp_root(root)
            if real not in resolved:
                resolved.append(real)
        return resolved


#: The only trees clean_tmp may work in: the system's temporary-file directories and directories below them.
#: An allow-list, because a deny-list (/, /etc, /root, /var/lib, ...) always misses one. Not /dev/shm or
#: /run/user/*: they hold live shared-memory segments and sockets of running programs, whose age says nothing about
#: whether they are in use (PostgreSQL's dynamic shared memory, agent sockets), and they are memory, not disk.
TMP_TREES = ("/tmp", "/var/tmp")


def tmp_root(root: str) -> str:
    """``root`` resolved (symlinks and ``..``); refused unless it is a temporary-file tree or a safe directory in it."""
    if not isinstance(root, str) or not root.startswith("/") or "\x00" in root:
        raise ValueError(f"{root!r} is not an absolute path")
    real = os.path.realpath(root)
    for tree in dict.fromkeys(os.path.realpath(t) for t in TMP_TREES):
        if real == tree:
            return real
        if real.startswith(tree.rstrip("/") + "/"):
            _trusted_below(root, real, tree)
            return real
    raise ValueError(f"{root!r} resolves to {real}, which is not {', '.join(TMP_TREES)} or a directory below them")


def _trusted_below(root: str, real: str, tree: str) -> None:
    """A root inside a world-writable tree must exist and belong to root or to Macha's user at every level: a
    directory another user owns (or one not made yet) can be swapped for a link to /etc after this check."""
    trusted = {0, os.geteuid()}
    here = real
    while here != tree:
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            raise ValueError(
                f"{root!r} does not exist (create it, owned by root or by Macha's user, before Macha starts)"
            ) from None
        except OSError as exc:
            raise ValueError(f"{root!r} cannot be checked: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{root!r} is not a directory")
        if st.st_uid not in trusted:
            raise ValueError(f"{here} (in {root!r}) belongs to uid {st.st_uid}, who could replace it with a link")
        here = os.path.dirname(here)


class LlmSettings(_Section):
    """How Macha talks to its models. The model names are top-level options (reviewModel, metaModel, ...)."""

    backend: Literal["ollama", "openai", "none"] = Field(
        "ollama", description="ollama (ollamaUrl), openai (an OpenAI-compatible server at openaiUrl) or none (rules)"
    )
    openai_url: HttpUrl = Field(None, description="base URL of an OpenAI-compatible server, e.g. http://h:8000/v1")
    openai_api_key: str | None = None
    timeout: float = Field(180.0, gt=0, le=DAY, description="seconds one model call may take")
    connect_timeout: float = Field(3.0, gt=0, le=HOUR)
    retries: int = Field(2, ge=0, le=10, description="extra attempts after a transient error")
    keep_alive: KeepAlive = Field("10m", description="how long Ollama keeps the model loaded after a call")
    answer_tokens: int = Field(2048, ge=256, le=1 << 20, description="tokens kept free for the model's answer")


    @model_validator(mode="after")
    def _openai_needs_url(self) -> LlmSettings:
        if self.backend == "openai" and not self.openai_url:
            raise ValueError("backend openai needs openaiUrl (e.g. http://127.0.0.1:8000/v1)")
        return self


class MemorySettings(_Section):
    """Semantic memory (Chroma): where it lives and how texts become vectors."""

    enable: bool = Field(True, description="recall similar past issues and remember reviews (Chroma)")
    chroma_url: HttpUrl = Field(
        None, description="a Chroma server (http://host:8000); unset means a persistent store under stateDir"
    )
    embedding: Literal["onnx", "ollama"] = Field(
        "onnx", description="onnx (all-MiniLM-L6-v2 shipped in PyPI packages) or ollama (/api/embed at ollamaUrl)"
    )
    embedding_model: str = Field("nomic-embed-text", description="the Ollama model for embedding = ollama")
    similar_issues: int = Field(5, ge=0, le=50, description="past issues the context window recalls")
    config_paths: list[str] = Field(
        default_factory=lambda: ["/etc/nixos"], description="files or directories of *.nix indexed into config_files"
    )



class MetaSettings(_Section):
    """Layer 4: the meta model's analyses (escalations, background analyses) and chat."""

    max_tool_calls: int = Field(8, ge=0, le=50, description="read-only tool calls per analysis or chat answer")
    max_tokens: int = Field(
        12000, ge=512, le=1 << 20, description="tokens the model may write in one analysis, tool turns included"
    )
    time_limit: int = Field(
        300, ge=10, le=DAY, description="seconds one analysis or chat answer may take, tools included"
    )
    tool_result_tokens: int = Field(1500, ge=100, le=1 << 20, description="a tool's answer is cut to this many tokens")
    dedup_window: int = Field(1800, ge=0, le=MAX_SECONDS, description="seconds an analysed issue is not analysed again")
    review_model_fallback: bool = Field(
        False, description="let the review model answer an escalation no gpu worker took within fallbackAfter"
    )
    fallback_after: int = Field(
        600, ge=30, le=30 * DAY, description="seconds before the review model may answer instead"
    )
    background_interval: int = Field(
        86400, ge=0, le=365 * DAY, description="seconds between background analyses of each host (0: never)"
    )
    chat_wait: int = Field(
        120, ge=5, le=DAY, description="seconds macha-chat waits for the gpu worker to start answering"
    )


class ThresholdSettings(_Section):
    # Every series (percentages, load per core, PSI averages) is zero or more; a negative level is always crossed.
    raise_at: float = Field(ge=0, le=1e9)
    clear_at: float = Field(ge=0, le=1e9)
    sustain: int = Field(3, ge=1, le=10_000, description="samples in a row at or above raise_at before it raises")
    severity: RaisedSeverity = "high"

    @model_validator(mode="after")
    def _hysteresis(self) -> ThresholdSettings:
        if self.clear_at > self.raise_at:
            raise ValueError(f"clearAt ({self.clear_at}) must not be above raiseAt ({self.raise_at})")
        return self


def _default_thresholds() -> dict[str, ThresholdSettings]:
    t = ThresholdSettings
    return {
        "cpu_percent": t(raise_at=90, clear_at=80, sustain=3, severity="medium"),
        "memory_percent": t(raise_at=90, clear_at=80, sustain=3, severity="high"),
        "swap_percent": t(raise_at=80, clear_at=60, sustain=3, severity="medium"),
        "disk_percent": t(raise_at=90, clear_at=85, sustain=1, severity="high"),
        "inode_percent": t(raise_at=90, clear_at=85, sustain=1, severity="high"),
        "load_per_core": t(raise_at=2.0, clear_at=1.5, sustain=3, severity="medium"),
        "psi_memory_full_avg10": t(raise_at=10, clear_at=5, sustain=2, severity="high"),
        "psi_io_full_avg10": t(raise_at=20, clear_at=10, sustain=2, severity="medium"),
    }


class ErrorRateSettings(_Section):
    """Per-unit error-priority rate against the unit's own baseline (an EWMA), not a fixed count."""

    enable: bool = True
    alpha: float = Field(0.2, gt=0, le=1, description="weight of the newest check in the moving average")
    factor: float = Field(5.0, gt=1, le=1e6, description="a rate this many times the unit's average is a spike")
    min_per_minute: float = Field(
        10.0, gt=0, le=1e9, description="below this many errors a minute nothing is a spike"
    )
    severity: RaisedSeverity = "medium"


class BaselineSettings(_Section):
    """Learned per-series baselines of the metrics (beside the fixed thresholds): several models must agree, for
    `sustain` samples in a row, before a series is anomalous."""

    enable: bool = True
    learning_period: PositiveDuration = Field(
        "2d", description="how long a series is only learned before it can be anomalous"
    )
    sustain: int = Field(5, ge=1, le=10_000, description="anomalous samples in a row before it raises (and normal "
                                                         "ones before it clears)")
    sensitivity: Literal["low", "medium", "high"] = Field(
        "medium", description="how far outside its usual band a value must be: low 6, medium 5, high 4 robust sigmas"
    )


class GroupingSettings(_Section):
    """Alertmanager-style grouping of repeated journal events, and authentication storms."""

    window: int = Field(
        300, ge=0, le=30 * DAY, description="seconds after a group's last repeat before a repeat is new again"
    )
    auth_storm_threshold: int = Field(10, ge=2, le=1_000_000, description="failures from one source that make a storm")
    auth_storm_window: int = Field(60, ge=1, le=DAY, description="seconds in which those failures must come")


class ClassifierSettings(_Section):
    """The optional small-model classifier of error lines no pattern knows (useTriggerModel)."""

    calls_per_minute: int = Field(4, ge=1, le=600, description="model calls the classifier may make in a minute")
    batch_size: int = Field(20, ge=1, le=50, description="templates classified per call")
    lookback: PositiveDuration = Field(
        "1h", description="how old an unclassified line may be and still be classified"
    )


class DetectionSettings(_Section):
    """Layer 1 judgement beyond the pattern catalog, learned on this host: novelty (message templates never seen on
    it) and metric baselines."""

    baselines: BaselineSettings = Field(default_factory=BaselineSettings)

    novelty: bool = Field(True, description="raise error-ish lines whose template this host never showed before")
    novelty_learning: Duration = Field(
        "24h", description="how long a host's templates are only learned, from the first one seen, before a new "
        "one is an event"
    )
    novelty_new_for: PositiveDuration = Field(
        "24h", description="how long a template stays new (its error-ish lines raise) unless marked benign sooner"
    )
    novelty_rate_limit: Duration = Field(
        "1h", description="at most one novelty event per unit this often"
    )


class IssueSettings(_Section):
    """Issues: the events, reviews, analyses and actions of one problem on one host (macha-issues)."""

    resolve_after: PositiveDuration = Field(
        "1h", description="an issue whose events stopped and whose reviews say healthy this long is resolved"
    )


class FleetSettings(_Section):
    """Many hosts, one brain: each host's collector beats every triggerInterval; the brain watches the beats."""

    silent_after: Duration | None = Field(
        None, description="a collector not heard from this long raises a high \"host silent\" event (cleared when it "
                          "beats again); unset: 3 x triggerInterval"
    )


REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "unix://")
#: What one `macha-ai` runs (`--role`): everything (the embedded default), a host's collector, the central brain, or
#: the gpu worker.
ROLES = ("all", "collector", "brain", "gpu")
Role = Literal["all", "collector", "brain", "gpu"]


def _read_secret_file(path: Path, option: str) -> str:
    """A URL with a password in it is read from a file (never the command line, where `ps` shows it)."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"{option} {path} cannot be read: {exc.strerror or exc}") from None
    if not text or "\n" in text:
        raise ValueError(f"{option} {path} must hold one URL on one line")
    return text


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the TOML file named by ``_config_file`` / ``MACHA_CONFIG``; keys are normalised to snake case."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None):
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            return _normalise_keys(read_toml(self.path))
        except _SameOption as exc:
            raise ConfigError(f"config file {self.path}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"config file {self.path} nests tables too deeply to be a settings file") from None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except PermissionError:
        raise ConfigError(f"config file {path} cannot be read (permission denied)") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}); TOML files are UTF-8") from None
    except RecursionError:
        raise ConfigError(f"config file {path} nests arrays or tables too deeply to be a settings file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(key: str) -> str:
    return _CAMEL.sub(r"_\1", key).replace("-", "_").lower()


class _SameOption(ValueError):
    pass


def _normalise_keys(value: Any, where: str = "") -> Any:
    """Keys in snake case. Two spellings of one option in one table are refused: which one wins would depend on
    their order in the file, and an operator reading the first would not know the second overrides it."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, item in value.items():
        snake = _snake(str(key))
        if snake in spelled:
            raise _SameOption(f"{where}{spelled[snake]} and {where}{key} are the same option ({where}{snake}); "
                              "keep one")
        spelled[snake] = str(key)
        out[snake] = _normalise_keys(item, f"{where}{snake}.")
    return out


class Settings(BaseSettings):
    """Every option of the ``services.ai-sysadmin`` NixOS module, plus where Macha's parts live."""

    model_config = SettingsConfigDict(
        env_prefix="MACHA_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
    )

    # The four layers.
    autonomy_level: AutonomyLevel = "suggest"
    trigger_interval: int = Field(30, ge=1, le=DAY, description="seconds between Layer 1 checks")
    review_interval: int = Field(60, ge=1, le=DAY, description="seconds between Layer 3 review ticks")
    review_trigger_high_groups: int = Field(
        2, ge=1, le=10_000, description="new high groups that start a review at once"
    )
    review_trigger_medium_groups: int = Field(
        3, ge=1, le=10_000, description="new high+medium groups that start one at once"
    )
    review_repeat_window: int = Field(
        600, ge=0, le=30 * DAY, description="seconds a reviewed group counts as known, not new"
    )
    review_model_failure_limit: int = Field(
        3, ge=1, le=100, description="unusable model answers in a row before the rules reviewer covers critical and "
        "high events and the model is asked again only with backoff"
    )
    review_model_backoff_max: int = Field(
        1800, ge=1, le=DAY, description="seconds: the longest wait before the review model is asked again"
    )
    context_size: int = Field(32768, ge=1024, le=1 << 22, description="token budget of the review context")
    trigger_model: str = "qwen3:1.7b"
    review_model: str = "qwen3:4b"
    meta_model: str = "qwen3:14b"
    use_trigger_model: bool = False

    timescaledb: TimescaleSettings = Field(default_factory=TimescaleSettings)
    web_interface: WebInterfaceSettings = Field(default_factory=WebInterfaceSettings)
    mcp_server: McpServerSettings = Field(default_factory=McpServerSettings)
    actions: ActionSettings = Field(default_factory=ActionSettings)

    enable_sar: bool = True
    sar_collect_frequency: str = Field("*:00/10", description="when SAR data is imported (systemd calendar minutes)")
    sar_directory: str | None = Field(
        None, description="where sadc writes its daily files; unset means /var/log/sysstat or /var/log/sa"
    )
    memory: MemorySettings = Field(default_factory=MemorySettings)
    meta: MetaSettings = Field(default_factory=MetaSettings)
    issues: IssueSettings = Field(default_factory=IssueSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    role: Role = Field("all", description="what macha-ai runs here: all, collector, brain or gpu (macha-ai --role)")

    # Where things live. None means the embedded default under state_dir.
    state_dir: Path = Field(default_factory=_default_state_dir)
    broker_url: str | None = None
    database_url: str | None = None
    broker_url_file: Path | None = Field(None, description="a file holding brokerUrl (it may carry a password)")
    database_url_file: Path | None = Field(None, description="a file holding databaseUrl (it may carry a password)")
    ollama_url: str = "http://127.0.0.1:11434"
    llm: LlmSettings = Field(default_factory=lambda: LlmSettings())

    hostname: str = Field(default_factory=socket.gethostname)
    critical_services: list[str] = Field(default_factory=lambda: ["sshd", "systemd-journald"])

    # Journal reading.
    journal_batch_size: int = Field(1000, ge=1, le=100_000)
    error_rate: ErrorRateSettings = Field(default_factory=ErrorRateSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    grouping: GroupingSettings = Field(default_factory=GroupingSettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    collect_metrics: bool = Field(True, description="sample CPU, memory, disks, load and PSI every triggerInterval")
    check_services: bool = Field(True, description="check criticalServices and failed units every triggerInterval")
    thresholds: dict[str, ThresholdSettings] = Field(
        default_factory=_default_thresholds, description="metric name (or glob) -> raiseAt, clearAt, sustain, severity"
    )
    patterns_file: Path | None = Field(
        None, description="a TOML file of extra journal patterns, benign lines and unnamed-line rules ([[pattern]], "
                          "[[benign]], [[unnamed]] tables, as in the built-in catalog)"
    )
    correlations_file: Path | None = Field(
        None, description="a TOML file of extra correlation rules and signals ([[rule]], [[signal]] tables, as in "
                          "the built-in correlations.toml)"
    )
    journal_directory: str | None = Field(
        None, description="read this journal directory (journalctl -D) instead of the system journal"
    )
    live_follow: bool = Field(True, description="macha-ai follows the journal and checks at once on a critical line")
    journal_max_message: int = Field(
        16384, ge=256, le=1_048_576, description="characters of a message kept; longer ones are cut with a marker"
    )
    journal_initial_lookback: Duration = Field(
        "1h", description="how far back the first read of the system journal goes (journalctl --since)"
    )

    # Queue behaviour. Tasks are hard-limited below the visibility timeout so that a running task is
    # never handed to a second worker.
    task_time_limit: int = Field(600, ge=10, le=7 * DAY)
    broker_visibility_timeout: int = Field(900, ge=2, le=30 * DAY, description="kept above task_time_limit")
    broker_restore_interval: int = Field(
        10, ge=1, le=DAY, description="seconds between sweeps for orphaned messages"
    )
    reconcile_after: int = Field(
        180, ge=10, le=30 * DAY, description="seconds before unreviewed events are re-enqueued"
    )
    lock_ttl: int = Field(
        30, ge=3, le=DAY, description="seconds a single-flight lock outlives a holder that died (live holders renew it)"
    )
    worker_concurrency: int = Field(2, ge=1, le=1024)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("thresholds")
    @classmethod
    def _over_defaults(cls, v: dict[str, ThresholdSettings]) -> dict[str, ThresholdSettings]:
        # An operator's thresholds change or add series; the other defaults stay.
        return {**_default_thresholds(), **v}

    @field_validator("hostname")
    @classmethod
    def _hostname_is_queue_safe(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}", v):
            raise ValueError("must be a host name (letters, digits, '.', '_' and '-')")
        return v

    @field_validator("sar_collect_frequency")
    @classmethod
    def _calendar(cls, v: str) -> str:
        from macha.core.calendar import calendar_to_crontab

        calendar_to_crontab(v)
        return v

    @field_validator("critical_services")
    @classmethod
    def _unit_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not UNIT_TEXT.fullmatch(name):
                raise ValueError(f"{name!r} is not a systemd unit name")
        return v

    @field_validator("state_dir")
    @classmethod
    def _not_under_a_file(cls, v: Path) -> Path:
        # Found now rather than as a NotADirectoryError from whichever part first creates a file there.
        for here in (v, *v.parents):
            try:
                st = here.stat()
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOTDIR:
                    continue
                raise ValueError(f"{here} cannot be checked: {exc.strerror or exc}") from None
            if not stat.S_ISDIR(st.st_mode):
                raise ValueError(f"{here} is a file, not a directory")
            break
        return v

    @model_validator(mode="after")
    def _time_limits(self) -> Settings:
        if self.broker_visibility_timeout <= self.task_time_limit:
            raise ValueError(
                f"broker_visibility_timeout ({self.broker_visibility_timeout}) must be above task_time_limit "
                f"({self.task_time_limit}): a task still running would be handed to a second worker"
            )
        if self.meta.time_limit >= self.task_time_limit:
            raise ValueError(
                f"meta.time_limit ({self.meta.time_limit}) must be below task_time_limit ({self.task_time_limit}): "
                "the worker would kill an analysis before it can stop by itself"
            )
        return self

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(REDIS_SCHEMES):
            raise ValueError("must be a Redis URL (redis://, rediss:// or redis+socket://PATH)")
        return v

    @model_validator(mode="after")
    def _urls_from_files(self) -> Settings:
        for option, url_field, file_field in (("brokerUrlFile", "broker_url", "broker_url_file"),
                                              ("databaseUrlFile", "database_url", "database_url_file")):
            path = getattr(self, file_field)
            if path is None:
                continue
            if getattr(self, url_field) is not None:
                raise ValueError(f"set {option.removesuffix('File')} or {option}, not both")
            url = _read_secret_file(path, option)
            if url_field == "broker_url" and not url.startswith(REDIS_SCHEMES):
                raise ValueError(f"{option} {path}: must hold a Redis URL (redis://, rediss:// or redis+socket://PATH)")
            # Not through validate_assignment (there is none on Settings): the file's URL is the setting.
            object.__setattr__(self, url_field, url)
        return self

    @property
    def silent_after(self) -> float:
        """Seconds without a beat after which a collector is silent."""
        if self.fleet.silent_after is not None:
            return parse_duration(self.fleet.silent_after).total_seconds()
        return 3.0 * self.trigger_interval

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get("MACHA_CONFIG")
        return (
            init_settings,
            env_settings,
            _TomlFileSource(settings_cls, Path(path) if path else None),
        )

    # Derived locations of the embedded default.
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'macha.db'}"

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url is None

    @property
    def redis_socket(self) -> Path:
        return self.state_dir / "redis" / "redis.sock"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"redis+socket://{self.redis_socket}"

    @property
    def mcp_token_file(self) -> Path:
        return self.mcp_server.token_file or self.state_dir / "secrets" / "mcp-token"


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    if not loc:  # a rule across options: its message names them
        return str(err.get("msg", "invalid settings")).removeprefix("Value error, ")
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return f"{loc}: unknown option"
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"{loc}: {err.get('input')!r} is not allowed; expected {allowed}"
    msg = err.get("msg", "invalid value")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    got = err.get("input")
    if isinstance(got, (str, int, float, bool)) and kind != "missing":
        return f"{loc}: {msg} (got {got!r})"
    return f"{loc}: {msg}"


#: MACHA_* variables that are not settings: read by the CLIs, the test suite and the build.
OTHER_VARIABLES = frozenset({"MACHA_CONFIG", "MACHA_DEBUG", "MACHA_MODEL_LANE", "MACHA_REQUIRE_HYPERSCAN",
                             "MACHA_HYPERSCAN_INCLUDE"})
OTHER_PREFIXES = ("MACHA_TEST_",)
_warned: set[str] = set()


def _env_names() -> tuple[set[str], tuple[str, ...]]:
    """The environment variables that set an option, and the prefixes under which any name does (dict options)."""
    names: set[str] = set()
    prefixes: list[str] = []
    for name, field in Settings.model_fields.items():
        var = f"MACHA_{name.upper()}"
        names.add(var)
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names.update(f"{var}__{sub.upper()}" for sub in kind.model_fields)
        elif getattr(kind, "__origin__", None) is dict:
            prefixes.append(f"{var}__")
    return names, tuple(prefixes)


def warn_unknown_variables(environ: Mapping[str, str] = os.environ) -> list[str]:
    """One warning per unknown MACHA_* variable (once per process): a misspelt option is otherwise silently unset."""
    names, prefixes = _env_names()
    warnings = []
    for var in sorted(environ):
        upper = var.upper()
        if (not upper.startswith("MACHA_") or upper in names or upper in OTHER_VARIABLES
                or upper.startswith(prefixes + OTHER_PREFIXES) or upper in _warned):
            continue
        _warned.add(upper)
        # Compared without the shared prefix, which would make every name look alike.
        near = difflib.get_close_matches(upper[6:], sorted(n[6:] for n in names | OTHER_VARIABLES), n=1, cutoff=0.6)
        hint = f"; did you mean MACHA_{near[0]}?" if near else ""
        warnings.append(f"{var} is not a Macha setting and is ignored{hint}")
        log.warning("%s", warnings[-1])
    return warnings


def _env_parse_error(exc: SettingsError) -> str:
    """pydantic-settings says only which field; name the variable and show the JSON it expects."""
    m = re.search(r'field "(\w+)"', str(exc))
    field = m[1] if m else ""
    var = f"MACHA_{field.upper()}"
    for name, value in sorted(os.environ.items()):
        upper = name.upper()
        if field and (upper == var or upper.startswith(f"{var}__")):
            try:
                json.loads(value)
            except ValueError:
                shown = value if len(value) <= 80 else f"{value[:77]}..."
                example = json.dumps([part.strip() for part in value.split(",")]) if "," in value else '["a", "b"]'
                return (f"{name}: {shown!r} is not JSON; a list is written {example}, a table "
                        '{"key": value}')
    return f"{var or 'MACHA_*'}: cannot be parsed ({exc})"


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings, turning every problem into one ConfigError line that names the key."""
    previous = os.environ.get("MACHA_CONFIG")
    if config_file is not None:
        os.environ["MACHA_CONFIG"] = str(config_file)
    try:
        settings = Settings(**overrides)
        warn_unknown_variables()
        return settings
    except SettingsError as exc:
        raise ConfigError(f"invalid setting in MACHA_* environment: {_env_parse_error(exc)}") from None
    except ValidationError as exc:
        errors = exc.errors()
        first = _describe(errors[0])
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        source = os.environ.get("MACHA_CONFIG")
        where = f" in {source} or MACHA_* environment" if source else " in MACHA_* environment"
        raise ConfigError(f"invalid setting{where}: {first}{more}") from None
    finally:
        if config_file is not None:
            if previous is None:
                os.environ.pop("MACHA_CONFIG", None)
            else:
                os.environ["MACHA_CONFIG"] = previous
