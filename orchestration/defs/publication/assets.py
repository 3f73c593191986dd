"""The published sector claims database as a Dagster asset downstream of every mart."""

import dagster as dg

from cyberclaims.settings import paths
from orchestration.defs.resources import WRITER_POOL, WarehouseResource
from orchestration.defs.transformation.project import dbt_project
from publication.publish import publication_metadata, publish, published_tables_from_manifest

MARTS = (
    "dim_sector", "dim_product_type", "dim_coverage_section", "dim_incident_type", "dim_region", "dim_size_band",
    "dim_date", "fct_policies", "fct_claim_valuations", "fct_claims", "fct_loss_events", "fct_systemic_events",
)


@dg.asset(
    key=dg.AssetKey(["published", "sector_claims"]),
    deps=[dg.AssetKey(["marts", m]) for m in MARTS],
    group_name="publication",
    kinds={"duckdb", "parquet"},
    pool=WRITER_POOL,
    description=(
        "data/published/sector_claims.duckdb: the versioned, read-only sector claims database. Built as a new "
        "file holding only the marts (internal columns dropped), audited (no clear identifiers, no insurer "
        "identity, row counts consistent with the last version), then swapped in atomically."
    ),
)
def sector_claims_db(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    project = dbt_project()
    with warehouse.reader() as con:
        extra = publication_metadata(con, project.project_dir)
    result = publish(
        warehouse.path,
        paths().published,
        published_tables_from_manifest(project.manifest_path),
        extra,
    )
    context.log.info(f"published version {result.version}: {result.path}")
    return dg.MaterializeResult(
        metadata={
            "version": result.version,
            "path": str(result.path),
            "rows": dg.MetadataValue.json(result.tables),
            "checks": dg.MetadataValue.json({c.name: c.passed for c in result.checks}),
        }
    )
