"""Dagster: the definitions load, the asset graph has each insurer, the sensor turns files into runs."""

from __future__ import annotations

import json
import os
import shutil

import dagster as dg

from ingestion.config import load_all_configs
from ingestion.pipeline import content_hash
from orchestration.defs.ingestion import build_defs
from orchestration.defs.ingestion.assets import asset_key
from orchestration.defs.resources import WRITER_POOL, LandingZoneResource


def test_definitions_load_with_an_asset_per_insurer_in_the_writer_pool():
    from orchestration.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for insurer_id in load_all_configs():
        node = graph.get(asset_key(insurer_id))
        assert node.pools == {WRITER_POOL}
    assert defs.resolve_job_def("monthly_cycle") is not None
    assert defs.resolve_sensor_def("landing_sensor") is not None


def test_materialization_reports_counts(sample):
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(build_defs().assets, resources=sample.resources, instance=instance)
        assert result.success
        for insurer_id in load_all_configs():
            event = instance.get_latest_materialization_event(asset_key(insurer_id))
            metadata = event.asset_materialization.metadata
            # Everything was ingested by the session fixture: this run finds only known content.
            assert metadata["files_loaded"].value == 0
            assert metadata["files_already_ingested"].value > 0


def test_sensor_requests_one_run_per_new_file_keyed_by_content(tmp_path, sample):
    landing = tmp_path / "landing"
    shutil.copytree(sample.landing / "dongfang_pc", landing / "dongfang_pc")
    from orchestration.definitions import defs

    sensor = defs.resolve_sensor_def("landing_sensor")
    resources = {"landing": LandingZoneResource(path=str(landing))}
    files = sorted((landing / "dongfang_pc").iterdir())

    with dg.build_sensor_context(resources=resources) as ctx:
        first = sensor(ctx)
    assert len(first.run_requests) == len(files)
    keys = {r.run_key for r in first.run_requests}
    # A resubmitted file has the same content hash, hence the same run key: Dagster starts it once.
    assert keys == {content_hash(p) for p in files}
    request = first.run_requests[0]
    assert request.asset_selection == [asset_key("dongfang_pc")]
    config_files = request.run_config["ops"][asset_key("dongfang_pc").to_python_identifier()]["config"]["files"]
    assert config_files[0].startswith("dongfang_pc/")

    with dg.build_sensor_context(cursor=first.cursor, resources=resources) as ctx:
        assert sensor(ctx).run_requests == []

    new = landing / "dongfang_pc" / "claims_209912.csv"
    new.write_text("ClaimNo\n", encoding="utf-8")
    newest = json.loads(first.cursor)["mtime_ns"]
    os.utime(new, ns=(newest + 1_000_000, newest + 1_000_000))
    with dg.build_sensor_context(cursor=first.cursor, resources=resources) as ctx:
        third = sensor(ctx)
    assert [r.run_key for r in third.run_requests] == [content_hash(new)]
