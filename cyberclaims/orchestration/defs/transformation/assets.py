"""dbt models as Dagster assets: one graph from each insurer's ingestion to the marts.

The build holds, rebuilds and publishes the rest when its blocking tests fail only on rows of new
submissions (quality.sector.attribute_sector_failures); any other failure fails the step and, with it,
publication."""

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from cyberclaims.orchestration.defs.ingestion.assets import LANDED_TABLES
from cyberclaims.orchestration.defs.ingestion.gate import SUBMISSION_GATE
from cyberclaims.orchestration.defs.resources import WRITER_POOL, DataZoneResource, WarehouseResource
from cyberclaims.orchestration.defs.transformation.project import (
    WarehouseMismatch,
    blocked_message,
    build_failures,
    check_dbt_warehouse,
    dbt_build_args,
    dbt_project,
    dbt_source_fingerprint,
)
from cyberclaims.publication.publish import published_manifest, published_submissions
from cyberclaims.quality.sector import SectorTestFailure, attribute_sector_failures, hold_for_sector_tests
from cyberclaims.transformation.builds import (
    full_refresh_reason,
    inputs_fingerprint,
    record_build_completed,
    record_build_inputs,
    record_build_restarted,
)

# dbt folder (resource path) → (asset key prefix, Dagster group)
_LAYERS = {"staging": "staging", "intermediate": "intermediate", "marts": "marts"}


def layer_of(props: Mapping[str, Any]) -> str:
    if props["resource_type"] == "seed":
        return "reference"
    folders = props.get("fqn", [])[1:-1]
    return next((_LAYERS[f] for f in folders if f in _LAYERS), "transformation")


class CyberclaimsDbtTranslator(DagsterDbtTranslator):
    """Sources keep dbt's key (raw/<table>, the ingestion's raw-table assets); models and seeds
    are keyed and grouped by layer."""

    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec
        layer = layer_of(props)
        # Every model and seed waits for the build decision: when it is skipped, so is the dbt step.
        return spec.replace_attributes(key=dg.AssetKey([layer, props["name"]]), group_name=layer).merge_attributes(
            deps=[BUILD_INPUTS]
        )


TRANSLATOR = CyberclaimsDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False


BUILD_INPUTS = dg.AssetKey(["transformation", "build_inputs"])

# When the build is skipped, Dagster's plan warns once per blocking dbt test that it "emitted no result in
# step 'cyberclaims_dbt'" and that publication "will proceed without gating"; publication is skipped with
# the dbt step, so nothing proceeds, and those hundreds of lines are dropped wherever the definitions load.
logging.getLogger("dagster._core.execution.plan.active").addFilter(
    lambda record: "emitted no result in step 'cyberclaims_dbt'" not in record.getMessage()
)


class BuildInputsConfig(dg.Config):
    # Build even when nothing changed since the published version.
    rebuild: bool = False


def nothing_new_since(published_dir: Path, fingerprint: str) -> int | None:
    """The published version built from exactly these inputs, if the current one is."""
    manifest = published_manifest(published_dir)
    return manifest["version"] if manifest.get("inputs_fingerprint") == fingerprint else None


@dg.asset(
    key=BUILD_INPUTS,
    deps=[*(dg.AssetKey([schema, table]) for schema, table in LANDED_TABLES), SUBMISSION_GATE],
    group_name="transformation",
    kinds={"duckdb"},
    pool=WRITER_POOL,
    output_required=False,
    description=(
        "Whether the marts need building: the fingerprint of their inputs (submissions with gate decisions, raw "
        "row counts, dbt project files, contract and code version) against the published version's. Equal: "
        "nothing is materialized, and Dagster skips the dbt build and tests, publication, feedback and the "
        "regulator pack, which would come out the same. Config rebuild: true builds anyway."
    ),
)
def build_inputs(
    context: dg.AssetExecutionContext, config: BuildInputsConfig, warehouse: WarehouseResource, zone: DataZoneResource
):
    with warehouse.reader() as con:
        fingerprint = inputs_fingerprint(con, dbt_source_fingerprint())
    version = nothing_new_since(zone.published, fingerprint)
    if version is not None and not config.rebuild:
        context.log.info(
            f"nothing new since published version {version} (same submissions, gate decisions and dbt project): "
            "dbt build, publication, feedback and regulator pack skipped"
        )
        return
    yield dg.MaterializeResult(metadata={"inputs_fingerprint": fingerprint})


def _failures(invocation) -> list[SectorTestFailure]:
    """What a failed invocation stopped on; dbt itself failing (no run results) is a failure of its own."""
    try:
        failures = build_failures(invocation.get_artifact("run_results.json"))
    except FileNotFoundError:
        failures = []
    return failures or [SectorTestFailure("dbt", "invocation", "error", str(invocation.get_error() or "no results"))]


def build_dbt_assets() -> dg.AssetsDefinition:
    project = dbt_project()

    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=TRANSLATOR, pool=WRITER_POOL)
    def cyberclaims_dbt(
        context: dg.AssetExecutionContext,
        config: DbtBuildConfig,
        dbt: DbtCliResource,
        warehouse: WarehouseResource,
        zone: DataZoneResource,
    ):
        try:
            check_dbt_warehouse(warehouse.path)
        except WarehouseMismatch as exc:
            raise dg.Failure(description=str(exc)) from None
        # Recorded here, not taken from build_inputs: the inputs as this build starts (a review may have
        # run in between), and also when the dbt assets are materialized on their own.
        project_fingerprint = dbt_source_fingerprint(project.project_dir)
        with warehouse.writer() as con:
            why_whole = full_refresh_reason(con, project_fingerprint)
            started = record_build_inputs(con, inputs_fingerprint(con, project_fingerprint), project_fingerprint)
        # The incremental models keep rows built by earlier runs: when the project changed since the
        # last completed build, or a submission left the admitted set, they are rebuilt whole.
        full_refresh = config.full_refresh or why_whole is not None
        if full_refresh and not config.full_refresh:
            context.log.info(f"{why_whole}: the incremental models are rebuilt whole (full refresh)")
        published = set(published_submissions(zone.published))
        held: list[str] = []
        # One insurer never stops the sector: while the build fails only on blocking tests whose failing
        # rows name new submissions, those are held and the marts rebuilt whole without them. Each round
        # holds at least one more submission, so this ends. Only the last build's events reach Dagster
        # (an output is yielded once per step).
        while True:
            invocation = dbt.cli(dbt_build_args(full_refresh=full_refresh), context=context, raise_on_error=False)
            events = list(invocation.stream())
            if invocation.is_successful():
                break
            failures = _failures(invocation)
            with warehouse.reader() as con:
                verdict = attribute_sector_failures(con, failures, published)
            if not verdict.attributable:
                break
            with warehouse.writer() as con:
                holds = hold_for_sector_tests(con, verdict.holds)
                started = record_build_restarted(con, started, inputs_fingerprint(con, project_fingerprint))
            for h in holds:
                context.log.warning(f"{h['source_file']}: HELD ({h['note']}); the marts are rebuilt without it")
            held += [h["source_file"] for h in holds]
            full_refresh = True
        yield from events
        if not invocation.is_successful():
            raise dg.Failure(
                description=blocked_message(verdict, held),
                metadata={"unattributable": dg.MetadataValue.json(dict(verdict.unattributable)),
                          "held_for_sector_tests": dg.MetadataValue.json(held)},
            )
        if held:
            context.log.warning(f"{len(held)} submission(s) held for failing sector tests: {', '.join(held)}; "
                                "the marts hold the others")
        with warehouse.writer() as con:
            record_build_completed(con, started)

    return cyberclaims_dbt
