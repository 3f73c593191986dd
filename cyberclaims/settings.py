"""Where things live. Read when asked (never at import), so tests can point them elsewhere.

One environment variable names the warehouse file for Dagster and dbt alike
(CYBERCLAIMS_DUCKDB); CYBERCLAIMS_DATA_DIR moves the whole data zone; CYBERCLAIMS_UMASK decides who
else may read what the pipeline writes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Paths:
    data_dir: Path

    @property
    def landing(self) -> Path:
        return self.data_dir / "landing"

    @property
    def truth(self) -> Path:
        return self.data_dir / "truth"

    @property
    def warehouse(self) -> Path:
        return Path(os.environ.get("CYBERCLAIMS_DUCKDB") or self.data_dir / "warehouse" / "cyberclaims.duckdb")

    @property
    def feedback(self) -> Path:
        return self.data_dir / "feedback"

    @property
    def published(self) -> Path:
        return self.data_dir / "published"

    @property
    def regulator(self) -> Path:
        """The regulator packs, one folder per quarter: what is handed to the regulator."""
        return self.data_dir / "regulator"

    @property
    def regulator_audit(self) -> Path:
        """Who contributes to every cell of each pack and why cells are hidden: the bureau's only."""
        return self.data_dir / "internal" / "regulator"

    @property
    def demo_key_file(self) -> Path:
        return self.data_dir / "secrets" / "hmac.key"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.data_dir / "dagster_home")


PATH_VARIABLES = ("CYBERCLAIMS_DATA_DIR", "CYBERCLAIMS_DUCKDB")


def absolute_path_variables() -> None:
    """Make the path variables absolute for this process and its children (the CLI's entry point)."""
    for variable in PATH_VARIABLES:
        value = os.environ.get(variable)
        if value and not Path(value).is_absolute():
            os.environ[variable] = str(Path(value).resolve())


def paths() -> Paths:
    return Paths(Path(os.environ.get("CYBERCLAIMS_DATA_DIR") or PROJECT_ROOT / "data").resolve())


# The warehouse holds every insurer's claims, the audit files who contributes to each regulator cell, the
# secrets folder the pseudonymisation key: by default nobody but the account running the pipeline reads them
# (directories 0700, files 0600). A site that lets a reader group read the published database sets 027.
UMASK_ENV = "CYBERCLAIMS_UMASK"
DEFAULT_UMASK = 0o077


def umask() -> int:
    """The file-creation mask of everything the pipeline writes ($CYBERCLAIMS_UMASK, octal, default 077).

    The owner's bits must stay (the pipeline reads back what it writes) and others may never write."""
    text = os.environ.get(UMASK_ENV, "").strip()
    if not text:
        return DEFAULT_UMASK
    if not re.fullmatch(r"0?[0-7]{3}", text):
        raise ValueError(f"{UMASK_ENV}={text!r} is not a umask: give three octal digits, e.g. 077 or 027")
    value = int(text, 8)
    if value & 0o700:
        raise ValueError(f"{UMASK_ENV}={text} would deny the pipeline its own files: the first digit must be 0")
    if not value & 0o002:
        raise ValueError(f"{UMASK_ENV}={text} would let every account write the warehouse: the last digit must mask "
                         "others' write (2, 3, 6 or 7; e.g. 077, or 027 for a reader group)")
    return value


def apply_umask() -> int:
    """Set the process umask from $CYBERCLAIMS_UMASK; called first by every entry point (the CLI, the Dagster code
    location), so DuckDB, Dagster's storage and compute logs, and the dbt children they start inherit it."""
    value = umask()
    os.umask(value)
    return value


DAGSTER_YAML = """\
# Written by cyberclaims: one DuckDB writer at a time across all runs.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""
# The daemon (UI) frees the pool slots a finished run still holds; `cyberclaims run` also reaps dead runs.
RUN_MONITORING_YAML = """\
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 30
"""


def ensure_dagster_home() -> Path:
    home = paths().dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML + RUN_MONITORING_YAML, encoding="utf-8")
    else:
        text = config.read_text(encoding="utf-8")
        # A file cyberclaims wrote before run monitoring was configured gets it; another is left alone.
        if text.startswith(DAGSTER_YAML.splitlines()[0]) and "run_monitoring:" not in text:
            config.write_text(text.rstrip("\n") + "\n" + RUN_MONITORING_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


# DuckDB's own default is 80 % of the machine's memory; the pipeline's writers (ingestion, dbt,
# publication, the regulator pack) cap it so one cycle fits in a few GB and spills to disk
# beyond that (into `<database>.tmp`, or DuckDB's default temporary directory).
DEFAULT_DUCKDB_MEMORY_LIMIT = "2GB"


def duckdb_memory_limit() -> str:
    """The memory limit of the pipeline's DuckDB work (CYBERCLAIMS_DUCKDB_MEMORY_LIMIT, e.g. 2GB)."""
    return os.environ.get("CYBERCLAIMS_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT


def limit_memory(con) -> None:
    con.execute("SET memory_limit = ?", [duckdb_memory_limit()])

