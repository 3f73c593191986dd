"""Transformation domain: the dbt project (staging → intermediate → marts) as Dagster assets."""

__all__ = ["build_dbt_assets", "build_defs", "dbt_executable"]

import os
import shutil
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from cyberclaims.orchestration.defs.transformation.assets import build_dbt_assets, build_inputs
from cyberclaims.orchestration.defs.transformation.project import dbt_project

DBT_WITH_PARENT = Path(__file__).with_name("dbt-with-parent")


def dbt_executable() -> str:
    """dbt started so that it dies with the run that started it (setpriv --pdeathsig KILL), when setpriv
    is there; else plain dbt (a dead run's dbt child is then killed by orchestration.runs.reap_dead_runs).
    Called when the definitions load (build_defs), never at import: PATH is read then, after
    dbt_project() has put this interpreter's bin folder on it (dagster-dbt's own DBT_EXECUTABLE is
    chosen when dagster_dbt is imported)."""
    name = "dbtf" if shutil.which("dbtf") else "dbt"  # dagster-dbt's choice, made now
    real = shutil.which(name)
    if real is None or shutil.which("setpriv") is None or not os.access(DBT_WITH_PARENT, os.X_OK):
        return name
    os.environ["CYBERCLAIMS_DBT_EXECUTABLE"] = real
    return str(DBT_WITH_PARENT)


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[build_inputs, build_dbt_assets()],
        resources={"dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=dbt_executable())},
    )
