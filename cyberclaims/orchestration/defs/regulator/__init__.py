"""Regulator domain: the quarterly pilot statistics pack, built from the published marts."""

import dagster as dg

from cyberclaims.orchestration.defs.regulator.assets import PACK_KEY, REGULATOR_JOB, regulator_pack, regulator_pack_job
from cyberclaims.orchestration.defs.regulator.schedules import quarterly_regulator_schedule

__all__ = ["PACK_KEY", "REGULATOR_JOB", "build_defs"]


def build_defs() -> dg.Definitions:
    return dg.Definitions(assets=[regulator_pack], jobs=[regulator_pack_job], schedules=[quarterly_regulator_schedule])
