"""One typed Settings object for all of Macha.

Sources, highest first: keyword arguments, environment (``MACHA_*``, nested with ``__``), a TOML file
(``--config`` or ``MACHA_CONFIG``), defaults. TOML keys may be written as in the NixOS module
(``autonomyLevel``) or in snake case (``autonomy_level``).
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from macha.errors import ConfigError

AutonomyLevel = Literal["observe", "suggest", "auto-safe", "auto-full"]


def parse_duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=int(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError, OverflowError, TypeError):
        raise ValueError(f"{text!r} is not a duration like 30s, 10m, 1h or 2d") from None


def _valid_duration(text: str) -> str:
    parse_duration(text)
    return text


def _http_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return url.rstrip("/") if url else url


#: An optional server URL (http or https), stored without a trailing slash.
HttpUrl = Annotated[str | None, AfterValidator(_http_url)]

#: A duration option such as "30s", "10m", "1h" or "2d", checked when settings load.
Duration = Annotated[str, AfterValidator(_valid_duration)]


def _default_state_dir() -> Path:
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "macha"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TimescaleSettings(_Section):
    enable: bool = False
    retention_days: int = Field(30, ge=1)
    port: int = Field(5432, ge=1, le=65535)


class WebInterfaceSettings(_Section):
    enable: bool = True
    port: int = Field(8080, ge=1, le=65535)
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1"])


class McpServerSettings(_Section):
    enable: bool = True
    port: int = Field(8081, ge=1, le=65535)
    respect_autonomy: bool = True


class ActionSettings(_Section):
    """The action catalog's local knobs. Risk levels are not here: they belong to the catalog."""

    approval_timeout: Duration = Field("24h", description="a queued proposal expires after this long")
    protected_units: list[str] = Field(
        default_factory=list, description="unit names or globs no action may touch, added to the built-in list"
    )
    clean_tmp_roots: list[str] = Field(
        default_factory=lambda: ["/tmp", "/var/tmp"], description="the only trees clean_tmp may delete in"
    )
    max_output_bytes: int = Field(65536, ge=1024, description="stdout/stderr kept per executed action")
    max_proposals_per_review: int = Field(20, ge=1, le=200)
    redeliver_after: int = Field(120, ge=10, description="seconds before an approved action's task is sent again")

    @field_validator("protected_units")
    @classmethod
    def _globs(cls, v: list[str]) -> list[str]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9:_.@\\*?\[\]-]{1,255}", name):
                raise ValueError(f"{name!r} is not a unit name or glob")
        return v

    @field_validator("clean_tmp_roots")
    @classmethod
    def _absolute(cls, v: list[str]) -> list[str]:
        for root in v:
            if not root.startswith("/") or root.rstrip("/") in ("", "/usr", "/etc", "/nix", "/var", "/home"):
                raise ValueError(f"{root!r} must be an absolute path below a temporary-files tree")
        return v


class LlmSettings(_Section):
    """How Macha talks to its models. The model names are top-level options (reviewModel, metaModel, ...)."""

    backend: Literal["ollama", "openai", "none"] = Field(
        "ollama", description="ollama (ollamaUrl), openai (an OpenAI-compatible server at openaiUrl) or none (rules)"
    )
    openai_url: HttpUrl = Field(None, description="base URL of an OpenAI-compatible server, e.g. http://h:8000/v1")
    openai_api_key: str | None = None
    timeout: float = Field(180.0, gt=0, description="seconds one model call may take")
    connect_timeout: float = Field(3.0, gt=0)
    retries: int = Field(2, ge=0, le=10, description="extra attempts after a transient error")
    keep_alive: str = Field("10m", description="how long Ollama keeps the model loaded after a call")
    answer_tokens: int = Field(2048, ge=256, description="tokens kept free for the model's answer")


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
    max_tokens: int = Field(12000, ge=512, description="tokens the model may write in one analysis, tool turns included")
    time_limit: int = Field(300, ge=10, description="seconds one analysis or chat answer may take, tools included")
    tool_result_tokens: int = Field(1500, ge=100, description="a tool's answer is cut to this many tokens")
    dedup_window: int = Field(1800, ge=0, description="seconds an analysed issue is not analysed again")
    review_model_fallback: bool = Field(
        False, description="let the review model answer an escalation no gpu worker took within fallbackAfter"
    )
    fallback_after: int = Field(600, ge=30, description="seconds before the review model may answer instead")
    background_interval: int = Field(
        86400, ge=0, description="seconds between background analyses of each host (0: never)"
    )
    chat_wait: int = Field(120, ge=5, description="seconds macha-chat waits for the gpu worker to start answering")


class ThresholdSettings(_Section):
    raise_at: float
    clear_at: float
    sustain: int = Field(3, ge=1, description="samples in a row at or above raise_at before it raises")
    severity: Literal["critical", "high", "medium", "low"] = "high"

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
    factor: float = Field(5.0, gt=1, description="a rate this many times the unit's average is a spike")
    min_per_minute: float = Field(10.0, gt=0, description="below this many errors a minute nothing is a spike")
    severity: Literal["critical", "high", "medium", "low"] = "medium"


class GroupingSettings(_Section):
    """Alertmanager-style grouping of repeated journal events, and authentication storms."""

    window: int = Field(300, ge=0, description="seconds after a group's last repeat before a repeat is new again")
    auth_storm_threshold: int = Field(10, ge=2, description="failures from one source that make a storm")
    auth_storm_window: int = Field(60, ge=1, description="seconds in which those failures must come")


class ClassifierSettings(_Section):
    """The optional small-model classifier of error lines no pattern knows (useTriggerModel)."""

    calls_per_minute: int = Field(4, ge=1, description="model calls the classifier may make in a minute")
    batch_size: int = Field(20, ge=1, le=50, description="templates classified per call")
    lookback: Duration = Field("1h", description="how old an unclassified line may be and still be classified")


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
        return _normalise_keys(read_toml(self.path))


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
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(key: str) -> str:
    return _CAMEL.sub(r"_\1", key).replace("-", "_").lower()


def _normalise_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_snake(str(k)): _normalise_keys(v) for k, v in value.items()}
    return value


class Settings(BaseSettings):
    """Every option of the ``services.ai-sysadmin`` NixOS module, plus where Macha's parts live."""

    model_config = SettingsConfigDict(
        env_prefix="MACHA_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    # The four layers.
    autonomy_level: AutonomyLevel = "suggest"
    trigger_interval: int = Field(30, ge=1, description="seconds between Layer 1 checks")
    review_interval: int = Field(60, ge=1, description="seconds between Layer 3 review ticks")
    review_trigger_high_groups: int = Field(2, ge=1, description="new high groups that start a review at once")
    review_trigger_medium_groups: int = Field(3, ge=1, description="new high+medium groups that start one at once")
    review_repeat_window: int = Field(600, ge=0, description="seconds a reviewed group counts as known, not new")
    context_size: int = Field(32768, ge=1024, description="token budget of the review context")
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

    # Where things live. None means the embedded default under state_dir.
    state_dir: Path = Field(default_factory=_default_state_dir)
    broker_url: str | None = None
    database_url: str | None = None
    ollama_url: str = "http://127.0.0.1:11434"
    llm: LlmSettings = Field(default_factory=lambda: LlmSettings())

    hostname: str = Field(default_factory=socket.gethostname)
    critical_services: list[str] = Field(default_factory=lambda: ["sshd", "systemd-journald"])

    # Journal reading.
    journal_batch_size: int = Field(1000, ge=1, le=100_000)
    error_rate: ErrorRateSettings = Field(default_factory=ErrorRateSettings)
    grouping: GroupingSettings = Field(default_factory=GroupingSettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    collect_metrics: bool = Field(True, description="sample CPU, memory, disks, load and PSI every triggerInterval")
    check_services: bool = Field(True, description="check criticalServices and failed units every triggerInterval")
    thresholds: dict[str, ThresholdSettings] = Field(
        default_factory=_default_thresholds, description="metric name (or glob) -> raiseAt, clearAt, sustain, severity"
    )
    patterns_file: Path | None = Field(
        None, description="a TOML file of extra journal patterns ([[pattern]] tables, as in the built-in catalog)"
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
    task_time_limit: int = Field(600, ge=10)
    broker_visibility_timeout: int = Field(900, ge=2)
    broker_restore_interval: int = Field(10, ge=1, description="seconds between sweeps for orphaned messages")
    reconcile_after: int = Field(180, ge=10, description="seconds before unreviewed events are re-enqueued")
    lock_ttl: int = Field(
        30, ge=3, description="seconds a single-flight lock outlives a holder that died (live holders renew it)"
    )
    worker_concurrency: int = Field(2, ge=1)

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
        from macha.collect.sar import calendar_to_crontab

        calendar_to_crontab(v)
        return v

    @field_validator("critical_services")
    @classmethod
    def _unit_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9:_.@\\-]{1,255}", name):
                raise ValueError(f"{name!r} is not a systemd unit name")
        return v

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
            raise ValueError("must be a Redis URL (redis://, rediss:// or redis+socket://PATH)")
        return v

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


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or "settings"
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


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings, turning every problem into one ConfigError line that names the key."""
    previous = os.environ.get("MACHA_CONFIG")
    if config_file is not None:
        os.environ["MACHA_CONFIG"] = str(config_file)
    try:
        return Settings(**overrides)
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
