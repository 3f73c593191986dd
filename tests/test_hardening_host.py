"""The host around the pipeline, with the real `cyberclaims` command on a throwaway data folder: what the pipeline
writes is readable by its own account only unless CYBERCLAIMS_UMASK says otherwise, a delivered file name cannot
colour, move or reorder the operator's terminal, and a file rewritten in place with its size and modification
time set back is read again."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from cyberclaims import settings
from cyberclaims.ingestion import pipeline, warehouse
from cyberclaims.ingestion.pipeline import content_hash, display_name, ingest_insurer, printable
from tests.test_hardening_files import csv_text
from tests.test_layout_features import CLAIM_ROW, INSURER, PSEUDO, claims_config

# The umask of an ordinary login shell: what the pipeline's files would get if it set none itself.
SHELL_UMASK = 0o022


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyberclaims.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600, umask=SHELL_UMASK)


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CYBERCLAIMS_", "DAGSTER_HOME"))}
    return env | {"CYBERCLAIMS_DATA_DIR": str(data_dir)} | extra


def modes(root: Path, skip: set[Path] = frozenset()) -> dict[str, tuple[str, int]]:
    """Every directory and file under root (except those in skip): kind and permission bits."""
    return {str(p.relative_to(root)): ("dir" if p.is_dir() else "file", p.lstat().st_mode & 0o777)
            for p in root.rglob("*") if p not in skip}


# --------------------------------------------------------------------------- one ingestion through the CLI

# Names that would drive a terminal: a right-to-left override that shows "claims_202502\u202egpj.csv" as
# "claims_202502vsc.jpg", an ANSI colour sequence (ESC [ 31 m), and a C1 CSI (0x9b) that clears the screen.
HOSTILE = {
    "claims_202502\u202egpj.csv": "claims_202502\\u202egpj.csv",
    "claims_202503\x1b[31m.csv": "claims_202503\\x1b[31m.csv",
    "claims_202504\x9b2J.csv": "claims_202504\\x9b2J.csv",
}
RAW_CONTROLS = ("\x1b", "\x9b", "\u202e", "\x07")
# A rejection recorded by a warehouse from before names were escaped: its name and error hold raw controls.
LEGACY_NAME = f"{INSURER}/claims_2024\x1b]0;owned\x07\u202e\x9b.csv"
LEGACY_SHOWN = f"{INSURER}/claims_2024\\x1b]0;owned\\x07\\u202e\\x9b.csv"


@dataclass
class Ingested:
    data_dir: Path
    made_by_test: set[Path]
    run: subprocess.CompletedProcess
    listing: subprocess.CompletedProcess
    status: subprocess.CompletedProcess
    show: subprocess.CompletedProcess
    legacy_show: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Ingested:
    root = tmp_path_factory.mktemp("host")
    (root / "configs").mkdir()
    claims_config(root / "configs")
    data = root / "data"
    folder = data / "landing" / INSURER
    folder.mkdir(parents=True)
    (folder / "claims_202501.csv").write_text(csv_text([CLAIM_ROW | {"Claim": "C-GOOD"}]))
    for n, name in enumerate(HOSTILE):
        (folder / name).write_text(csv_text([CLAIM_ROW | {"Claim": f"C-{n}"}]))
    made_by_test = {data, *data.rglob("*")}
    # No secret configured: the demo key is created in data/secrets, as on a first demo run.
    env = cli_env(data, CYBERCLAIMS_CONFIG_DIR=str(root / "configs"))
    run = cli("run", "--job", "ingest_landing", env=env)
    assert run.returncode == 0, run.stdout + run.stderr

    with duckdb.connect(str(data / "warehouse" / "cyberclaims.duckdb"), read_only=True) as con:
        bidi_id = con.execute("SELECT submission_id FROM control.submissions WHERE source_file LIKE '%202502%'").fetchone()[0]
    con = warehouse.connect(data / "warehouse" / "cyberclaims.duckdb")
    legacy_id = "0" * 64
    warehouse.reject_submission(con, warehouse.SubmissionMeta(legacy_id, INSURER, LEGACY_NAME, 10, "1", datetime(2024, 1, 1)),
                                [], "unknown layout\x1b[2J")
    con.close()
    listing = cli("submissions", "list", env=env)
    status = cli("status", env=env)
    show = cli("submissions", "show", bidi_id, env=env)
    legacy_show = cli("submissions", "show", legacy_id, env=env)
    return Ingested(data, made_by_test, run, listing, status, show, legacy_show)


def test_everything_the_pipeline_writes_is_private_to_its_account_by_default(ingested):
    written = modes(ingested.data_dir, ingested.made_by_test)
    # What the run wrote: the warehouse, the demo key, the Dagster instance with its run storage and compute logs.
    for path in ("warehouse/cyberclaims.duckdb", "secrets/hmac.key", "dagster_home/dagster.yaml",
                 "dagster_home/history/runs.db"):
        assert written.get(path, (None,))[0] == "file", (path, sorted(written))
    assert any("compute_logs" in p and kind == "file" for p, (kind, _) in written.items()), sorted(written)
    wrong = {p: oct(mode) for p, (kind, mode) in written.items() if mode != (0o700 if kind == "dir" else 0o600)}
    assert wrong == {}


def test_a_reader_group_umask_makes_what_the_cli_and_the_code_location_write_group_readable(tmp_path):
    data = tmp_path / "data"
    env = cli_env(data, CYBERCLAIMS_UMASK="027")
    generated = cli("generate", "--insureds", "20", "--first-month", "2024-12", "--last-month", "2024-12", env=env)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # `dagster dev -m cyberclaims.orchestration.definitions` and each run worker load the code location; then write the warehouse.
    loaded = subprocess.run(
        [sys.executable, "-c", "from cyberclaims.orchestration.definitions import defs\ndefs()\n"
         "from cyberclaims import settings\nfrom cyberclaims.ingestion import warehouse\n"
         "warehouse.connect(settings.paths().warehouse).close()"],
        env=env, capture_output=True, text=True, timeout=600, umask=SHELL_UMASK)
    assert loaded.returncode == 0, loaded.stderr
    written = modes(data)
    assert {"landing", "truth", "warehouse/cyberclaims.duckdb"} <= set(written)
    assert any(kind == "file" and p.startswith("landing/") for p, (kind, _) in written.items())
    wrong = {p: oct(mode) for p, (kind, mode) in written.items() if mode != (0o750 if kind == "dir" else 0o640)}
    assert wrong == {}


@pytest.mark.parametrize("text, value", [("", 0o077), ("077", 0o077), ("027", 0o027), ("0027", 0o027), (" 007 ", 0o007)])
def test_the_umask_setting_reads_three_octal_digits(monkeypatch, text, value):
    monkeypatch.setenv(settings.UMASK_ENV, text)
    assert settings.umask() == value


@pytest.mark.parametrize("text, why", [
    ("77", "three octal digits"), ("0o77", "three octal digits"), ("u=rwx", "three octal digits"), ("089", "three octal digits"),
    ("700", "first digit must be 0"), ("177", "first digit must be 0"),
    ("000", "others' write"), ("025", "others' write"), ("074", "others' write"),
])
def test_a_umask_that_is_not_one_or_would_expose_the_warehouse_is_refused(monkeypatch, text, why):
    monkeypatch.setenv(settings.UMASK_ENV, text)
    with pytest.raises(ValueError, match=why):
        settings.umask()


def test_the_cli_refuses_to_start_under_an_invalid_umask_and_writes_nothing(tmp_path):
    refused = cli("generate", "--insureds", "20", env=cli_env(tmp_path / "data", CYBERCLAIMS_UMASK="000"))
    assert refused.returncode == 1
    assert "CYBERCLAIMS_UMASK=000" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "data").exists()


# --------------------------------------------------------------------------- file names on the operator's terminal


def test_a_name_that_would_drive_the_terminal_is_rejected_shown_escaped_and_the_rest_loads(ingested):
    with duckdb.connect(str(ingested.data_dir / "warehouse" / "cyberclaims.duckdb"), read_only=True) as con:
        recorded = {f: (s, e) for f, s, e in con.execute("SELECT source_file, status, error FROM control.submissions "
                                                         "WHERE submission_id <> repeat('0', 64)").fetchall()}
        loaded = con.execute("SELECT count(*) FROM raw.claim_valuations").fetchone()[0]
    assert recorded.pop(f"{INSURER}/claims_202501.csv") == ("loaded", None) and loaded == 1
    assert set(recorded) == {f"{INSURER}/{shown}" for shown in HOSTILE.values()}
    for status, error in recorded.values():
        assert status == "rejected" and "deliver it again under a plain name" in error


def test_no_listing_or_log_line_carries_a_raw_control_or_bidi_character(ingested):
    outputs = {"run": ingested.run, "submissions list": ingested.listing, "status": ingested.status,
               "submissions show": ingested.show, "submissions show (legacy)": ingested.legacy_show}
    for command, result in outputs.items():
        assert result.returncode == 0, (command, result.stderr)
        text = result.stdout + result.stderr
        assert not [ch for ch in RAW_CONTROLS if ch in text], command
    # The names are there, escaped: in the run's log lines and in the listing, the legacy one and its error too.
    for shown in HOSTILE.values():
        assert f"{INSURER}/{shown}: REJECTED" in ingested.run.stdout + ingested.run.stderr
        assert f"{INSURER}/{shown}" in ingested.listing.stdout
    assert LEGACY_SHOWN in ingested.listing.stdout and "unknown layout\\x1b[2J" in ingested.listing.stdout
    # `show` stays JSON of the recorded values: escaped in storage, and escaped JSON-wise for a legacy raw one.
    bidi_shown = HOSTILE["claims_202502\u202egpj.csv"]
    assert json.loads(ingested.show.stdout)["source_file"] == f"{INSURER}/{bidi_shown}"
    assert json.loads(ingested.legacy_show.stdout)["source_file"] == LEGACY_NAME


@pytest.mark.parametrize("char, shown", [
    ("\x7f", "\\x7f"), ("\x85", "\\x85"), ("\x9b", "\\x9b"), ("\x1b", "\\x1b"), ("\t", "\\x09"),
    ("\u200e", "\\u200e"), ("\u200f", "\\u200f"), ("\u061c", "\\u061c"), ("\u200b", "\\u200b"), ("\u2028", "\\u2028"),
    ("\u202a", "\\u202a"), ("\u202b", "\\u202b"), ("\u202c", "\\u202c"), ("\u202d", "\\u202d"), ("\u202e", "\\u202e"),
    ("\u2066", "\\u2066"), ("\u2067", "\\u2067"), ("\u2068", "\\u2068"), ("\u2069", "\\u2069"),
    ("\U000e0001", "\\U000e0001"),
])
def test_each_hidden_character_is_escaped_and_rejects_the_name(tmp_path, char, shown):
    folder = tmp_path / INSURER
    folder.mkdir()
    path = folder / f"claims_2025{char}01.csv"
    path.write_text("x")
    assert display_name(path, tmp_path) == f"{INSURER}/claims_2025{shown}01.csv"
    assert "plain name" in pipeline._name_problem(path, tmp_path)


def test_ordinary_names_are_shown_as_they_are(tmp_path):
    for name in ("赔案_2025年3月.csv", "sinistres_é_2025.csv", "claims 2025\u3000final.csv"):
        assert printable(name) == name
        (tmp_path / name).write_text("x")
        assert pipeline._name_problem(tmp_path / name, tmp_path) is None


# --------------------------------------------------------------------------- change detection


def test_a_file_rewritten_in_place_with_its_size_and_mtime_set_back_is_read_again(tmp_path):
    cfg = claims_config(tmp_path)
    root = tmp_path / "landing"
    (root / INSURER).mkdir(parents=True)
    path = root / INSURER / "claims_202501.csv"
    path.write_text(csv_text([CLAIM_ROW | {"Claim": "C-1"}]))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    assert [o.status for o in ingest_insurer(con, cfg, root, PSEUDO).outcomes] == ["loaded"]

    before = path.stat()
    path.write_text(csv_text([CLAIM_ROW | {"Claim": "C-2"}]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)  # the quick check is fooled
    again = ingest_insurer(con, cfg, root, PSEUDO).outcomes
    assert [(o.status, o.submission_id) for o in again] == [("loaded", content_hash(path))]
    assert con.execute("SELECT count(*) FROM control.submissions").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM raw.claim_valuations").fetchone()[0] == 2


def test_a_warehouse_from_before_the_change_time_hashes_each_file_once_more(tmp_path, monkeypatch):
    cfg = claims_config(tmp_path)
    root = tmp_path / "landing"
    (root / INSURER).mkdir(parents=True)
    (root / INSURER / "claims_202501.csv").write_text(csv_text([CLAIM_ROW]))
    con = warehouse.connect(tmp_path / "wh.duckdb")
    ingest_insurer(con, cfg, root, PSEUDO)
    # The warehouse as it was: its bookkeeping in raw (no control schema), landing_file_stats without ctime_ns.
    from cyberclaims.control import BOOKKEEPING_TABLES

    for table in BOOKKEEPING_TABLES:
        con.execute(f"CREATE TABLE raw.{table} AS SELECT * FROM control.{table}")
    con.execute("ALTER TABLE raw.landing_file_stats DROP COLUMN ctime_ns")
    con.execute("DROP SCHEMA control CASCADE")
    con.close()

    con = warehouse.connect(tmp_path / "wh.duckdb")
    hashed = []
    real_hash = pipeline.content_hash
    monkeypatch.setattr(pipeline, "content_hash", lambda path: hashed.append(path.name) or real_hash(path))
    assert [o.status for o in ingest_insurer(con, cfg, root, PSEUDO).outcomes] == ["already_loaded"]
    assert [o.status for o in ingest_insurer(con, cfg, root, PSEUDO).outcomes] == ["already_loaded"]
    assert hashed == ["claims_202501.csv"]
    assert con.execute("SELECT count(*) FROM control.submissions").fetchone()[0] == 1


# Variables the code sets for its own children, not an operator's settings.
INTERNAL_VARIABLES = {"CYBERCLAIMS_RUN_PID", "CYBERCLAIMS_DBT_EXECUTABLE"}


def test_every_setting_the_code_reads_is_documented_in_the_readme_and_env_example():
    root = Path(__file__).resolve().parents[1]
    read = set()
    for source in (root / "cyberclaims").rglob("*.py"):
        read |= set(re.findall(r"CYBERCLAIMS_[A-Z_]+[A-Z]", source.read_text(encoding="utf-8")))
    settings_read = read - INTERNAL_VARIABLES
    assert {"CYBERCLAIMS_UMASK", "CYBERCLAIMS_MAX_FILE_MB", "CYBERCLAIMS_SQL_TIMEOUT_SECONDS"} <= settings_read
    readme = (root / "README.md").read_text(encoding="utf-8")
    example = (root / ".env.example").read_text(encoding="utf-8")
    assert sorted(v for v in settings_read if v not in readme) == []
    assert sorted(v for v in settings_read if v not in example) == []
