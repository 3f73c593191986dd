"""Dagster entry point: `dagster dev -m orchestration.definitions`."""

import dagster as dg

from orchestration.defs import ingestion, transformation
from orchestration.defs.resources import default_resources

CYCLE_JOB = "monthly_cycle"

defs = dg.Definitions.merge(
    ingestion.build_defs(),
    transformation.build_defs(),
    dg.Definitions(
        jobs=[
            dg.define_asset_job(
                CYCLE_JOB,
                selection=dg.AssetSelection.all(),
                description="The whole cycle: ingest what arrived, then build and test every dbt model.",
            )
        ],
        resources=default_resources(),
    ),
)
