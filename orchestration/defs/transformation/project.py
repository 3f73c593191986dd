"""The one dbt project, and the pure function that builds dbt's command line."""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

from cyberclaims.settings import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


def _dbt_on_path() -> None:
    """dbt is installed beside this interpreter; make it findable when the venv is not activated."""
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


@cache
def dbt_project() -> DbtProject:
    _dbt_on_path()
    # The manifest is prepared by `cyberclaims prepare` (run by ./dev and before every `cyberclaims
    # run`) or, under `dagster dev`, by prepare_if_dev(); it is never parsed at import time.
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    return project


def dbt_build_args(full_refresh: bool = False, select: str | None = None) -> list[str]:
    """dbt CLI arguments for one build of the selected models, seeds and tests."""
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    return args
