"""dbt models as Dagster assets: one graph from each insurer's ingestion to the marts."""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.defs.resources import WRITER_POOL, WarehouseResource
from orchestration.defs.transformation.project import dbt_build_args, dbt_project

# dbt folder (resource path) → (asset key prefix, Dagster group)
_LAYERS = {"staging": "staging", "intermediate": "intermediate", "marts": "marts"}


def layer_of(props: Mapping[str, Any]) -> str:
    if props["resource_type"] == "seed":
        return "reference"
    folders = props.get("fqn", [])[1:-1]
    return next((_LAYERS[f] for f in folders if f in _LAYERS), "transformation")


class CyberclaimsDbtTranslator(DagsterDbtTranslator):
    """Sources keep dbt's key (raw/<table>, the ingestion's raw-table assets); models and seeds
    are keyed and grouped by layer."""

    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec
        layer = layer_of(props)
        return spec.replace_attributes(key=dg.AssetKey([layer, props["name"]]), group_name=layer)


TRANSLATOR = CyberclaimsDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False


def build_dbt_assets() -> dg.AssetsDefinition:
    project = dbt_project()

    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=TRANSLATOR, pool=WRITER_POOL)
    def cyberclaims_dbt(
        context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: WarehouseResource
    ):
        # profiles.yml reads the warehouse path from this variable; the dbt subprocess inherits it.
        os.environ["CYBERCLAIMS_DUCKDB"] = warehouse.database_path
        yield from dbt.cli(dbt_build_args(full_refresh=config.full_refresh), context=context).stream()

    return cyberclaims_dbt
