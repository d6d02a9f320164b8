"""Typed settings, read from the environment in this one place."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from iei_match.bundled import CATALOGS

PREFIX = "IEI_MATCH_"
MAX_DEFAULT_WORKERS = 8


def default_workers(cores: int | None = None) -> int:
    """Worker processes of ``iei-match serve`` by default: one per core up to
    :data:`MAX_DEFAULT_WORKERS`, and one on 2 cores or fewer.

    A ranking holds the interpreter for most of its time (the engine's Python and the
    answer's objects), so the threads of one process use one core for it; processes use
    them all (each connection handed to the worker that holds the fewest, ``handoff.py``).
    On 2 cores two workers give 1.5-2x the answers a second of one while a load generator
    shares the cores (``benchmarks/README.md``), but hold twice the memory (1.2 GB each
    with an alliance of 10,504 programs) and count each key's rate limit apart (see
    :class:`Settings`): there the default stays one, and ``IEI_MATCH_WORKERS=2`` asks for
    two.
    """
    cores = (os.cpu_count() or 1) if cores is None else cores
    return 1 if cores <= 2 else min(cores, MAX_DEFAULT_WORKERS)


class SettingsError(ValueError):
    """An environment variable has a value the service cannot use."""


def _int(env: dict, name: str, default: int, minimum: int = 1,
         maximum: int | None = None) -> int:
    raw = env.get(PREFIX + name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{PREFIX}{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{PREFIX}{name} must be at most {maximum}, got {value}")
    return value


def _float(env: dict, name: str, default: float, minimum: float, maximum: float) -> float:
    raw = env.get(PREFIX + name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{PREFIX}{name} must be from {minimum} to {maximum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with.

    Attributes
    ----------
    data_dir : Path
        Where the SQLite database, models and job files live (``IEI_MATCH_DATA_DIR``,
        default ``./iei-match-data``).
    database_url : str
        SQLAlchemy URL (``IEI_MATCH_DATABASE_URL``); default a SQLite file in ``data_dir``.
        PostgreSQL: ``postgresql+psycopg://user@127.0.0.1:5432/dbname``.
    models_dir : Path
        Models root the service publishes into and serves from (``IEI_MATCH_MODELS_DIR``).
    catalog : str
        Bundled catalog the first model is trained on and retraining adds to
        (``IEI_MATCH_CATALOG``, ``cn-vocational`` or ``us-onet-cip``).
    catalog_dir : Path or None
        Training catalog directory overriding the bundled one (``needs.csv``,
        ``programs.csv``, ``links.csv``; ``IEI_MATCH_CATALOG_DIR``).
    host, port : str, int
        Where ``iei-match serve`` listens (``IEI_MATCH_HOST``, default 127.0.0.1;
        ``IEI_MATCH_PORT``, default 8000).
    max_body_bytes, max_upload_bytes : int
        Largest JSON request body and largest uploaded file (413 beyond).
    max_list : int
        Longest list a client may send or ask for (skills, ``k``, page size).
    max_upload_rows, max_upload_columns, max_upload_cells, max_cell_chars : int
        What one uploaded table may hold (``IEI_MATCH_MAX_UPLOAD_ROWS``, default 50,000
        data rows; ``..._COLUMNS``, 100; ``..._CELLS``, 1,000,000 non-empty cells;
        ``IEI_MATCH_MAX_CELL_CHARS``, 32,767 characters in one cell), checked while the file
        is read (413 beyond).
    max_unpacked_bytes : int
        Bytes an uploaded XLSX may unpack to, or a Parquet file decode to
        (``IEI_MATCH_MAX_UNPACKED_BYTES``, default 100 MB; 413 beyond).
    upload_parsers, uploads_per_key : int
        Uploaded files parsed at once by the whole service (``IEI_MATCH_UPLOAD_PARSERS``,
        default 1; others wait up to ``queue_timeout_s`` x 5, then 503) and by one key
        (``IEI_MATCH_UPLOADS_PER_KEY``, default 2; 429 beyond).
    writes_at_once : int
        Small writes (needs, programs, bases, outcomes, organisations or keys created,
        changed or deleted; a job cancelled) handled at once by each process
        (``IEI_MATCH_WRITES_AT_ONCE``, default 1); the others wait their turn on the event
        loop up to ``queue_timeout_s`` x 5, then 503 (:class:`~.limits.WriteSlots`), so that
        writing clients leave the rankings most of the CPU.
    max_rows_per_org : int
        Needs, programs or training bases one organisation may hold
        (``IEI_MATCH_MAX_ROWS_PER_ORG``, default 5,000 of each; 422 ``quota_exceeded``).
    max_labels_per_org : int
        Outcome labels of one organisation's needs that retraining uses, the most recent
        first (``IEI_MATCH_MAX_LABELS_PER_ORG``, default 500), so that no organisation can
        steer the shared model by flooding it with labels.
    auth_failures_per_minute : int
        Requests with a missing or invalid key one client address may make a minute
        (``IEI_MATCH_AUTH_FAILURES_PER_MINUTE``, default 60; 429 beyond, before any work).
    header_timeout_s : float
        Seconds a client has to send a request's headers (``IEI_MATCH_HEADER_TIMEOUT_S``,
        default 10); a slower connection is closed.
    metrics_public : bool
        Whether ``/metrics`` answers without a key (``IEI_MATCH_METRICS_PUBLIC=1``; default
        off: it needs an admin key).
    rate_limit_per_minute : int
        Requests one API key may make a minute (429 beyond).
    shared_rate_limit : bool
        Count the rate limit in the database, for all the processes of the service at once
        (``IEI_MATCH_SHARED_RATE_LIMIT=1``; PostgreSQL only, ignored on SQLite): one upsert
        per request (:class:`~.limits.SharedRateLimiter`). Default off: each process counts
        its own requests, so N processes allow N times the limit.
    catalog_refresh_s : float
        How late a ranking may see a write (``IEI_MATCH_CATALOG_REFRESH_S``, default 0:
        every ranking looks at the tables and sees every write made before it). With 1,
        each process looks at a table and prepares its changed rows at most once a second,
        instead of for nearly every ranking while clients write (see
        :class:`~.catalogs.Catalogs`).
    max_concurrent_rankings : int
        Rankings computed at once (default: the number of CPUs); further ones wait up to
        ``queue_timeout_s`` and are then refused with 503 so that overload is shed quickly.
        More than the cores only interleaves rankings: on 2 cores, 2 gave a higher capacity
        and a third of the overload latency of 4 (``benchmarks/README.md``). With several
        ``workers`` each process computes its share (:attr:`rankings_per_worker`).
    workers : int
        Processes ``iei-match serve`` answers requests with (``IEI_MATCH_WORKERS``; default
        :func:`default_workers`: one per core up to ``MAX_DEFAULT_WORKERS``, one on a
        machine of 2 cores or fewer). They share the port, the database, the models and
        the jobs, as replicas do; each keeps its own prepared catalogs and its own rate
        limit counts (a key may make ``rate_limit_per_minute`` requests a minute to each).
    batch_scheduler : str or None
        Dask scheduler of batch jobs (``IEI_MATCH_BATCH_SCHEDULER``): unset, ``threads`` or
        ``processes`` for a local cluster started per job (inside the job's own process,
        see ``batch_nice``), or ``tcp://HOST:PORT`` of a running cluster (the priority of
        its workers is up to whoever runs it).
    batch_workers : int
        Workers of a local batch cluster (``IEI_MATCH_BATCH_WORKERS``, default 1, so that a
        job leaves a core to interactive requests on a small machine).
    batch_nice : int
        How much lower the CPU priority of a batch job is than the service's
        (``IEI_MATCH_BATCH_NICE``, 0-19, default 10). Every batch job runs in a child
        process of the service (scoring, its local Dask cluster, the allocation and the gap
        report), which lowers its own priority by this much (``os.nice``) as it starts, so
        that the OS scheduler favours interactive requests; 0 keeps the service's priority.
        Retraining jobs train in such a process too.
    train_params : dict
        Parameters of :class:`iei_match.Matcher` for (re)training, as JSON in
        ``IEI_MATCH_TRAIN_PARAMS`` (e.g. ``{"n_estimators": 200}``).
    jobs_dir : Path
        Where jobs keep their inputs, partial work and results (``IEI_MATCH_JOBS_DIR``,
        default ``data_dir/jobs``). Several processes of the service must share it (as
        they share the models directory), so that any of them can resume a job or serve
        its results.
    model_poll_s : float
        How often each process looks whether another one made a new version live
        (``IEI_MATCH_MODEL_POLL_S``, default 2 s).
    job_lease_s : float
        How long a job's claim lasts without renewal (``IEI_MATCH_JOB_LEASE_S``, default
        30 s; renewed every third of it): a job whose process died is resumed by another
        process this long after its last renewal.
    job_attempts : int
        How many times a job is started before it is failed (``IEI_MATCH_JOB_ATTEMPTS``,
        default 3): a job that keeps killing its process is not retried for ever.
    keep_versions : int
        Model versions kept besides the live one and the one before it
        (``IEI_MATCH_KEEP_VERSIONS``, default 5, the newest ones).
    keep_job_days : float
        Days a finished job's files (results, plots) are kept (``IEI_MATCH_KEEP_JOB_DAYS``,
        default 30); its row stays and says its results were removed.
    prune_interval_s : float
        How often a process prunes old versions and job files (``IEI_MATCH_PRUNE_INTERVAL_S``,
        default 3600 s; 0 never: ``iei-match admin prune`` does it on demand).
    """

    data_dir: Path = Path("iei-match-data")
    database_url: str = ""
    models_dir: Path = Path("")
    catalog: str = "cn-vocational"
    catalog_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_000_000
    max_upload_bytes: int = 10_000_000
    max_list: int = 200
    max_upload_rows: int = 50_000
    max_upload_columns: int = 100
    max_upload_cells: int = 1_000_000
    max_cell_chars: int = 32_767
    max_unpacked_bytes: int = 100_000_000
    upload_parsers: int = 1
    uploads_per_key: int = 2
    writes_at_once: int = 1
    max_rows_per_org: int = 5_000
    max_labels_per_org: int = 500
    auth_failures_per_minute: int = 60
    header_timeout_s: float = 10.0
    metrics_public: bool = False
    rate_limit_per_minute: int = 1200
    shared_rate_limit: bool = False
    catalog_refresh_s: float = 0.0
    max_concurrent_rankings: int = field(default_factory=lambda: os.cpu_count() or 2)
    workers: int = field(default_factory=lambda: default_workers())
    queue_timeout_s: float = 2.0
    seed: int = 0
    batch_scheduler: str | None = None
    batch_workers: int = 1
    batch_nice: int = 10
    train_params: dict = field(default_factory=dict)
    jobs_dir: Path = Path("")
    model_poll_s: float = 2.0
    job_lease_s: float = 30.0
    job_attempts: int = 3
    keep_versions: int = 5
    keep_job_days: float = 30.0
    prune_interval_s: float = 3600.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if str(self.jobs_dir) in ("", "."):
            object.__setattr__(self, "jobs_dir", self.data_dir / "jobs")
        object.__setattr__(self, "jobs_dir", Path(self.jobs_dir))
        if not self.database_url:
            url = f"sqlite:///{(self.data_dir / 'iei-match.db').as_posix()}"
            object.__setattr__(self, "database_url", url)
        if str(self.models_dir) in ("", "."):
            object.__setattr__(self, "models_dir", self.data_dir / "models")
        if not 0 <= self.batch_nice <= 19:
            raise SettingsError(f"{PREFIX}BATCH_NICE must be between 0 and 19, got "
                                f"{self.batch_nice}")
        if self.catalog not in CATALOGS:
            raise SettingsError(f"{PREFIX}CATALOG must be one of {list(CATALOGS)}, "
                                f"got {self.catalog!r}")

    @property
    def read_limits(self):
        """The :class:`iei_match.io.ReadLimits` uploaded tables are read under."""
        from iei_match.bounded_read import ReadLimits

        return ReadLimits(max_rows=self.max_upload_rows, max_columns=self.max_upload_columns,
                          max_cell_chars=self.max_cell_chars,
                          max_cells=self.max_upload_cells,
                          max_unpacked_bytes=self.max_unpacked_bytes)

    @property
    def rankings_per_worker(self) -> int:
        """The rankings one worker process computes at once: its share of
        ``max_concurrent_rankings`` (at least one)."""
        return max(1, -(-self.max_concurrent_rankings // max(1, self.workers)))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> Settings:
        """Settings from ``IEI_MATCH_*`` environment variables, then ``overrides``."""
        env = dict(os.environ if env is None else env)
        values: dict = {
            "data_dir": Path(env.get(PREFIX + "DATA_DIR") or "iei-match-data"),
            "database_url": env.get(PREFIX + "DATABASE_URL", ""),
            "models_dir": Path(env.get(PREFIX + "MODELS_DIR", "")),
            "catalog": env.get(PREFIX + "CATALOG") or "cn-vocational",
            "catalog_dir": (Path(env[PREFIX + "CATALOG_DIR"])
                            if env.get(PREFIX + "CATALOG_DIR") else None),
            "host": env.get(PREFIX + "HOST") or "127.0.0.1",
            "port": _int(env, "PORT", 8000),
            "max_body_bytes": _int(env, "MAX_BODY_BYTES", 1_000_000),
            "max_upload_bytes": _int(env, "MAX_UPLOAD_BYTES", 10_000_000),
            "max_list": _int(env, "MAX_LIST", 200),
            "max_upload_rows": _int(env, "MAX_UPLOAD_ROWS", 50_000),
            "max_upload_columns": _int(env, "MAX_UPLOAD_COLUMNS", 100, maximum=16_384),
            "max_upload_cells": _int(env, "MAX_UPLOAD_CELLS", 1_000_000),
            "max_cell_chars": _int(env, "MAX_CELL_CHARS", 32_767),
            "max_unpacked_bytes": _int(env, "MAX_UNPACKED_BYTES", 100_000_000),
            "upload_parsers": _int(env, "UPLOAD_PARSERS", 1),
            "uploads_per_key": _int(env, "UPLOADS_PER_KEY", 2),
            "writes_at_once": _int(env, "WRITES_AT_ONCE", 1),
            "max_rows_per_org": _int(env, "MAX_ROWS_PER_ORG", 5_000),
            "max_labels_per_org": _int(env, "MAX_LABELS_PER_ORG", 500),
            "auth_failures_per_minute": _int(env, "AUTH_FAILURES_PER_MINUTE", 60),
            "header_timeout_s": float(_int(env, "HEADER_TIMEOUT_S", 10)),
            "metrics_public": (env.get(PREFIX + "METRICS_PUBLIC") or "").lower()
            in ("1", "true", "yes"),
            "rate_limit_per_minute": _int(env, "RATE_LIMIT_PER_MINUTE", 1200),
            "shared_rate_limit": (env.get(PREFIX + "SHARED_RATE_LIMIT") or "").lower()
            in ("1", "true", "yes"),
            "catalog_refresh_s": _float(env, "CATALOG_REFRESH_S", 0.0, 0.0, 3600),
            "max_concurrent_rankings": _int(env, "MAX_CONCURRENT_RANKINGS", os.cpu_count() or 2),
            "workers": _int(env, "WORKERS", default_workers(), maximum=64),
            "batch_scheduler": env.get(PREFIX + "BATCH_SCHEDULER") or None,
            "batch_workers": _int(env, "BATCH_WORKERS", 1),
            "batch_nice": _int(env, "BATCH_NICE", 10, minimum=0, maximum=19),
            "jobs_dir": Path(env.get(PREFIX + "JOBS_DIR", "")),
            "model_poll_s": _float(env, "MODEL_POLL_S", 2.0, 0.1, 3600),
            "job_lease_s": _float(env, "JOB_LEASE_S", 30.0, 1.0, 86400),
            "job_attempts": _int(env, "JOB_ATTEMPTS", 3, maximum=100),
            "keep_versions": _int(env, "KEEP_VERSIONS", 5, minimum=0),
            "keep_job_days": _float(env, "KEEP_JOB_DAYS", 30.0, 0.0, 36500),
            "prune_interval_s": _float(env, "PRUNE_INTERVAL_S", 3600.0, 0.0, 10**7),
        }
        raw = env.get(PREFIX + "TRAIN_PARAMS") or "{}"
        try:
            values["train_params"] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{PREFIX}TRAIN_PARAMS is not JSON: {exc}") from None
        if not isinstance(values["train_params"], dict):
            raise SettingsError(f"{PREFIX}TRAIN_PARAMS must be a JSON object")
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)
