"""Ingestion domain: an asset per insurer config with its submission gate, the landing sensor, the
ingestion and review jobs. An insurer whose config is invalid keeps an asset that reports the config
error (and a failing `config` check); it reads nothing, and every other insurer runs."""

from __future__ import annotations

import dagster as dg

from cyberclaims.ingestion.config import load_configs
from cyberclaims.orchestration.defs.ingestion.assets import (
    GROUP,
    LANDED_TABLES,
    build_disabled_asset,
    build_ingestion_asset,
    build_landed_table_asset,
)
from cyberclaims.orchestration.defs.ingestion.gate import (
    build_config_check,
    build_gate_asset,
    build_submission_gate_table,
    review_submission_job,
)
from cyberclaims.orchestration.defs.ingestion.sensors import build_landing_sensor

INGEST_JOB = "ingest_landing"


def build_defs() -> dg.Definitions:
    loaded = load_configs()
    configs = loaded.configs
    assets = [build_ingestion_asset(cfg) for cfg in configs.values()]
    assets += [build_disabled_asset(insurer_id, error) for insurer_id, error in sorted(loaded.errors.items())]
    # The landed tables and the gate wait for the insurers that can run; a disabled one is upstream of nothing.
    assets += [build_landed_table_asset(schema, table, sorted(configs)) for schema, table in LANDED_TABLES]
    assets += [build_gate_asset(cfg) for cfg in configs.values()]
    assets.append(build_submission_gate_table(sorted(configs)))
    job = dg.define_asset_job(
        INGEST_JOB,
        selection=dg.AssetSelection.groups(GROUP),
        description="Ingest every insurer's new landing files into the raw zone of the warehouse and decide them at the gate.",
    )
    checks = [build_config_check(insurer_id, error) for insurer_id, error in sorted(loaded.errors.items())]
    return dg.Definitions(
        assets=assets, asset_checks=checks, jobs=[job, review_submission_job], sensors=[build_landing_sensor(configs, job)]
    )
