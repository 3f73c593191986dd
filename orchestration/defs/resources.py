"""Resources shared by every domain: the warehouse file, the landing zone, the HMAC secret."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from cyberclaims.settings import paths
from ingestion import warehouse
from ingestion.pseudonymize import Pseudonymizer, load_secret

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


def default_resources() -> dict[str, dg.ConfigurableResource]:
    p = paths()
    return {
        "warehouse": WarehouseResource(database_path=str(p.warehouse)),
        "landing": LandingZoneResource(path=str(p.landing)),
        "pseudonymization": PseudonymizationResource(demo_key_file=str(p.demo_key_file)),
    }
