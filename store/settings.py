"""The service's one settings object, and `load_settings`: the one place TRAINYARD_* variables are read.

Every process (API, worker, reconciler, `trainyard migrate`/`token`) calls
`load_settings()` at start and passes the result to the factories
(`trainyard.store.db.make_engine`, `trainyard.worker.app.create_celery`, the API's `create_app`). Tests
build a `Settings` directly or call `load_settings({...})` with their own mapping.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

PREFIX = "TRAINYARD_"
FILESYSTEM_BROKER = "filesystem://"
REDIS_BROKERS = ("redis", "rediss", "redis+socket", "sentinel")  # kombu's Redis transport
RATE_LIMIT_STORAGES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel")  # limits' URL schemes we support


class SettingsError(ValueError):
    """A TRAINYARD_* variable holds a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable (DESIGN §3, §5, §7). Field `x` is read from `TRAINYARD_X`."""

    # --- where things are (§3) ---
    home: Path = Path("var")
    database_url: str = ""  # "" → sqlite:///{home}/trainyard.db
    broker_url: str = ""  # "" → kombu's filesystem transport in {home}/broker
    broker_namespace: str = ""  # prefix of every broker key (Redis); lets several deployments/tests share a server
    auth: bool = True
    mnist_dir: str | None = None
    metrics_token: str | None = None  # None: /metrics needs no auth; else it needs this bearer token

    # --- job lifecycle (§5) ---
    lease_seconds: float = 30.0  # a running job's lease; the worker extends it while training
    heartbeat_seconds: float = 0.5  # how often a running job extends its lease, flushes history, sees a cancel
    reconcile_interval_seconds: float = 5.0
    republish_after_seconds: float = 30.0  # a queued job not claimed this long while a worker idles is re-sent
    worker_live_seconds: float = 30.0  # a worker not seen for this long is not live
    max_attempts: int = 3
    job_timeout_seconds: float = 3600.0  # wall-clock limit of one attempt (failed, code `timeout`)

    # --- retention and garbage collection (store.retention, `trainyard gc`) ---
    retention_days: float = 0.0  # finished, unpinned jobs older than this lose history, checkpoint, model; 0: off
    gc_interval_seconds: float = 3600.0  # how often the reconciler runs gc while retention is on
    gc_grace_seconds: float = 3600.0  # an unreferenced blob younger than this is left alone (may be in use soon)

    # --- safety limits (§7) ---
    max_request_bytes: int = 16 * 2**20
    max_upload_bytes: int = 256 * 2**20
    max_decompressed_bytes: int = 2**30  # what one uploaded file may inflate to (gzip'd CSV / IDX, NPZ arrays)
    max_dataset_bytes_per_user: int = 4 * 2**30  # all of one user's uploads together, as uploaded
    max_parameters: int = 50_000_000
    max_samples_x_features: int = 200_000_000
    max_features: int = 100_000  # columns of an upload (each is named, stored and shown with the dataset)
    max_epochs: int = 1_000_000
    max_predict_rows: int = 100_000
    max_predict_values: int = 1_000_000  # rows × outputs of one predict (about 20 MB of JSON)
    # Specs within memory (api/limits.py): what one job may ask of a worker, checked at submit.
    worker_memory_bytes: int = 4 * 2**30  # a job's estimated training memory (spec.estimate_size) must fit in this
    max_classes: int = 10_000  # classes of a classification dataset (upload and submit)
    max_layers: int = 1_000  # layers of one spec
    max_spec_bytes: int = 2**20  # the normalised spec as stored, in JSON bytes
    # Every JSON body (api/jsonio.py), before anything reads it: 422 past these.
    max_json_depth: int = 64  # nested objects and arrays
    max_json_digits: int = 100  # digits of one integer
    max_spec_items: int = 100_000  # values (objects, arrays, numbers, strings…) in one spec, before it is validated
    max_checkpoint_bytes_per_minute: int = 64 * 2**20  # a job's checkpoints, on average (worker/runner.py)
    checkpoint_seconds: float = 30.0  # a worker checkpoints a job at least this often by time, whatever its spec's
    # checkpoint_every (0: only checkpoint_every), so a stopped worker loses at most this much of a job's training
    max_queued_per_user: int = 1000
    max_running_per_user: int = 0  # one user's jobs running at once, every queue together (store.fairshare); 0: none
    # Sweeps (core/sweeps, worker/controller.py): a sweep's budget, parallelism and grid, checked at submit.
    max_sweep_trials: int = 1000
    max_sweep_parallel: int = 64
    max_sweep_grid_points: int = 10_000
    sweep_interval_seconds: float = 1.0  # the controller's pass (a finishing trial also starts the next at once)
    rate_limit_per_second: float = 100.0
    rate_limit_burst: int = 200
    # Before authentication (api/throttle.py): an address whose requests failed authentication this many times
    # within the window is answered 429 without a database lookup until the window ends.
    auth_failures_per_address: int = 30
    auth_failure_window_seconds: int = 60
    # Where rate-limit counters live (api/ratelimit.py, api/throttle.py): redis://… shares them between API
    # processes. "" → the broker's Redis when the broker is Redis (one limit across processes), else memory://.
    rate_limit_storage_url: str = ""
    trusted_proxies: int = 0  # reverse proxies in front of the API whose X-Forwarded-For/-Proto are believed
    token_default_expiry: str = "90d"  # `trainyard token create` without --expires: 30d, 12h, 2w… or never
    operator_users: str = ""  # comma-separated user names who see every worker's hostname, pid and jobs

    # --- serving (api/serve.py): gevent workers, so an open connection costs a greenlet, not a thread ---
    api_max_connections: int = 1000  # open connections per API process (gunicorn worker_connections)
    header_timeout_seconds: float = 10.0  # a request's headers must arrive within this (and idle keep-alive)
    body_timeout_seconds: float = 120.0  # its body within this, or 408; read before the request takes a slot
    stream_max_seconds: float = 600.0  # an event stream ends after this; clients reconnect with Last-Event-ID
    stream_recheck_seconds: float = 5.0  # an open event stream re-checks its token this often

    # --- database and libraries ---
    db_connect_timeout_seconds: float = 5.0
    # A database that accepts but never answers (store/db.py): a statement waits at most this long without a byte
    # from the server, then its connection is dropped and the caller sees the database as unavailable (API: 503).
    db_response_timeout_seconds: float = 10.0
    db_keepalive_seconds: float = 10.0  # TCP keepalive probes after this long idle (a peer gone without a word)
    db_tcp_user_timeout_seconds: float = 10.0  # data sent but unacknowledged this long: the connection is dead
    db_statement_timeout_seconds: float = 30.0  # PostgreSQL statement_timeout; SQLite's busy wait
    # PostgreSQL: a pooled connection idle this long is pinged before use (store.pgtimeouts); 0: always pinged
    db_ping_idle_seconds: float = 1.0
    db_pool_size: int = 5
    # BLAS threads of each pool process (numpy's OpenBLAS, scikit-learn through it; worker/main.py). 0: the CPUs the
    # worker may use ÷ its concurrency. Several workers on one host: set it (CPUs ÷ all their pool processes).
    blas_threads: int = 0
    tf_intra_op_threads: int = 0  # 0: TensorFlow's default
    tf_inter_op_threads: int = 0
    log_level: str = "INFO"
    # Celery's own monitoring (README "Monitoring"): workers answer remote control (`trainyard celery inspect ping`)
    # and send task and heartbeat events (Flower). Off: workers report in through the database (GET /workers) only.
    celery_monitoring: bool = False

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser().absolute()
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'trainyard.db'}")
        if not self.broker_url:
            object.__setattr__(self, "broker_url", FILESYSTEM_BROKER)
        if not self.rate_limit_storage_url:
            shared = self.broker_url.partition("://")[0] in RATE_LIMIT_STORAGES[1:]  # the broker is a Redis
            object.__setattr__(self, "rate_limit_storage_url", self.broker_url if shared else "memory://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith("filesystem:")

    @property
    def uses_redis_broker(self) -> bool:
        return self.broker_url.partition("://")[0] in REDIS_BROKERS

    @property
    def broker_folder(self) -> Path:
        """Where the embedded (filesystem) broker keeps its messages."""
        return self.home / "broker"

    @property
    def token_file(self) -> Path:
        """The local token `trainyard up` writes and the CLI reads."""
        return self.home / "token"

    @property
    def blob_cache_folder(self) -> Path:
        """Worker-local cache of uploaded dataset blobs, by sha256."""
        return self.home / "cache" / "blobs"

    def to_env(self) -> dict[str, str]:
        """The TRAINYARD_* variables that `load_settings` reads back into these settings (for child processes)."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                env[PREFIX + f.name.upper()] = str(int(value) if isinstance(value, bool) else value)
        return env

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some fields changed (tests use it); a derived `database_url` keeps the old home."""
        return dataclasses.replace(self, **changes)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(name: str, kind: str, text: str) -> Any:
    """Parse `text` as the field's annotated type (the annotation is a string: `from __future__`)."""
    text = text.strip()
    try:
        if kind == "bool":
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError("expected one of 1/0, true/false, yes/no, on/off")
        if kind == "int":
            return int(text.replace("_", ""))
        if kind == "float":
            value = float(text.replace("_", ""))
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("expected a finite number")
            return value
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name.upper()}={text!r}: {exc}") from None
    if kind == "Path":
        return Path(text)
    if kind == "str | None":
        return text or None
    return text


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every TRAINYARD_* variable (from `env`, default os.environ) into a Settings.

    Raises SettingsError naming the variable when a value cannot be parsed or is out of range.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        key = PREFIX + f.name.upper()
        if key in env:
            values[f.name] = _parse(f.name, f.type, env[key])
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    positive = ("lease_seconds", "heartbeat_seconds", "reconcile_interval_seconds", "republish_after_seconds",
                "worker_live_seconds", "max_attempts", "job_timeout_seconds", "max_request_bytes",
                "max_upload_bytes", "max_parameters", "max_samples_x_features", "max_features", "max_epochs",
                "max_predict_rows",
                "max_queued_per_user", "rate_limit_per_second", "rate_limit_burst", "db_connect_timeout_seconds",
                "db_statement_timeout_seconds", "db_pool_size", "auth_failures_per_address",
                "auth_failure_window_seconds")
    positive += ("api_max_connections", "header_timeout_seconds", "body_timeout_seconds", "stream_max_seconds",
                 "stream_recheck_seconds")
    positive += ("max_predict_values",)
    positive += ("max_sweep_trials", "max_sweep_parallel", "max_sweep_grid_points", "sweep_interval_seconds")
    positive += ("max_decompressed_bytes", "max_dataset_bytes_per_user")
    positive += ("max_json_depth", "max_json_digits", "max_spec_items")
    positive += ("worker_memory_bytes", "max_classes", "max_layers", "max_spec_bytes",
                 "max_checkpoint_bytes_per_minute")
    positive += ("gc_interval_seconds",)
    positive += ("db_response_timeout_seconds", "db_keepalive_seconds", "db_tcp_user_timeout_seconds")
    if not 0 <= s.db_ping_idle_seconds <= 1e9:  # 0: every checkout pings
        raise SettingsError(f"{PREFIX}DB_PING_IDLE_SECONDS must be >= 0 and at most 1e9, "
                            f"got {s.db_ping_idle_seconds!r}")
    if not 0 <= s.checkpoint_seconds <= 1e9:  # 0: off
        raise SettingsError(f"{PREFIX}CHECKPOINT_SECONDS must be >= 0 (0: off) and at most 1e9, "
                            f"got {s.checkpoint_seconds!r}")
    for name, most in (("retention_days", 36500), ("gc_grace_seconds", 3.2e9)):  # retention_days 0: off
        if not 0 <= getattr(s, name) <= most:  # (a date before year 1 cannot be computed)
            raise SettingsError(f"{PREFIX}{name.upper()} must be >= 0 and at most {most:g}, got {getattr(s, name)!r}")
    for name in positive:
        if not getattr(s, name) > 0:
            raise SettingsError(f"{PREFIX}{name.upper()} must be > 0, got {getattr(s, name)!r}")
    _check_expiry(s)
    for name in ("tf_intra_op_threads", "tf_inter_op_threads", "trusted_proxies", "max_running_per_user",
                 "blas_threads"):
        if getattr(s, name) < 0:
            raise SettingsError(f"{PREFIX}{name.upper()} must be >= 0, got {getattr(s, name)!r}")
    if s.heartbeat_seconds * 3 > s.lease_seconds:
        raise SettingsError(f"{PREFIX}HEARTBEAT_SECONDS must be at most a third of {PREFIX}LEASE_SECONDS")
    if s.rate_limit_storage_url.partition("://")[0] not in RATE_LIMIT_STORAGES:
        raise SettingsError(f"{PREFIX}RATE_LIMIT_STORAGE_URL must be a memory:// or redis:// URL, "
                            f"got {s.rate_limit_storage_url!r}")
    if not (s.database_url.startswith("sqlite") or s.database_url.startswith("postgresql")):
        raise SettingsError(f"{PREFIX}DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")


def _check_expiry(s: Settings) -> None:
    from trainyard.store.durations import parse_duration

    try:
        parse_duration(s.token_default_expiry)
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}TOKEN_DEFAULT_EXPIRY: {exc}") from None
