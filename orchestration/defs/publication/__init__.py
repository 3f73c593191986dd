"""Publication domain: the read-only sector claims database, built only from audited marts."""

import dagster as dg

from orchestration.defs.publication.assets import insurer_feedback, sector_claims_db


def build_defs() -> dg.Definitions:
    return dg.Definitions(assets=[sector_claims_db, insurer_feedback])
