"""Transformation domain: the dbt project (staging → intermediate → marts) as Dagster assets."""

__all__ = ["build_dbt_assets", "build_defs"]

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.defs.transformation.assets import build_dbt_assets, build_inputs
from orchestration.defs.transformation.project import dbt_project


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[build_inputs, build_dbt_assets()],
        resources={"dbt": DbtCliResource(project_dir=dbt_project())},
    )
