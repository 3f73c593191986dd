"""Dagster entry point: `dagster dev -m orchestration.definitions`."""

import dagster as dg

from orchestration.defs import ingestion, publication, transformation
from orchestration.defs.resources import default_resources

CYCLE_JOB = "monthly_cycle"
PUBLISH_JOB = "publish"

defs = dg.Definitions.merge(
    ingestion.build_defs(),
    transformation.build_defs(),
    publication.build_defs(),
    dg.Definitions(
        jobs=[
            dg.define_asset_job(
                CYCLE_JOB,
                selection=dg.AssetSelection.all(),
                description=(
                    "The whole cycle: ingest what arrived, build and test every dbt model, then publish the "
                    "sector claims database if every check passed."
                ),
            ),
            dg.define_asset_job(
                PUBLISH_JOB,
                selection=dg.AssetSelection.groups("publication"),
                description="Publish the current marts as the next version of the sector claims database.",
            ),
        ],
        resources=default_resources(),
    ),
)
