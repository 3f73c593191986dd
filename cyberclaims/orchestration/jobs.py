"""Names of the code location's jobs, importable without Dagster: the command line names its default job
from here (`cyberclaims --help` and `cyberclaims sql` never import the definitions), and
cyberclaims.orchestration.definitions defines its jobs under these names."""

CYCLE_JOB = "monthly_cycle"
PUBLISH_JOB = "publish"
