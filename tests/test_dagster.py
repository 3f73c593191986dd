"""Dagster: the definitions load, the asset graph has each insurer, the sensor turns files into runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import dagster as dg

from cyberclaims.ingestion.config import load_all_configs
from cyberclaims.ingestion.pipeline import content_hash
from cyberclaims.orchestration.defs.ingestion import build_defs
from cyberclaims.orchestration.defs.ingestion.assets import asset_key
from cyberclaims.orchestration.defs.ingestion.gate import gate_key
from cyberclaims.orchestration.defs.resources import WRITER_POOL, LandingZoneResource
from cyberclaims.sample.profiles import sample_insurers
from cyberclaims.settings import PROJECT_ROOT
from tests.conftest import materialize


def load_definitions() -> dg.Definitions:
    from cyberclaims.orchestration.definitions import defs

    return defs()


def test_importing_the_code_location_reads_no_manifest_config_or_data():
    """The definitions are built when Dagster loads them (@dg.definitions), not at import: importing the
    module opens no dbt manifest, no insurer config and nothing of the data zone."""
    code = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' else None)\n"
        "import cyberclaims.orchestration.definitions\n"
        "import json; print(json.dumps(opened))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PROJECT_ROOT, env={**os.environ, "CYBERCLAIMS_DATA_DIR": "/nonexistent/data"}).stdout
    opened = json.loads(out.strip().splitlines()[-1])
    assert len(opened) > 10  # the hook saw the imports' own files
    read = [p for p in opened if "site-packages" not in p and (
        p.startswith(str(PROJECT_ROOT / "dbt_project")) or p.endswith((".yaml", ".yml", ".json", ".duckdb")))]
    assert read == []
    from cyberclaims.orchestration.definitions import defs

    assert isinstance(defs(), dg.Definitions)


def test_the_command_line_runs_the_definitions_cycle_job_by_default_without_importing_dagster():
    code = (
        "import sys\n"
        "import cyberclaims.cli as cli\n"
        "[job] = [p.default for p in cli.run.params if p.name == 'job_name']\n"
        "print(job, 'dagster' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT).stdout
    from cyberclaims.orchestration.definitions import CYCLE_JOB

    assert out.split() == [CYCLE_JOB, "False"]


def test_definitions_load_with_an_asset_per_insurer_in_the_writer_pool():
    defs = load_definitions()

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for insurer_id in load_all_configs():
        node = graph.get(asset_key(insurer_id))
        assert node.pools == {WRITER_POOL}
    assert defs.resolve_job_def("monthly_cycle") is not None
    assert defs.resolve_sensor_def("landing_sensor") is not None
    assert defs.resolve_job_def("review_submission") is not None
    # Every insurer's gate decisions are an asset downstream of its ingestion, in the writer pool, with its checks;
    # the decisions table dbt's staging reads is downstream of every insurer's gate.
    from cyberclaims.orchestration.defs.ingestion.gate import DECIDED_CHECK, HELD_CHECK, SUBMISSION_GATE, gate_key

    insurers = load_all_configs()
    for insurer_id in insurers:
        node = graph.get(gate_key(insurer_id))
        assert node.pools == {WRITER_POOL} and asset_key(insurer_id) in node.parent_keys
        assert {c.name for c in node.check_keys} == {HELD_CHECK, DECIDED_CHECK}
    assert graph.get(SUBMISSION_GATE).parent_keys == {gate_key(i) for i in insurers}
    staging = next(k for k in graph.get(SUBMISSION_GATE).child_keys if k.path[0] == "staging")
    assert staging.path[-1].startswith("stg_raw__")


def test_materialization_reports_counts(sample):
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(build_defs().assets, sample.resources, instance=instance)
        assert result.success
        for insurer_id in sample_insurers():
            event = instance.get_latest_materialization_event(asset_key(insurer_id))
            metadata = event.asset_materialization.metadata
            # Everything was ingested by the session fixture: this run finds only known content.
            assert metadata["files_loaded"].value == 0
            assert metadata["files_already_ingested"].value > 0


def test_the_landing_sensor_starts_nothing_for_known_files_and_one_run_for_new_ones(tmp_path, sample):
    """After a cycle, the first sensor evaluation starts nothing (the files' content is in the warehouse, even under
    a new name); two new files of two insurers start one run naming both; the next tick, with that run on its way,
    starts nothing more."""
    landing = tmp_path / "landing"
    shutil.copytree(sample.landing, landing)
    defs = load_definitions()
    sensor = defs.resolve_sensor_def("landing_sensor")
    resources = {"landing": LandingZoneResource(path=str(landing)), "warehouse": sample.resources["warehouse"]}
    shutil.copy(landing / "dongfang_pc" / "claims_202412.csv", landing / "dongfang_pc" / "claims_202412_resent.csv")

    with dg.build_sensor_context(resources=resources) as ctx:
        first = sensor(ctx)
    assert first.run_requests == [], [r.run_config for r in first.run_requests]

    new = {}
    for insurer_id, old, name in (("dongfang_pc", "claims_202412.csv", "claims_202501.csv"),
                                  ("changjiang_ins", "CJ_CLAIM_202412.csv", "CJ_CLAIM_202501.csv")):
        data = (landing / insurer_id / old).read_bytes()  # the valuation date moved on, in the file's own encoding
        new[insurer_id] = landing / insurer_id / name
        new[insurer_id].write_bytes(data.replace(b"2024-12-31", b"2025-01-31").replace(b"20241231", b"20250131"))
        assert content_hash(new[insurer_id]) != content_hash(landing / insurer_id / old)
    with dg.build_sensor_context(cursor=first.cursor, resources=resources) as ctx:
        second = sensor(ctx)
    assert len(second.run_requests) == 1
    request = second.run_requests[0]
    assert set(request.asset_selection) == {asset_key(i) for i in new} | {gate_key(i) for i in new}
    assert {op: c["config"]["files"] for op, c in request.run_config["ops"].items()} == {
        asset_key(i).to_python_identifier(): [f"{i}/{p.name}"] for i, p in new.items()}
    job = defs.resolve_job_def("ingest_landing").get_subset(asset_selection=set(request.asset_selection))
    assert dg.validate_run_config(job, request.run_config)

    with dg.build_sensor_context(cursor=second.cursor, resources=resources) as ctx:
        assert sensor(ctx).run_requests == [], "the run for them is on its way"

def test_one_lineage_graph_from_every_insurer_to_the_marts():
    defs = load_definitions()

    graph = defs.resolve_asset_graph()
    marts = {k for k in graph.get_all_asset_keys() if k.path[0] == "marts"}
    assert {dg.AssetKey(["marts", m]) for m in ("fct_policies", "fct_claims", "fct_claim_valuations",
                                                 "fct_loss_events", "fct_systemic_events")} <= marts
    for insurer_id in load_all_configs():
        downstream = graph.get(asset_key(insurer_id)).child_keys
        seen, frontier = set(), set(downstream)
        while frontier:
            key = frontier.pop()
            seen.add(key)
            frontier |= set(graph.get(key).child_keys) - seen
        assert dg.AssetKey(["marts", "fct_claims"]) in seen, f"{insurer_id} is not upstream of the marts"
        assert dg.AssetKey(["raw", "claim_valuations"]) in seen
    # Every model and seed waits for the build decision, so skipping it skips the whole dbt step.
    from cyberclaims.orchestration.defs.transformation.assets import BUILD_INPUTS

    dbt_keys = {k for k in graph.get_all_asset_keys() if k.path[0] in ("staging", "intermediate", "marts", "reference")}
    assert dbt_keys and all(BUILD_INPUTS in graph.get(k).parent_keys for k in dbt_keys)


def test_descriptions_render_placeholders_as_code_not_as_html():
    """The UI renders descriptions as Markdown, where a bare `<quarter>` is an HTML tag and vanishes: every
    placeholder in an asset, check, job or sensor description is inside backticks."""
    import re

    defs = load_definitions()
    graph = defs.resolve_asset_graph()
    texts = {k.to_user_string(): graph.get(k).description for k in graph.get_all_asset_keys()}
    texts |= {f"check {c.to_user_string()}": spec.description for c, spec in
              ((c, graph.get_check_spec(c)) for c in graph.asset_check_keys)}
    texts |= {f"job {j.name}": j.description for j in defs.resolve_all_job_defs()}
    texts |= {f"sensor {s.name}": s.description for s in defs.sensors or []}
    bare = {name: re.findall(r"<[A-Za-z_]+>", re.sub(r"`[^`]*`", "", text or "")) for name, text in texts.items()}
    assert {name: tags for name, tags in bare.items() if tags} == {}


def test_dbt_build_args():
    from cyberclaims.orchestration.defs.transformation.project import dbt_build_args

    assert dbt_build_args() == ["build"]
    assert dbt_build_args(full_refresh=True, select="marts") == ["build", "--full-refresh", "--select", "marts"]


def test_dbt_models_are_keyed_and_grouped_by_layer():
    defs = load_definitions()

    graph = defs.resolve_asset_graph()
    stg = graph.get(dg.AssetKey(["staging", "stg_raw__policies"]))
    assert dg.AssetKey(["raw", "policies"]) in stg.parent_keys
    assert graph.get(dg.AssetKey(["reference", "tax_sector"])).group_name == "reference"
    # Every source dbt reads is an asset some stage materializes: no auto-created stub in a `default` group.
    stubs = [k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "default"]
    assert stubs == []
    assert graph.get(dg.AssetKey(["marts", "fct_claims"])).group_name == "marts"


def _next_ticks(schedule: dg.ScheduleDefinition, after: str, n: int) -> list[str]:
    """The schedule's next n ticks after an instant, as the Dagster daemon computes them."""
    import datetime as dt
    import itertools

    from dagster._utils.schedules import cron_string_iterator

    start = dt.datetime.fromisoformat(after).timestamp()
    ticks = cron_string_iterator(start, schedule.cron_schedule, schedule.execution_timezone)
    return [t.isoformat() for t in itertools.islice((t for t in ticks if t.timestamp() > start), n)]


def test_monthly_schedule_runs_the_whole_cycle():
    defs = load_definitions()

    schedule = defs.resolve_schedule_def("monthly_cycle_schedule")
    assert schedule.job_name == "monthly_cycle"
    # Monthly, on the 3rd at 06:00 Beijing time, whatever the day it starts from.
    assert _next_ticks(schedule, "2025-01-31T23:00:00+00:00", 3) == [
        "2025-02-03T06:00:00+08:00", "2025-03-03T06:00:00+08:00", "2025-04-03T06:00:00+08:00"]
    # 2025-03-02 22:00 UTC is that tick itself: a minute before, it is next; at it, April's is.
    assert _next_ticks(schedule, "2025-03-02T21:59:00+00:00", 1) == ["2025-03-03T06:00:00+08:00"]
    assert _next_ticks(schedule, "2025-03-02T22:00:00+00:00", 1) == ["2025-04-03T06:00:00+08:00"]
    cycle = defs.resolve_job_def("monthly_cycle")
    assert dg.AssetKey(["published", "sector_claims"]) in cycle.asset_layer.executable_asset_keys


def test_the_regulator_pack_is_in_the_cycle_and_on_a_quarterly_schedule():
    defs = load_definitions()

    pack = dg.AssetKey(["regulator", "pilot_statistics"])
    assert pack in defs.resolve_job_def("monthly_cycle").asset_layer.executable_asset_keys
    schedule = defs.resolve_schedule_def("quarterly_regulator_schedule")
    assert schedule.job_name == "regulator_pack"
    # On the 10th of the month after each quarter, 06:00 in Beijing.
    assert _next_ticks(schedule, "2025-01-10T00:00:00+00:00", 4) == [
        "2025-04-10T06:00:00+08:00", "2025-07-10T06:00:00+08:00", "2025-10-10T06:00:00+08:00",
        "2026-01-10T06:00:00+08:00"]
    assert defs.resolve_job_def("regulator_pack").asset_layer.executable_asset_keys == {pack}
    upstream = defs.resolve_assets_def(pack).asset_deps[pack]
    assert dg.AssetKey(["published", "sector_claims"]) in upstream
    # …and on the dbt marts that define its figures, which are assets of the graph, not stubs.
    cells = dg.AssetKey(["marts", "reg_cells"])
    assert cells in upstream and defs.resolve_assets_def(cells).is_executable


def test_dbt_source_fingerprint_follows_the_project_files_only(tmp_path):
    import shutil

    from cyberclaims.orchestration.defs.transformation.project import DBT_PROJECT_DIR, dbt_source_fingerprint

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    before = dbt_source_fingerprint(project)
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text("{}")
    assert dbt_source_fingerprint(project) == before  # build output is not a source
    model = project / "models" / "marts" / "core" / "fct_claims.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    assert dbt_source_fingerprint(project) != before


def test_a_dbt_build_whose_profile_names_another_warehouse_stops_before_dbt_starts(sample, tmp_path, monkeypatch):
    """The warehouse resource and dbt's profile (CYBERCLAIMS_DUCKDB) must name one file: otherwise the marts
    would be built into another warehouse than the one the run records and publishes."""
    from cyberclaims.orchestration.defs.transformation import build_dbt_assets
    from tests.conftest import make_resources

    db = sample.scratch_copy(tmp_path / "data" / "warehouse" / "wh.duckdb")
    elsewhere = tmp_path / "elsewhere.duckdb"
    monkeypatch.setenv("CYBERCLAIMS_DUCKDB", str(elsewhere))
    result = dg.materialize([build_dbt_assets()], resources=make_resources(tmp_path / "data", db), raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.message
    assert f"dbt's profile names {elsewhere}" in failure and str(db) in failure
    assert not elsewhere.exists()
