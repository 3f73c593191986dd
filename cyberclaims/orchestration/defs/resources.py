"""Resources shared by every domain: the warehouse file, the data zone's folders, the landing zone, the HMAC
secret. Configured from the environment when the definitions load (dg.EnvVar where a variable is set), never
at import; assets read paths from them and never from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.pseudonymize import Pseudonymizer, load_secret
from cyberclaims.settings import Paths, paths

# Every asset that writes the warehouse runs in this pool; dagster.yaml limits it to one.
WRITER_POOL = "duckdb_writer"
# Run tag set by `cyberclaims run --rebuild`: publish even a version built from the same inputs as the current.
REBUILD_TAG = "cyberclaims/rebuild"


class WarehouseResource(dg.ConfigurableResource):
    """The internal DuckDB warehouse. Writers go through `writer()`, readers `reader()`."""

    database_path: str

    @property
    def path(self) -> Path:
        return Path(self.database_path)

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = warehouse.connect(Path(self.database_path))
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = warehouse.connect(Path(self.database_path), read_only=True)
        try:
            yield con
        finally:
            con.close()


class DataZoneResource(dg.ConfigurableResource):
    """The data zone's output folders: the published database, the insurers' feedback, the regulator packs
    and the bureau's internal audit of them (cyberclaims.settings.Paths under data_dir)."""

    data_dir: str

    @property
    def zone(self) -> Paths:
        return Paths(Path(self.data_dir))

    @property
    def published(self) -> Path:
        return self.zone.published

    @property
    def feedback(self) -> Path:
        return self.zone.feedback

    @property
    def regulator(self) -> Path:
        return self.zone.regulator

    @property
    def regulator_audit(self) -> Path:
        return self.zone.regulator_audit


class LandingZoneResource(dg.ConfigurableResource):
    path: str

    @property
    def root(self) -> Path:
        return Path(self.path)


class PseudonymizationResource(dg.ConfigurableResource):
    """HMAC secret from $CYBERCLAIMS_HMAC_KEY / $CYBERCLAIMS_HMAC_KEY_FILE, else a local demo key."""

    demo_key_file: str

    def pseudonymizer(self) -> Pseudonymizer:
        return Pseudonymizer(load_secret(Path(self.demo_key_file)))


def _from_env(variable: str, default: Path) -> str | dg.EnvVar:
    """The variable as a dg.EnvVar when it is set (the UI shows where the value comes from), else the default."""
    return dg.EnvVar(variable) if os.environ.get(variable) else str(default)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location, read from the environment when the definitions load:
    CYBERCLAIMS_DATA_DIR moves the data zone, CYBERCLAIMS_DUCKDB names the warehouse (dbt's profile reads the
    same variables, so both name the same file)."""
    p = paths()
    data_dir = _from_env("CYBERCLAIMS_DATA_DIR", p.data_dir)
    return {
        "warehouse": WarehouseResource(database_path=_from_env("CYBERCLAIMS_DUCKDB", p.warehouse)),
        "zone": DataZoneResource(data_dir=data_dir),
        "landing": LandingZoneResource(path=str(p.landing)),
        "pseudonymization": PseudonymizationResource(demo_key_file=str(p.demo_key_file)),
    }
