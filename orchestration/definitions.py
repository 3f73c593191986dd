"""Dagster entry point: `dagster dev -m orchestration.definitions`."""

import dagster as dg

from cyberclaims import settings
from orchestration.defs import ingestion, publication, regulator, transformation
from orchestration.defs.resources import default_resources
from orchestration.runs import build_dead_run_sensor

# Loading the code location is the entry point of `dagster dev` and of every run worker it starts: what they write
# (the warehouse, Dagster's storage and compute logs, dbt's children) is created under the project's umask.
settings.apply_umask()

CYCLE_JOB = "monthly_cycle"
PUBLISH_JOB = "publish"

cycle_job = dg.define_asset_job(
    CYCLE_JOB,
    selection=dg.AssetSelection.all(),
    description=(
        "The whole cycle: ingest what arrived, build and test every dbt model, publish the sector claims "
        "database if every check passed, then the insurers' feedback and the regulator pack of the latest "
        "complete quarter."
    ),
)

defs = dg.Definitions.merge(
    ingestion.build_defs(),
    transformation.build_defs(),
    publication.build_defs(),
    regulator.build_defs(),
    dg.Definitions(
        jobs=[
            cycle_job,
            dg.define_asset_job(
                PUBLISH_JOB,
                selection=dg.AssetSelection.groups("publication"),
                description="Publish the current marts as the next version of the sector claims database.",
            ),
        ],
        schedules=[
            dg.ScheduleDefinition(
                name="monthly_cycle_schedule",
                job=cycle_job,
                # Monthly, after the month's deliveries: 06:00 Beijing time on the 3rd.
                cron_schedule="0 6 3 * *",
                execution_timezone="Asia/Shanghai",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        ],
        sensors=[build_dead_run_sensor()],
        resources=default_resources(),
    ),
)
