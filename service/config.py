"""Settings: every knob of the service, read once from TEXTCLF_* environment variables and validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.artifact import AUTO_GRAPH, DEFAULT_MODEL_DIR
from service.cpus import available_cpus
from service.logs import LogFormat, LogLevel
from service.tokens import TOKENS_FILE_FORMAT, read_tokens_file, token_problem
from service.worker_settings import WorkerSettings

ENV_PREFIX = "TEXTCLF_"
OTEL_PREFIX = "OTEL_"


class TracingSettings(BaseSettings):
    """The OpenTelemetry variables that decide whether and where the service exports traces.

    Their names are the standard OTEL_* ones, so a platform's usual settings work unchanged; the
    SDK reads the others itself (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER,
    OTEL_BSP_*, the exporter's headers and timeout).
    """

    model_config = SettingsConfigDict(env_prefix=OTEL_PREFIX, frozen=True, extra="ignore")

    sdk_disabled: bool = Field(False, description="true turns tracing off whatever else is set")
    service_name: str = Field("textclf-service", min_length=1, description="the service.name of the spans")
    traces_exporter: Literal["otlp", "none"] | None = Field(
        None, description="otlp turns tracing on (to the default endpoint if none is set); none turns it off"
    )
    exporter_otlp_endpoint: str | None = Field(
        None, description="collector base URL; setting it turns tracing on"
    )
    exporter_otlp_traces_endpoint: str | None = Field(
        None, description="the traces URL, overriding the base one; setting it turns tracing on"
    )
    exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf", description="how spans are sent to the collector"
    )
    exporter_otlp_traces_protocol: Literal["http/protobuf", "grpc"] | None = Field(
        None, description="the protocol for traces, overriding the general one"
    )

    @property
    def enabled(self) -> bool:
        """Off by default: on when an exporter or an endpoint is asked for, and not disabled."""
        if self.sdk_disabled or self.traces_exporter == "none":
            return False
        endpoint = self.exporter_otlp_endpoint or self.exporter_otlp_traces_endpoint
        return self.traces_exporter == "otlp" or bool(endpoint)

    @property
    def protocol(self) -> Literal["http/protobuf", "grpc"]:
        """The protocol spans are exported with."""
        return self.exporter_otlp_traces_protocol or self.exporter_otlp_protocol


class ModelSettings(BaseSettings):
    """What a model worker is told, and all it is told: the model, how it runs, how it logs. The
    service's Settings extend them, so each is declared once; the front passes them on
    (`for_model_workers`), and a worker checks nothing of the front's (a tokens file that went
    missing must not stop a replacement worker)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    model_dir: Path = Field(DEFAULT_MODEL_DIR, description="artifact folder from models.build")
    model_worker_nice: int = Field(
        5,
        ge=0,
        le=19,
        description="niceness of pool model workers: the front wins a shared core; 0 = same priority",
    )
    intra_op_spinning: bool = Field(False, description="let ONNX Runtime spin-wait between ops")
    warmup_runs: int = Field(10, ge=0, le=10_000, description="inferences run before reporting ready")
    model_graph: str = Field(
        AUTO_GRAPH,
        min_length=1,
        description="which of the artifact's int8 graphs to serve (`fused`, `unfused`); auto = the one "
        "the first model worker times fastest at start-up",
    )
    graph_trial_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="how long the first model worker times the artifact's graphs at start-up (auto); "
        "0 = serve the fused one untimed",
    )
    log_level: LogLevel = Field("info", description="log level")
    log_format: LogFormat = Field("json", description="one JSON object per line, or text")

    def for_model_workers(self) -> WorkerSettings:
        """What each model worker is told: these fields, and only these."""
        return WorkerSettings(**self.model_dump(include=set(ModelSettings.model_fields)))


class Settings(ModelSettings):
    """Service configuration. Only this module reads the environment."""

    host: str = Field("127.0.0.1", description="interface to bind")
    port: int = Field(8000, ge=1, le=65535, description="TCP port")
    workers: int = Field(
        0, ge=0, le=256, description="model worker processes; 0 = CPUs available (cgroup quota aware)"
    )
    serving: Literal["pool", "colocated"] = Field(
        "pool",
        description="pool: HTTP fronts feed model worker processes from one queue; "
        "colocated: each HTTP process runs its own model",
    )
    fronts: int = Field(1, ge=1, le=64, description="HTTP processes in pool mode; each owns workers/fronts")
    cache_entries: int = Field(
        100_000, ge=0, description="result cache entries per HTTP process; 0 disables the cache"
    )
    cache_max_bytes: int = Field(
        64 * 2**20, ge=0, description="result cache memory bound per HTTP process, bytes"
    )
    cache_ttl_seconds: float = Field(0.0, ge=0, description="result cache time to live; 0 = no expiry")
    max_text_chars: int = Field(10_000, ge=1, le=1_000_000, description="longest accepted text, characters")
    max_batch: int = Field(64, ge=1, le=10_000, description="most texts in one batch request")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest accepted request body, bytes")
    request_read_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="request headers, then its body, not received within this: 408 (slow clients)",
    )
    # nginx's large_client_header_buffers (4 x 8k): a request line or a header line over 8 KiB, or
    # a head over 32 KiB, is refused while it arrives; uvicorn with httptools bounds none of them.
    max_request_line_bytes: int = Field(
        8192,
        ge=256,
        le=1_048_576,
        description="request line (method, target, version), bytes; past it: 414 uri_too_long, closed",
    )
    max_header_line_bytes: int = Field(
        8192,
        ge=256,
        le=1_048_576,
        description="each header line, bytes; past it: 431 headers_too_large, closed",
    )
    max_head_bytes: int = Field(
        32768,
        ge=512,
        le=16_777_216,
        description="the whole request head (request line and headers), bytes; past it: 431, closed",
    )
    max_connections: int = Field(
        1024,
        ge=1,
        le=1_000_000,
        description="open connections per HTTP process; past it: 503 too_many_connections, closed",
    )
    max_in_flight: int = Field(
        256,
        ge=1,
        le=100_000,
        description="API requests held at once per model worker (a front admits this x its workers); "
        "past it: 429 + Retry-After. A hard cap: admission_wait_seconds bounds the wait before it",
    )
    admission_wait_seconds: float = Field(
        0.1,
        ge=0,
        le=60,
        description="a cache miss that would wait longer for the model (texts ahead x recent time per "
        "text / workers) gets 429 + Retry-After; 0: the bound is max_in_flight texts per worker instead",
    )
    queue_timeout_seconds: float = Field(
        5.0, gt=0, description="a cache miss that waited longer for the model gets 503 + Retry-After"
    )
    # The longest text the model takes (256 tokens) runs in 41 ms on the 6-layer teacher on this
    # machine's slowest int8 kind: 2 s leaves a margin of ~50x, and under the queue timeout, so a
    # job that timed out early in its wait is still retried.
    job_timeout_seconds: float = Field(
        2.0,
        gt=0,
        description="a job running longer on a model worker gets the worker killed and replaced "
        "(the job retried once, else 503 model_timeout); colocated: the process fails readiness, "
        "then liveness",
    )
    unready_liveness_seconds: float = Field(
        60.0,
        gt=0,
        description="no model worker ready for this long: /health/live answers 503, so the pod is restarted",
    )
    # Whole seconds: uvicorn's drain timeout is an int, and 0.5 must not quietly become 0.
    graceful_shutdown_seconds: int = Field(
        25, ge=1, description="how long SIGTERM waits for in-flight requests, whole seconds"
    )
    metrics_dir: Path | None = Field(
        None, description="multiprocess metrics folder, emptied at start; default: a new temporary folder"
    )
    api_tokens: SecretStr = Field(
        SecretStr(""),
        description="bearer tokens, comma-separated (each 16+ characters, no whitespace); set (or a "
        "tokens file) to require one",
    )
    api_tokens_file: Path | None = Field(
        None,
        description="file with one bearer token per line, blank and # lines skipped (a mounted secret); "
        "adds to api_tokens",
    )
    open_health: bool = Field(True, description="health routes need no token (Kubernetes probes)")
    open_metrics: bool = Field(True, description="/metrics needs no token (Prometheus scrapes)")
    access_log: bool = Field(
        False, description="log a line per request (method, route, status, time, request id; never texts)"
    )
    # Read from the standard OTEL_* variables, not from a TEXTCLF_ one.
    tracing: TracingSettings = Field(default_factory=TracingSettings, description="OpenTelemetry (OTEL_*)")

    @model_validator(mode="after")
    def _cache_bounds(self) -> Settings:
        if self.cache_entries and not self.cache_max_bytes:
            raise ValueError(
                "cache_max_bytes must be > 0 when cache_entries > 0 (set cache_entries=0 to disable)"
            )
        return self

    @model_validator(mode="after")
    def _head_bounds(self) -> Settings:
        longest_line = max(self.max_request_line_bytes, self.max_header_line_bytes)
        if self.max_head_bytes < longest_line:
            raise ValueError(
                f"max_head_bytes ({self.max_head_bytes}) must be at least the longest line allowed "
                f"({longest_line}): the head holds the request line and the header lines"
            )
        return self

    @field_validator("api_tokens")
    @classmethod
    def _tokens_fit(cls, value: SecretStr) -> SecretStr:
        # Says which token by its position, never its value (load_settings hides the input too).
        for number, token in enumerate(value.get_secret_value().split(","), start=1):
            problem = token_problem(token.strip()) if token.strip() else None
            if problem is not None:
                raise ValueError(f"the comma-separated token {number}: {problem}")
        return value

    @model_validator(mode="after")
    def _tokens_file_readable(self) -> Settings:
        if self.api_tokens_file is not None and not self.api_tokens_file.is_file():
            raise ValueError(f"api_tokens_file {self.api_tokens_file} is not a readable file")
        return self

    def tokens_file_problems(self) -> list[str]:
        """Why the tokens file's lines cannot all be used, naming lines, never values; empty if fine.

        The launcher asks once: a line that turns bad after start-up is skipped at a re-read
        (service.front.edge.auth), rather than failing every process that restarts later.
        """
        file = self.api_tokens_file
        if file is None:
            return []
        try:
            _, refused = read_tokens_file(file)
        except UnicodeDecodeError:
            return [f"{file} is not UTF-8 text"]
        except OSError as err:
            return [f"{file} could not be read: {err.strerror}"]
        return [f"{problem} ({TOKENS_FILE_FORMAT})" for problem in refused]

    def model_workers(self) -> int:
        """Model worker processes in all: the setting, or the CPUs this process may use."""
        return self.workers or available_cpus()

    def http_processes(self) -> int:
        """uvicorn worker processes: the fronts (pool), or one per model worker (colocated).

        Raises ValueError when the model workers do not divide among the fronts.
        """
        self.workers_per_front()
        return self.fronts if self.serving == "pool" else self.model_workers()

    def workers_per_front(self) -> int:
        """Models each HTTP process feeds: its share of the workers (pool), or its own one (colocated)."""
        if self.serving == "colocated":
            return 1
        workers = self.model_workers()
        if workers % self.fronts:
            raise ValueError(f"{workers} model workers do not divide among {self.fronts} fronts")
        return workers // self.fronts

    def admitted_per_front(self) -> int:
        """API requests one HTTP process holds at once (its admission bound), and so the most texts
        of its that may wait for the model: max_in_flight for each model worker it feeds."""
        return self.max_in_flight * self.workers_per_front()

    def auth_required(self) -> bool:
        """Whether the API needs a bearer token: tokens or a tokens file configured (even an empty one)."""
        return bool(self.fixed_tokens()) or self.api_tokens_file is not None

    def fixed_tokens(self) -> list[str]:
        """The bearer tokens given in api_tokens."""
        return [t.strip() for t in self.api_tokens.get_secret_value().split(",") if t.strip()]

    def bearer_tokens(self) -> list[str]:
        """Every bearer token accepted now: api_tokens and the tokens file's."""
        file = read_tokens_file(self.api_tokens_file)[0] if self.api_tokens_file is not None else []
        return self.fixed_tokens() + file


SECRETS = frozenset(name for name, field in Settings.model_fields.items() if field.annotation is SecretStr)
OWN_FIELDS = [name for name in Settings.model_fields if name != "tracing"]
KNOWN = frozenset(ENV_PREFIX + name.upper() for name in OWN_FIELDS)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Each TEXTCLF_* variable that names no setting, with the closest known name if any."""
    problems = []
    for name in sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in KNOWN):
        closest = get_close_matches(name.upper(), KNOWN, n=1)
        hint = f"; did you mean {closest[0]}?" if closest else ""
        problems.append(f"  {name}: no such setting{hint} (`python -m service --help` lists them)")
    return problems


def load_settings() -> Settings:
    """Settings from the environment; a bad value or an unknown TEXTCLF_* name exits saying which.

    The message never shows a secret: a secret field's value is hidden, and a check across fields
    (whose input is every value) shows none.
    """
    problems = unknown_variables(os.environ)
    tracing, settings = None, None
    try:
        tracing = TracingSettings()
    except ValidationError as err:
        problems += _described(err, OTEL_PREFIX)
    try:
        # Refused OTEL_* values are reported above; the rest is still checked.
        settings = Settings(tracing=tracing or TracingSettings.model_construct())
    except ValidationError as err:
        problems += _described(err, ENV_PREFIX)
    if problems or settings is None:
        raise SystemExit("invalid configuration:\n" + "\n".join(problems))
    return settings


def _described(err: ValidationError, prefix: str) -> list[str]:
    problems = []
    for e in err.errors():
        field = str(e["loc"][0]) if e["loc"] else None
        if field is None:
            problems.append(f"  {prefix}*: {e['msg']}")
            continue
        name = prefix + "_".join(str(p) for p in e["loc"]).upper()
        shown = "<hidden>" if field in SECRETS else repr(e.get("input"))
        problems.append(f"  {name}={shown}: {e['msg']}")
    return problems


def describe() -> str:
    """Every setting with its environment variable, default and meaning (for --help)."""
    rows = []
    for prefix, fields in ((ENV_PREFIX, Settings.model_fields), (OTEL_PREFIX, TracingSettings.model_fields)):
        for name, field in fields.items():
            if name != "tracing":
                rows.append(f"  {prefix}{name.upper():<28} default {field.default!s:<32} {field.description}")
    return "\n".join(rows)
