"""The one dbt project, and the pure functions that build dbt's command line and read its results."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

from cyberclaims.quality.sector import SectorTestFailure, SectorVerdict
from cyberclaims.settings import PROJECT_ROOT, paths

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


def _dbt_on_path() -> None:
    """dbt is installed beside this interpreter; make it findable when the venv is not activated."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


@cache
def dbt_project() -> DbtProject:
    _dbt_on_path()
    # The manifest is prepared by prepare_manifest() when the definitions load (cyberclaims.orchestration.definitions) and
    # by `cyberclaims prepare`: parsed only when the project's files changed, never at import time and never
    # again in each run worker of `dagster dev` (DbtProject.prepare_if_dev would parse on every load).
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


# What dbt's parse reads: the project's own files (never target/, logs/ or installed packages) and
# the warehouse it is pointed at (its file name becomes the database name in the manifest).
_NOT_SOURCES = {"target", "logs", "dbt_packages"}
_SOURCE_STAMP = "cyberclaims_sources.sha256"


def dbt_source_fingerprint(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """SHA-256 over every file of the dbt project (relative path and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if not path.is_file() or relative.parts[0] in _NOT_SOURCES or relative.name == ".user.yml":
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def prepare_manifest(project: DbtProject) -> bool:
    """Parse the project into target/manifest.json unless the manifest was parsed from exactly these
    files for this warehouse. Returns whether dbt ran (a parse costs 10–15 s of dbt start-up)."""
    from importlib.metadata import version

    target = project.project_dir / "target"
    stamp_file = target / _SOURCE_STAMP
    stamp = "\n".join([dbt_source_fingerprint(project.project_dir), os.environ.get("CYBERCLAIMS_DUCKDB", ""),
                       version("dbt-core")])
    target.mkdir(exist_ok=True)
    # Processes loading the definitions at once (run workers, parallel test workers) parse one at a time; the
    # others then find the manifest current.
    with open(target / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if project.manifest_path.exists() and stamp_file.exists() and stamp_file.read_text(encoding="utf-8") == stamp:
            return False
        stamp_file.unlink(missing_ok=True)
        project.preparer.prepare(project)
        stamp_file.write_text(stamp, encoding="utf-8")
        return True


class WarehouseMismatch(RuntimeError):
    """dbt's profile would build another warehouse than the one the run's resources name."""


def check_dbt_warehouse(warehouse_path: Path) -> None:
    """dbt reads the warehouse path from the environment (profiles.yml: CYBERCLAIMS_DUCKDB, else the data
    zone's warehouse, as cyberclaims.settings.Paths.warehouse); a run whose warehouse resource names another
    file would build the marts elsewhere, so it stops before dbt starts."""
    expected = Path(warehouse_path).resolve()
    profile = paths().warehouse.resolve()
    if profile != expected:
        raise WarehouseMismatch(
            f"the warehouse resource is {expected} but dbt's profile names {profile}: set CYBERCLAIMS_DUCKDB "
            "(or CYBERCLAIMS_DATA_DIR) so both name the same file"
        )


def dbt_build_args(full_refresh: bool = False, select: str | None = None) -> list[str]:
    """dbt CLI arguments for one build of the selected models, seeds and tests."""
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    return args


def build_failures(run_results: dict) -> list[SectorTestFailure]:
    """The nodes a failed `dbt build` stopped on (its run_results.json): failed tests of error severity,
    with the compiled SQL of their failing rows, and any node that errored. Warnings and nodes
    skipped because of an upstream failure are not failures of their own."""
    failures = []
    for result in run_results["results"]:
        if result["status"] not in ("fail", "error", "runtime error"):
            continue
        parts = result["unique_id"].split(".")
        resource_type = parts[0]
        name = parts[-1] if resource_type == "unit_test" else parts[2]
        failures.append(SectorTestFailure(
            name=name, resource_type=resource_type, status="fail" if result["status"] == "fail" else "error",
            message=result.get("message") or "", failures=result.get("failures"),
            compiled_code=result.get("compiled_code"),
        ))
    return failures


def blocked_message(verdict: SectorVerdict, held: list[str]) -> str:
    """Why the build blocks publication: every failure that names no holdable submission, and why."""
    parts = [f"{name} ({why})" for name, why in verdict.unattributable]
    message = f"dbt build failed; publication blocked by {len(parts)} failure(s) no submission can be held for: " + "; ".join(parts)
    if held:
        message += f" (held for sector tests in this build: {', '.join(held)})"
    return message
