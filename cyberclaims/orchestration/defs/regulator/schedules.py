"""Quarterly: the pack of the quarter just ended, once its last month has been through the cycle."""

import dagster as dg

from cyberclaims.orchestration.defs.regulator.assets import regulator_pack_job

quarterly_regulator_schedule = dg.ScheduleDefinition(
    name="quarterly_regulator_schedule",
    job=regulator_pack_job,
    # 06:00 Beijing time on the 10th of January, April, July and October: after the monthly cycle of
    # the 3rd has published the quarter's last month.
    cron_schedule="0 6 10 1,4,7,10 *",
    execution_timezone="Asia/Shanghai",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
