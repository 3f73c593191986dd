"""Shared fixtures: one generated sample, ingested once through Dagster into a real DuckDB file.

The sample market holds the insurers that have both a valid mapping config and a sample profile
(`cyberclaims.sample.profiles`); tests that need generated files select those insurers, so a config
without a profile never breaks the suite.
"""

from __future__ import annotations

import fcntl
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.pseudonymize import Pseudonymizer
from cyberclaims.orchestration.defs.ingestion import build_defs
from cyberclaims.orchestration.defs.resources import (
    DataZoneResource,
    LandingZoneResource,
    PseudonymizationResource,
    WarehouseResource,
)
from cyberclaims.orchestration.defs.transformation import build_dbt_assets
from cyberclaims.orchestration.defs.transformation.project import dbt_project, prepare_manifest
from cyberclaims.sample.generate import generate_sample
from cyberclaims.sample.market import MarketParams
from cyberclaims.sample.profiles import sample_market
from cyberclaims.sample.render import DefectRates

TEST_SECRET = "test-secret-for-the-suite-0123456789abcdef"


@dataclass
class IngestedSample:
    data_dir: Path
    landing: Path
    truth_dir: Path
    warehouse_path: Path
    summary: dict
    resources: dict

    def truth(self, name: str) -> pl.DataFrame:
        return pl.read_parquet(self.truth_dir / f"{name}.parquet")

    def expected_held_files(self) -> set[str]:
        """Files the submission gate must hold, derived from the truth and the configs' thresholds:
        the planted manifest mismatches, and files where a record type's share of defective rows
        exceeds the insurer's max_quarantine_share (assessed from min_rows_for_shares rows)."""
        configs = sample_market().configs
        files = self.truth("files")
        held = set(files.filter(pl.col("expected_gate") == "held")["source_file"])
        for rt in ("policy", "incident", "claim_valuation"):
            per_file = self.truth(rt).group_by("insurer_id", "source_file").agg(
                pl.len().alias("delivered"), pl.col("defect").is_not_null().sum().alias("defective")
            )
            for insurer_id, source_file, delivered, defective in per_file.iter_rows():
                q = configs[insurer_id].quality
                if delivered >= q.min_rows_for_shares and defective / delivered > q.max_quarantine_share:
                    held.add(source_file)
        return held

    def admitted_truth(self, name: str) -> pl.DataFrame:
        """Truth rows without defects, from files the gate admits."""
        return self.truth(name).filter(
            pl.col("defect").is_null() & ~pl.col("source_file").is_in(sorted(self.expected_held_files()))
        )

    def con(self):
        return warehouse.connect(self.warehouse_path, read_only=True)

    def scratch_copy(self, destination: Path) -> Path:
        """A copy of the sample warehouse at `destination` (folders created) for a test to change: the
        session's warehouse itself is shared by every test of the worker."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.warehouse_path, destination)
        return destination

    def pseudonymizer(self) -> Pseudonymizer:
        return Pseudonymizer(TEST_SECRET.encode())


def make_resources(data_dir: Path, database: Path) -> dict:
    from dagster_dbt import DbtCliResource

    return {
        "dbt": DbtCliResource(project_dir=dbt_project()),
        "warehouse": WarehouseResource(database_path=str(database)),
        "zone": DataZoneResource(data_dir=str(data_dir)),
        "landing": LandingZoneResource(path=str(data_dir / "landing")),
        "pseudonymization": PseudonymizationResource(demo_key_file=str(data_dir / "secrets" / "hmac.key")),
    }


def materialize(assets, resources: dict, **kwargs) -> dg.ExecuteInProcessResult:
    """dg.materialize with dbt's profile pointed at the resources' warehouse (CYBERCLAIMS_DUCKDB, as the
    entry points set it): the dbt assets refuse to run when the two name different files."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CYBERCLAIMS_DUCKDB", resources["warehouse"].database_path)
        return dg.materialize(assets, resources=resources, **kwargs)


def publication_assets() -> list[dg.AssetsDefinition]:
    """The published database and the insurers' feedback, as the definitions build them."""
    from cyberclaims.orchestration.defs.publication import build_publication_assets

    return build_publication_assets()


def ingestion_assets() -> list:
    """Insurer and raw-table assets with the submission gate checks of every insurer."""
    defs = build_defs()
    return [*defs.assets, *defs.asset_checks]


def all_assets() -> list[dg.AssetsDefinition]:
    """Ingestion, raw tables and every dbt model: what the monthly cycle materializes."""
    return [*ingestion_assets(), build_dbt_assets()]


# The tests that take minutes, with their seconds on the 2-core machines (rounded; a rough guide, only their
# order matters), and the build of the session's sample by the first worker to need it.
LONG_TESTS = {
    "tests/test_cli_e2e.py::test_generate_then_run_twice": 550,
    "tests/test_marts.py::test_a_new_monthly_submission_processed_incrementally_equals_a_full_refresh": 300,
    "tests/test_gate.py::test_a_bad_submission_is_held_with_feedback_while_the_others_publish": 230,
    "tests/test_sector_isolation.py::test_a_submission_failing_a_sector_test_is_held_and_the_others_are_published": 185,
    "tests/test_hardening_market.py::test_every_hostile_file_at_once_leaves_the_sector_cycle_publishing_and_no_identifier_anywhere":
        185,
    "tests/test_sector_isolation.py::test_a_revoked_submission_leaves_the_next_published_version": 180,
    "tests/test_sector_isolation.py::test_fields_an_insurer_does_not_deliver_are_unknown_in_the_marts_and_in_the_completeness_view":
        130,
    "tests/test_onboarding.py::test_a_broken_config_and_a_crashing_reader_leave_every_other_insurer_published": 125,
    "tests/test_sector_isolation.py::test_a_failure_no_submission_can_be_held_for_blocks_publication_and_status_says_why": 125,
    "tests/test_publication.py::test_a_failing_dbt_test_stops_publication_in_dagster": 60,
}
SAMPLE_BUILD = 140


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist's worksteal each worker starts on its share of the collection (the first worker the
    first n/workers tests, and so on) from the front, and a worker that runs out steals from the back of
    another's share. A long test queued late thus leaves the other worker idle at the end, and a worker whose
    first test needs the sample waits while another builds it. So the long tests go first in the shares,
    balanced longest first (the sample's build counts for every share whose first test needs it), and the
    other tests keep their order behind them. Every test still runs, once; without xdist nothing moves."""
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    long = sorted((item for item in items if item.nodeid in LONG_TESTS), key=lambda item: -LONG_TESTS[item.nodeid])
    if workers < 2 or not long:
        return
    sizes, left = [], len(items)
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    heads: list[list] = [[] for _ in range(workers)]
    load = [0] * workers
    for item in long:
        share = min(range(workers), key=lambda k: load[k])
        if not heads[share] and "sample" in item.fixturenames:
            load[share] += SAMPLE_BUILD
        heads[share].append(item)
        load[share] += LONG_TESTS[item.nodeid]
    rest = [item for item in items if item.nodeid not in LONG_TESTS]
    ordered = []
    for share, head in enumerate(heads):
        n = max(0, sizes[share] - len(head))
        ordered += head + rest[:n]
        rest = rest[n:]
    items[:] = ordered + rest


@pytest.fixture(scope="session", autouse=True)
def _dbt_manifest():
    project = dbt_project()
    prepare_manifest(project)


@pytest.fixture(scope="session", autouse=True)
def _secret():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CYBERCLAIMS_HMAC_KEY", TEST_SECRET)
        mp.delenv("CYBERCLAIMS_HMAC_KEY_FILE", raising=False)
        yield


def _build_sample(data_dir: Path) -> dict:
    # Small market, defect rates high enough that every defect hits every insurer and record type; big enough
    # that the smallest insurers' monthly files reach the gate's drift threshold (min_previous_rows).
    params = MarketParams(seed=7, n_insureds=1400, first_month="2022-01", last_month="2024-12")
    summary = generate_sample(data_dir, params, DefectRates(*([0.02] * 6)))
    database = data_dir / "warehouse" / "test.duckdb"
    result = materialize(all_assets(), make_resources(data_dir, database))
    assert result.success
    return summary


@pytest.fixture(scope="session")
def sample(tmp_path_factory, worker_id) -> IngestedSample:
    """The sample market, ingested, gated and built by dbt. Under pytest-xdist the first worker to need it builds
    it once (both cores for one build) in the session's shared temporary folder and every worker takes its own
    copy of the data folder, so no test of one worker can change another's."""
    data_dir = tmp_path_factory.mktemp("data")
    if worker_id == "master":
        summary = _build_sample(data_dir)
    else:
        shared = tmp_path_factory.getbasetemp().parent / "shared-sample"
        shared.mkdir(exist_ok=True)
        with open(shared / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            built = shared / "summary.pickle"
            if not built.exists():
                built.write_bytes(pickle.dumps(_build_sample(shared / "data")))
        shutil.copytree(shared / "data", data_dir, dirs_exist_ok=True, symlinks=True)
        summary = pickle.loads(built.read_bytes())
    database = data_dir / "warehouse" / "test.duckdb"
    return IngestedSample(data_dir, data_dir / "landing", data_dir / "truth", database, summary,
                          make_resources(data_dir, database))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def significant(amount, digits: int = 3):
    """An amount as the published row-level tables carry it: `digits` significant figures, half away
    from zero (Decimal arithmetic, independent of the dbt macro significant_round)."""
    from decimal import ROUND_HALF_UP, Decimal

    if amount is None or amount == 0:
        return amount
    amount = Decimal(amount)
    return amount.quantize(Decimal(1).scaleb(amount.adjusted() - digits + 1), rounding=ROUND_HALF_UP)
