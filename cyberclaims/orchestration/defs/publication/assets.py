"""The published sector claims database as a Dagster asset downstream of every mart, and the insurers'
feedback downstream of it. Built from the dbt manifest when the definitions load (build_publication_assets),
never at import."""

import shutil
import tempfile
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from cyberclaims.orchestration.defs.resources import REBUILD_TAG, WRITER_POOL, DataZoneResource, WarehouseResource
from cyberclaims.orchestration.defs.transformation.project import (
    WarehouseMismatch,
    check_dbt_warehouse,
    dbt_project,
    dbt_source_fingerprint,
)
from cyberclaims.publication.feedback import submission_reports, write_feedback
from cyberclaims.publication.publish import (
    PublicationHeld,
    publication_metadata,
    publish,
    published_manifest,
    published_submissions,
    published_tables_from_manifest,
)

PUBLISHED_KEY = dg.AssetKey(["published", "sector_claims"])
FEEDBACK_KEY = dg.AssetKey(["feedback", "insurer_reports"])


def build_publication_assets() -> list[dg.AssetsDefinition]:
    """The published database and the feedback. Every published table is copied from a dbt mart (its source
    in publication.publish.published_tables_from_manifest), so the published database depends on each."""
    marts = sorted({t.source for t in published_tables_from_manifest(dbt_project().manifest_path)})
    return [_sector_claims_db([dg.AssetKey(["marts", m]) for m in marts]), insurer_feedback]


def _sector_claims_db(deps: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=PUBLISHED_KEY,
        deps=deps,
        group_name="publication",
        kinds={"duckdb", "parquet"},
        pool=WRITER_POOL,
        description=(
            "data/published/sector_claims.duckdb: the versioned, read-only sector claims database. Built as a new "
            "file holding only the marts (internal columns dropped), audited (no clear identifiers, no insurer "
            "identity, row counts consistent with the last version), then swapped in atomically."
        ),
    )
    def sector_claims_db(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, zone: DataZoneResource, dbt: DbtCliResource
    ) -> dg.MaterializeResult:
        return _publish(context, warehouse, zone, dbt)

    return sector_claims_db


def _publish(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, zone: DataZoneResource, dbt: DbtCliResource
) -> dg.MaterializeResult:
    project = dbt_project()
    sources = dbt_source_fingerprint(project.project_dir)

    def build_catalog(target: Path) -> None:
        """The dbt docs site of this version, as one static page plus its manifest and catalog. It
        describes the project's models and columns (no data), so a version built from the same dbt
        project files reuses the current version's site instead of starting dbt again."""
        current = zone.published / "catalog"
        if published_manifest(zone.published).get("dbt_project_fingerprint") == sources and (
            current / "index.html"
        ).exists():
            shutil.copytree(current.resolve(), target)
            context.log.info("dbt project unchanged since the published version: its docs site is reused")
            return
        try:
            check_dbt_warehouse(warehouse.path)
        except WarehouseMismatch as exc:
            raise dg.Failure(description=str(exc)) from None
        with tempfile.TemporaryDirectory(prefix="cyberclaims-docs-") as tmp:
            dbt.cli(["docs", "generate", "--static"], target_path=Path(tmp), raise_on_error=True).wait()
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / "static_index.html", target / "index.html")
            for name in ("manifest.json", "catalog.json"):
                shutil.copyfile(Path(tmp) / name, target / name)

    with warehouse.reader() as con:
        extra = publication_metadata(con, project.project_dir) | {"dbt_project_fingerprint": sources}
    try:
        result = publish(
            warehouse.path,
            zone.published,
            published_tables_from_manifest(project.manifest_path),
            extra,
            catalog_builder=build_catalog,
            force=context.run.tags.get(REBUILD_TAG) == "true",
        )
    except PublicationHeld as held:
        # Nothing is wrong: the change since the published version is one few insurers made; it waits.
        context.log.warning(str(held))
        current = published_manifest(zone.published)
        return dg.MaterializeResult(metadata={
            "version": current.get("version"),
            "published": False,
            "held": next(c.detail for c in held.results if not c.passed),
            "path": str(zone.published / "sector_claims.duckdb"),
            "checks": dg.MetadataValue.json({c.name: c.passed for c in held.results}),
        })
    if result.published:
        context.log.info(f"published version {result.version}: {result.path}")
    else:
        # Another run published these marts' inputs while this one waited for the writer pool.
        context.log.info(f"nothing new to publish: version {result.version} was built from the same inputs")
    return dg.MaterializeResult(
        metadata={
            "version": result.version,
            "published": result.published,
            "path": str(result.path),
            "parquet": str(zone.published / "parquet"),
            "catalog": dg.MetadataValue.path(str(zone.published / "catalog" / "index.html")),
            "rows": dg.MetadataValue.json(result.tables),
            "checks": dg.MetadataValue.json({c.name: c.passed for c in result.checks}),
        }
    )


@dg.asset(
    key=FEEDBACK_KEY,
    deps=[PUBLISHED_KEY],
    group_name="publication",
    kinds={"html", "json"},
    pool=WRITER_POOL,
    description=(
        "`data/feedback/<insurer>/<submission>.{json,html}`: per submission, rows delivered / accepted / "
        "quarantined by reason with sample rows, warnings, rejection, and the published version it is in. "
        "Each insurer's folder holds only its own submissions."
    ),
)
def insurer_feedback(warehouse: WarehouseResource, zone: DataZoneResource) -> dg.MaterializeResult:
    with warehouse.reader() as con:
        reports = submission_reports(con, published_submissions(zone.published))
    written = write_feedback(reports, zone.feedback)
    by_insurer: dict[str, int] = {}
    for r in reports:
        by_insurer[r["insurer_id"]] = by_insurer.get(r["insurer_id"], 0) + 1
    return dg.MaterializeResult(
        metadata={"reports": written, "reports_by_insurer": dg.MetadataValue.json(by_insurer),
                  "folder": str(zone.feedback)}
    )
