"""Dagster entry point: `dagster dev -m cyberclaims.orchestration.definitions`.

Importing this module reads no environment, no config and no manifest: `defs` is loaded when Dagster loads
the code location (and by `cyberclaims run`), and only then are the umask applied, the dbt manifest prepared
(parsed only when the project's files changed since the last parse) and the resources configured from the
environment.
"""

import dagster as dg

from cyberclaims import settings
from cyberclaims.orchestration.defs import ingestion, publication, regulator, transformation
from cyberclaims.orchestration.defs.resources import default_resources
from cyberclaims.orchestration.defs.transformation.project import dbt_project, prepare_manifest
from cyberclaims.orchestration.jobs import CYCLE_JOB, PUBLISH_JOB
from cyberclaims.orchestration.runs import build_dead_run_sensor

__all__ = ["CYCLE_JOB", "PUBLISH_JOB", "defs"]


def _cycle_job():
    return dg.define_asset_job(
        CYCLE_JOB,
        selection=dg.AssetSelection.all(),
        description=(
            "The whole cycle: ingest what arrived, build and test every dbt model, publish the sector claims "
            "database if every check passed, then the insurers' feedback and the regulator pack of the latest "
            "complete quarter."
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    # What the code location writes (the warehouse, Dagster's storage and compute logs, dbt's children) is
    # created under the project's umask: loading the definitions is the entry point of every run worker.
    settings.apply_umask()
    prepare_manifest(dbt_project())
    cycle_job = _cycle_job()
    return dg.Definitions.merge(
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
