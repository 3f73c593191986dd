"""File arrival: each new landing file becomes a run of its insurer's ingestion and gate assets.

The run key is the file's content hash, so the same content under another name (or a
sensor tick that sees a file twice) never starts a second run. The cursor remembers the
newest modification time seen, so a tick hashes only files that arrived since.
"""

import json

import dagster as dg

from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.ingestion.pipeline import content_hash, display_name, landing_files
from cyberclaims.orchestration.defs.ingestion.assets import asset_key, landing_relative
from cyberclaims.orchestration.defs.ingestion.gate import gate_key
from cyberclaims.orchestration.defs.resources import LandingZoneResource


def build_landing_sensor(configs: dict[str, InsurerConfig], job) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts an ingestion run for every new file in data/landing/<insurer>/ (run key = content hash).",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource) -> dg.SensorResult:
        state = json.loads(context.cursor) if context.cursor else {"mtime_ns": 0, "at_mtime": []}
        newest, at_newest = state["mtime_ns"], set(state["at_mtime"])
        requests = []
        for insurer_id in sorted(configs):
            for path in landing_files(landing.root, insurer_id):
                mtime = path.stat().st_mtime_ns
                rel = landing_relative(path, landing.root)
                if mtime < state["mtime_ns"] or (mtime == state["mtime_ns"] and rel in state["at_mtime"]):
                    continue
                requests.append(
                    dg.RunRequest(
                        # Identity of a submission is (insurer, content): the same bytes from two insurers are two runs.
                        run_key=f"{insurer_id}:{content_hash(path)}",
                        asset_selection=[asset_key(insurer_id), gate_key(insurer_id)],
                        run_config={"ops": {asset_key(insurer_id).to_python_identifier(): {"config": {"files": [rel]}}}},
                        # The name as every listing shows it (hidden characters escaped); the config keeps the real one.
                        tags={"insurer": insurer_id, "source_file": display_name(path, landing.root)},
                    )
                )
                if mtime > newest:
                    newest, at_newest = mtime, {rel}
                elif mtime == newest:
                    at_newest.add(rel)
        cursor = json.dumps({"mtime_ns": newest, "at_mtime": sorted(at_newest)})
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return landing_sensor
