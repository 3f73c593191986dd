"""One ingestion asset per insurer, built from the insurer's mapping config."""

from pathlib import Path

import dagster as dg

from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.ingestion.pipeline import FileOutcome, ingest_insurer
from cyberclaims.orchestration.defs.resources import (
    WRITER_POOL,
    LandingZoneResource,
    PseudonymizationResource,
    WarehouseResource,
)

GROUP = "ingestion"


def asset_key(insurer_id: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", f"{insurer_id}_submissions"])


class IngestConfig(dg.Config):
    files: list[str] = []  # landing-relative paths; empty = every file of the insurer not yet ingested


def build_ingestion_asset(cfg: InsurerConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(cfg.insurer_id),
        group_name=GROUP,
        kinds={"polars", "duckdb"},
        pool=WRITER_POOL,
        description=(
            f"Submissions of {cfg.display_name}: {cfg.format} files from landing/{cfg.insurer_id}/ mapped "
            f"into the canonical contract (mapping {cfg.mapping_version}); good rows to raw.policies / "
            "raw.incidents / raw.claim_valuations, bad rows to raw.quarantine, every file to control.submissions."
        ),
        metadata={"insurer_id": cfg.insurer_id, "format": cfg.format, "mapping_version": cfg.mapping_version},
        tags={"insurer": cfg.insurer_id},
    )
    def _ingest(
        context: dg.AssetExecutionContext,
        config: IngestConfig,
        warehouse: WarehouseResource,
        landing: LandingZoneResource,
        pseudonymization: PseudonymizationResource,
    ) -> dg.MaterializeResult:
        files = [landing.root / f for f in config.files] if config.files else None

        def progress(o: FileOutcome) -> None:
            if o.status == "loaded":
                context.log.info(f"{o.source_file}: {o.rows_loaded} loaded, {o.rows_quarantined} quarantined")
            elif o.status == "rejected":
                context.log.warning(f"{o.source_file}: REJECTED: {o.error}")
            for w in o.warnings:
                context.log.warning(f"{o.source_file}: {w}")

        with warehouse.writer() as con:
            summary = ingest_insurer(con, cfg, landing.root, pseudonymization.pseudonymizer(), files, progress)
            quarantine_by_reason = dict(
                con.execute(
                    "SELECT reason, count(*) FROM (SELECT unnest(reason_codes) AS reason FROM raw.quarantine "
                    "WHERE insurer_id = ?) GROUP BY ALL ORDER BY ALL",
                    [cfg.insurer_id],
                ).fetchall()
            )
        rejected = {o.source_file: o.error for o in summary.outcomes if o.status == "rejected"}
        return dg.MaterializeResult(
            metadata={
                "files_loaded": summary.count("loaded"),
                "files_rejected": summary.count("rejected"),
                "files_already_ingested": summary.count("already_loaded") + summary.count("already_rejected"),
                "rows_loaded": summary.rows_loaded,
                "rows_quarantined": summary.rows_quarantined,
                "rejected_files": dg.MetadataValue.json(rejected),
                "quarantine_by_reason_total": dg.MetadataValue.json(quarantine_by_reason),
            }
        )

    return _ingest


def build_disabled_asset(insurer_id: str, config_error: str) -> dg.AssetsDefinition:
    """The asset of an insurer whose config is invalid: it reads nothing and reports why (its `config` check
    fails), so the insurer's files wait in the landing zone while every other insurer runs."""

    @dg.asset(
        key=asset_key(insurer_id),
        group_name=GROUP,
        kinds={"polars", "duckdb"},
        description=f"DISABLED: the mapping config of {insurer_id} is invalid, so its files are not read.\n\n{config_error}",
        metadata={"insurer_id": insurer_id, "disabled": True},
        tags={"insurer": insurer_id},
    )
    def _disabled(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        context.log.error(f"{insurer_id} is disabled, its files are not read: {config_error}")
        return dg.MaterializeResult(metadata={"disabled": True, "config_error": dg.MetadataValue.md(
            "```\n" + config_error + "\n```"), "files_loaded": 0})

    return _disabled


# Tables every insurer's ingestion writes into, by (schema, table); dbt declares them as sources. The gate's
# decisions (control.submission_gate) are an asset of their own (orchestration.defs.ingestion.gate).
LANDED_TABLES = {
    ("raw", "policies"): "Canonical policy terms of every insurer (every delivered version).",
    ("raw", "incidents"): "Canonical incidents of every insurer (every delivered version).",
    ("raw", "claim_valuations"): "Canonical claim valuations of every insurer (every delivered row).",
    ("raw", "quarantine"): "Rows that failed row-level validation, with reason codes.",
    ("control", "submissions"): "One row per distinct submitted file content: loaded or rejected, with counts.",
    ("control", "submission_fields"): "How each canonical field was delivered in each loaded submission.",
}
# The rows of a table per insurer (submission_fields carries no insurer: its submission does).
_ROWS_BY_INSURER = {
    ("control", "submission_fields"): "SELECT s.insurer_id, count(*) FROM control.submission_fields f "
                                      "JOIN control.submissions s USING (submission_id) GROUP BY ALL ORDER BY ALL",
}


def build_landed_table_asset(schema: str, table: str, insurer_ids: list[str]) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey([schema, table]),
        deps=[asset_key(i) for i in insurer_ids],
        group_name=GROUP,
        kinds={"duckdb"},
        description=f"{schema}.{table}: {LANDED_TABLES[schema, table]} Records row counts per insurer after ingestion.",
    )
    def _landed_table(warehouse: WarehouseResource) -> dg.MaterializeResult:
        sql = _ROWS_BY_INSURER.get((schema, table), f"SELECT insurer_id, count(*) FROM {schema}.{table} GROUP BY ALL ORDER BY ALL")
        with warehouse.reader() as con:
            by_insurer = dict(con.execute(sql).fetchall())
        return dg.MaterializeResult(
            metadata={"rows": sum(by_insurer.values()), "rows_by_insurer": dg.MetadataValue.json(by_insurer)}
        )

    return _landed_table


def landing_relative(path: Path, landing_root: Path) -> str:
    return path.relative_to(landing_root).as_posix()
