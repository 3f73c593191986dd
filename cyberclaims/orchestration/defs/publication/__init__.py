"""Publication domain: the read-only sector claims database, built only from audited marts."""

import dagster as dg

from cyberclaims.orchestration.defs.publication.assets import FEEDBACK_KEY, PUBLISHED_KEY, build_publication_assets

__all__ = ["FEEDBACK_KEY", "PUBLISHED_KEY", "build_defs", "build_publication_assets"]


def build_defs() -> dg.Definitions:
    return dg.Definitions(assets=build_publication_assets())
