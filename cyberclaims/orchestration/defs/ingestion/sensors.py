"""File arrival: the landing files the warehouse does not know start one run of their insurers' ingestion and gate.

A file is known when the warehouse has seen it unchanged (size, modification and inode change time, the quick
check ingestion itself makes) or holds its content as a submission of the insurer (ingestion.pipeline.KnownFiles),
so the first start of the UI after a cycle starts nothing. One tick that finds several new files starts one run
naming them all (run key: the files and their stat, so a tick that sees the same files again starts nothing); the
cursor keeps the files requested until the warehouse knows them, so a file arriving while that run is going
adds a run for itself only, and a file still unknown an hour after its request (its run failed) is requested
again. While another process writes the warehouse, the tick is skipped and the next one looks again.
"""

import hashlib
import json
import time

import dagster as dg
import duckdb

from cyberclaims.ingestion import warehouse as wh
from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.ingestion.pipeline import KnownFiles, display_name, landing_files
from cyberclaims.orchestration.defs.ingestion.assets import asset_key, landing_relative
from cyberclaims.orchestration.defs.ingestion.gate import gate_key
from cyberclaims.orchestration.defs.resources import LandingZoneResource, WarehouseResource

# A file requested this long ago and still unknown (its run failed) is requested again.
REQUEST_AGAIN_AFTER_SECONDS = 3600
# At most this many file names in a run's tag (the run config names every file).
_FILES_IN_TAG = 5


def _stat(path) -> list[int]:
    s = path.stat()
    return [s.st_size, s.st_mtime_ns, s.st_ctime_ns]


def build_landing_sensor(configs: dict[str, InsurerConfig], job) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_sensor",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Starts one ingestion-and-gate run for the files in `data/landing/<insurer>/` the warehouse does not know "
            "yet (by their stat, then by their content); files it already holds start nothing."
        ),
    )
    def landing_sensor(
        context: dg.SensorEvaluationContext, landing: LandingZoneResource, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        now = int(time.time())
        requested: dict[str, list[int]] = json.loads(context.cursor).get("requested", {}) if context.cursor else {}
        candidates = {
            insurer_id: [(path, landing_relative(path, landing.root)) for path in landing_files(landing.root, insurer_id)]
            for insurer_id in sorted(configs)
        }
        new: dict[str, list[str]] = {}
        names: list[str] = []
        still_requested: dict[str, list[int]] = {}
        try:
            known = None
            if warehouse.path.exists():
                with wh.connect(warehouse.path, read_only=True) as con:
                    known = KnownFiles.read(con)
        except duckdb.IOException as exc:
            return dg.SkipReason(f"the warehouse is being written by another process ({exc}); the next tick looks again")
        except duckdb.CatalogException:
            known = None  # a warehouse from before the control schema: its next writer migrates it
        for insurer_id, files in candidates.items():
            for path, rel in files:
                if known is not None and known.is_known(configs[insurer_id], landing.root, path):
                    continue
                stat = _stat(path)
                before = requested.get(rel)
                if before is not None and before[:3] == stat and now - before[3] < REQUEST_AGAIN_AFTER_SECONDS:
                    still_requested[rel] = before  # a run for it is on its way
                    continue
                still_requested[rel] = [*stat, now]
                new.setdefault(insurer_id, []).append(rel)
                names.append(display_name(path, landing.root))
        cursor = json.dumps({"requested": still_requested}, sort_keys=True)
        if not new:
            return dg.SensorResult(run_requests=[], cursor=cursor)
        identity = json.dumps({rel: still_requested[rel][:3] for files in new.values() for rel in files}, sort_keys=True)
        request = dg.RunRequest(
            run_key=hashlib.sha256(identity.encode()).hexdigest()[:32],
            asset_selection=[key for insurer_id in new for key in (asset_key(insurer_id), gate_key(insurer_id))],
            run_config={"ops": {asset_key(insurer_id).to_python_identifier(): {"config": {"files": files}}
                                for insurer_id, files in new.items()}},
            # Names as every listing shows them (hidden characters escaped); the config keeps the real ones.
            tags={"insurer": ",".join(new), "files": str(len(names)),
                  "source_file": ", ".join(names[:_FILES_IN_TAG]) + (" …" if len(names) > _FILES_IN_TAG else "")},
        )
        context.log.info(f"{len(names)} new file(s) of {', '.join(new)}: one run")
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return landing_sensor
