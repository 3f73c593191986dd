"""The regulator pack as a Dagster asset downstream of the published database."""

from pathlib import Path

import dagster as dg

from cyberclaims.orchestration.defs.publication.assets import PUBLISHED_KEY
from cyberclaims.orchestration.defs.resources import WRITER_POOL, DataZoneResource, WarehouseResource
from cyberclaims.regulator.pack import build_pack, check_quarter, load_config, write_pack
from cyberclaims.regulator.statistics import PackError

REGULATOR_JOB = "regulator_pack"


class RegulatorPackConfig(dg.Config):
    quarter: str | None = None  # e.g. "2025Q4"; default: the latest complete quarter in the data
    rules_file: str | None = None  # disclosure thresholds; default: regulator/pack.yaml


PACK_KEY = dg.AssetKey(["regulator", "pilot_statistics"])
# The internal dbt marts the pack reads (models/marts/regulator), besides the published version.
PACK_MARTS = [dg.AssetKey(["marts", m]) for m in ("reg_cells", "reg_cell_insurers", "reg_pilot_programmes")]


@dg.asset(
    key=PACK_KEY,
    deps=[PUBLISHED_KEY, *PACK_MARTS],
    group_name="regulator",
    kinds={"excel", "html", "json"},
    # Reads the warehouse: it must not overlap a writer.
    pool=WRITER_POOL,
    output_required=False,
    description=(
        "`data/regulator/<quarter>/`: pilot statistics for the regulator for a quarter and the year to date "
        "(workbook with cover and notes, CSV, JSON, HTML/PDF report with charts), with disclosure control. "
        "The bureau's audit of every cell (contributors, reasons) goes to `data/internal/regulator/<quarter>/`. "
        "Without a quarter asked for, nothing is built while the data cover no complete quarter yet."
    ),
)
def regulator_pack(
    context: dg.AssetExecutionContext, config: RegulatorPackConfig, warehouse: WarehouseResource, zone: DataZoneResource
):
    if config.quarter is None:
        try:
            check_quarter(warehouse.path, None)
        except PackError as exc:
            # A market's first months: the cycle goes on; a quarter asked for explicitly still fails.
            context.log.warning(f"no regulator pack yet: {exc}")
            return
        held = _publication_held(context)
        if held is not None:
            # The pack is the published version's: when this run's publication was held (the difference
            # rule), the marts are ahead of it and the pack waits with it.
            context.log.warning(f"no new regulator pack: the publication was held ({held})")
            return
    rules = load_config(Path(config.rules_file)) if config.rules_file else None
    pack, audit = build_pack(warehouse.path, zone.published, config.quarter, rules)
    written = write_pack(pack, audit, zone.regulator, zone.regulator_audit)
    context.log.info(f"regulator pack {pack.quarter}: {written['workbook']}")
    yield dg.MaterializeResult(
        metadata={
            "quarter": pack.quarter,
            "data_cutoff": str(pack.cutoff_date),
            "publication_version": pack.publication_version or 0,
            "contributing_insurers": pack.contributing_insurers,
            "suppression": dg.MetadataValue.json(pack.suppression_summary),
            "workbook": dg.MetadataValue.path(str(written["workbook"])),
            "report": dg.MetadataValue.path(str(written["html"])),
        }
    )


def _publication_held(context: dg.AssetExecutionContext) -> str | None:
    """Why this run's publication was held, if it was."""
    event = context.instance.get_latest_materialization_event(PUBLISHED_KEY)
    if event is None or event.run_id != context.run_id:
        return None
    held = event.asset_materialization.metadata.get("held")
    return None if held is None else str(held.value)


regulator_pack_job = dg.define_asset_job(
    REGULATOR_JOB,
    selection=dg.AssetSelection.assets(regulator_pack),
    description="Build the regulator pack for a quarter (default: the latest complete one) from the published data.",
)
