"""Every hostile file of the hardening review planted at once in the generated market, then one real monthly cycle
(`cyberclaims run` as a process, with its own Dagster instance): each planted file gets a recorded outcome with its
reason and its feedback, every other file and insurer loads, delivered = loaded + quarantined for each submission,
the cycle publishes, and no clear identifier of an insured reaches a table, a log, the Dagster instance, the
compute logs, the published exports, the regulator pack or the feedback."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.test_hardening_caps import minimal_cells, xlsx
from tests.test_sector_isolation import Workspace
from tests.test_warehouse_guarantees import USCC_PATTERN

pytestmark = pytest.mark.e2e

DF, PRH, TF, CJ, HN = "dongfang_pc", "pearl_river_hk", "tianfu_digital", "changjiang_ins", "huanan_general"


@dataclass
class Plant:
    """One hostile file: where it lands and what the cycle must make of it."""

    insurer: str
    name: str  # as the warehouse records it (bytes that are not UTF-8 escaped)
    status: str  # control.submissions.status
    error: str | None = None  # a part of the recorded reason
    quarantine: set[str] = field(default_factory=set)  # reason codes its quarantined rows carry
    gate: str | None = None  # a gate reason it is held for

    @property
    def source_file(self) -> str:
        return f"{self.insurer}/{self.name}"


def _lines(path: Path, encoding: str = "utf-8") -> list[str]:
    return path.read_text(encoding=encoding).splitlines()


def _manifest(folder: Path, data_file: str, rt: str, rows: int) -> None:
    (folder / f"{data_file}.manifest.json").write_text(json.dumps(
        {"manifest_version": "1", "data_file": data_file, "insurer": folder.name,
         "record_types": {rt: {"row_count": rows}}}))


def plant_attacks(landing: Path) -> tuple[list[Plant], set[str]]:
    """Write the attacks beside the generated files; returns them and the clear identifiers they carry."""
    df, prh, tf, cj = (landing / i for i in (DF, PRH, TF, CJ))
    plants: list[Plant] = []
    planted_ids: set[str] = set()

    # A header that is a duplicate once blanks are stripped.
    claims = _lines(df / "claims_202412.csv")
    (df / "claims_202501.csv").write_text("\n".join(
        [claims[0] + ", ClaimNo"] + [line + ",X" for line in claims[1:]]) + "\n")
    plants.append(Plant(DF, "claims_202501.csv", "rejected", "duplicate column name"))

    # Parquet with Binary and Duration columns beside the layout's.
    frame = pl.read_parquet(tf / "tf_claim_202412.parquet")
    frame.with_columns(pl.lit(b"\x00\xff").alias("scan"), pl.lit(timedelta(hours=3)).alias("handling")).write_parquet(
        tf / "tf_claim_202501.parquet")
    plants.append(Plant(TF, "tf_claim_202501.parquet", "loaded"))

    # A manifest nested 10,000 deep, and one whose total is NaN.
    policies = _lines(df / "policies_202412.csv")
    (df / "policies_202501.csv").write_text("\n".join(policies[:-1]) + "\n")
    (df / "policies_202501.csv.manifest.json").write_text("[" * 10_000 + "]" * 10_000)
    plants.append(Plant(DF, "policies_202501.csv", "rejected", "nested deeper than"))
    prh_claims = _lines(prh / "prh_claims_202412.jsonl")
    (prh / "prh_claims_202501.jsonl").write_text("\n".join(prh_claims[:-1]) + "\n")
    (prh / "prh_claims_202501.jsonl.manifest.json").write_text(json.dumps(
        {"manifest_version": "1", "data_file": "prh_claims_202501.jsonl",
         "record_types": {"claim_valuation": {"row_count": len(prh_claims) - 1, "totals": {"paid_indemnity": "NaN"}}}}))
    plants.append(Plant(PRH, "prh_claims_202501.jsonl", "rejected", "not a finite number"))

    # A file name that is not UTF-8.
    fd = os.open(os.path.join(os.fsencode(df), b"claims_2025\xff.csv"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, "\n".join(claims[:2]).encode() + b"\n")
    os.close(fd)
    plants.append(Plant(DF, "claims_2025\\xff.csv", "rejected", "not valid UTF-8"))

    # An unbalanced quote in a file full of clear identifiers: the reason names the line, never the content.
    quoted = [policies[0], *policies[1:]]
    quoted[3] = quoted[3].replace(",", ',"', 1)
    (df / "policies_202502.csv").write_text("\n".join(quoted) + "\n")
    for line in policies[1:]:
        planted_ids.update(line.split(",")[1:3])  # InsuredUSCC, InsuredName
    plants.append(Plant(DF, "policies_202502.csv", "rejected", "unbalanced quote"))

    # A 200,000-character value in one field; a paid amount that overflows to infinity.
    row = json.loads(prh_claims[-1])
    long_row = row | {"claim_id": "PRH/CLM/2025/99901", "section": "IR" + "x" * 200_000}
    (prh / "prh_claims_202502.jsonl").write_text(prh_claims[-1] + "\n" + json.dumps(long_row) + "\n")
    plants.append(Plant(PRH, "prh_claims_202502.jsonl", "loaded", quarantine={"TOO_LONG"}))
    overflowing = json.loads(prh_claims[-1])
    overflowing["claim_id"] = "PRH/CLM/2025/99902"
    overflowing["financials"]["paid"]["indemnity"] = 424242.4242
    inf_row = json.dumps(overflowing).replace("424242.4242", "1e999")  # JSON's way of writing infinity
    (prh / "prh_claims_202503.jsonl").write_text(prh_claims[-1] + "\n" + inf_row + "\n")
    plants.append(Plant(PRH, "prh_claims_202503.jsonl", "loaded", quarantine={"INVALID_NUMBER"}))

    # A file named like a glob pattern reads itself only.
    frame.head(frame.height - 1).write_parquet(tf / "tf_claim_2024*.parquet")
    plants.append(Plant(TF, "tf_claim_2024*.parquet", "loaded"))

    # The same bytes from a second insurer are that insurer's own submission.
    (cj / "CJ_CLAIM_202501.csv").write_bytes((df / "claims_202412.csv").read_bytes())
    plants.append(Plant(CJ, "CJ_CLAIM_202501.csv", "rejected"))

    # A symbolic link out of the landing folder.
    (df / "claims_202503.csv").symlink_to("/etc/passwd")
    plants.append(Plant(DF, "claims_202503.csv", "rejected", "outside the insurer's landing folder"))

    # A policy from 1900 to 9999, and one in a currency without an FX rate for its month.
    header, first = policies[0].split(","), policies[1].split(",")
    col = {name: i for i, name in enumerate(header)}

    def policy(number: str, **values: str) -> str:
        cells = list(first)
        cells[col["PolicyNo"]] = number
        for key, value in values.items():
            cells[col[key]] = value
        return ",".join(cells)

    ancient = [policy("DF2025P990001", InceptionDate="1900-01-01", ExpiryDate="9999-12-31"), policy("DF2025P990002")]
    (df / "policies_202503.csv").write_text("\n".join([policies[0], *ancient]) + "\n")
    _manifest(df, "policies_202503.csv", "policy", 2)
    plants.append(Plant(DF, "policies_202503.csv", "loaded", quarantine={"OUT_OF_RANGE"}))
    future = [policy("DF2027P990003", InceptionDate="2027-06-01", ExpiryDate="2028-05-31", Currency="USD")]
    (df / "policies_202504.csv").write_text("\n".join([policies[0], *future]) + "\n")
    _manifest(df, "policies_202504.csv", "policy", 1)
    plants.append(Plant(DF, "policies_202504.csv", "loaded", gate="FX_RATE_MISSING"))

    # Identities in free text: the insured's own USCC as a pilot code, an insurer's id as a campaign.
    uscc = first[col["InsuredUSCC"]]
    coded = [policy("DF2025P990004", PilotCode=uscc), policy("DF2025P990005", PilotCode="PILOT-2025-FIN")]
    (df / "policies_202505.csv").write_text("\n".join([policies[0], *coded]) + "\n")
    _manifest(df, "policies_202505.csv", "policy", 2)
    plants.append(Plant(DF, "policies_202505.csv", "loaded", quarantine={"IDENTITY_IN_TEXT"}))
    incident = json.loads(_lines(sorted(prh.glob("prh_incidents_*.jsonl"))[-1])[-1])
    campaign = incident | {"incident_id": "PRH/INC/2025/99901", "campaign_id": "dongfang_pc"}
    shaped = incident | {"incident_id": "PRH/INC/2025/99902", "campaign_id": "=HYPERLINK(\"http://x\")"}
    (prh / "prh_incidents_202501.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (incident, campaign, shaped)))
    plants.append(Plant(PRH, "prh_incidents_202501.jsonl", "loaded", quarantine={"IDENTITY_IN_TEXT", "INVALID_FORMAT"}))

    # A workbook bomb: 1.2 million minimal rows in about 100 KB.
    xlsx(landing / HN / "huanan_202501.xlsx", minimal_cells(1_200_000, 1))
    plants.append(Plant(HN, "huanan_202501.xlsx", "rejected", "CYBERCLAIMS_MAX_ROWS_PER_FILE"))

    # A bidirectional override and a terminal escape in a file name.
    (df / "claims_2025\u202e\x1b[31m.csv").write_text("\n".join(claims[:3]) + "\n")
    plants.append(Plant(DF, "claims_2025\\u202e\\x1b[31m.csv", "rejected", "invisible formatting characters"))
    return plants, planted_ids


# --------------------------------------------------------------------------- scanning every file for identifiers


def _duckdb_texts(path: Path):
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute("""SELECT table_catalog, table_schema, table_name, column_name
            FROM information_schema.columns WHERE data_type IN ('VARCHAR', 'VARCHAR[]', 'JSON')""").fetchall()
        for catalog, schema, table, column in columns:
            for (value,) in con.execute(
                    f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{catalog}"."{schema}"."{table}"').fetchall():
                if value is not None:
                    yield f"{path}:{schema}.{table}.{column}", value


def _file_texts(path: Path):
    """The text of a file as a reader of it would see it: tables of a DuckDB file, columns of a Parquet file,
    members of an xlsx, anything else as bytes (SQLite files of the Dagster instance store text in clear)."""
    head = path.read_bytes()[:16]
    if path.suffix == ".duckdb" or head[8:12] == b"DUCK":
        yield from _duckdb_texts(path)
    elif head.startswith(b"PAR1"):
        frame = pl.read_parquet(path)
        for name in frame.columns:
            yield f"{path}:{name}", "\n".join(map(str, frame[name].drop_nulls().to_list()))
    elif head.startswith(b"PK"):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                yield f"{path}!{member}", archive.read(member).decode("utf-8", "replace")
    else:
        yield str(path), path.read_bytes().decode("utf-8", "replace")


def identifier_leaks(data_dir: Path, clear_ids: set[str], names: set[str], *outputs: str,
                     secret: str | None = None) -> list[str]:
    """Where a clear unified social credit code, an insured's name or the pseudonymisation secret appears: every
    file the pipeline wrote under the data directory (the insurers' deliveries, the generator's truth and the key
    excepted) and the run's own output."""
    names = {n for n in names if len(n) >= 4}
    name_pattern = re.compile("|".join(map(re.escape, sorted(names, key=len, reverse=True))))
    leaks = []
    sources = [("run output", text) for text in outputs]
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if relative.parts[0] in ("landing", "truth", "secrets") or not path.is_file() or path.is_symlink():
            continue
        if path.suffix in (".wal", ".lock") or path.name.endswith((".duckdb.wal", "-journal")):
            continue
        sources.append(("file", path))
    for kind, source in sources:
        texts = [(kind, source)] if kind == "run output" else _file_texts(source)
        for where, text in texts:
            codes = {m.group(0) for m in USCC_PATTERN.finditer(text)} & clear_ids
            found = name_pattern.search(text) if names else None
            if codes or found:
                leaks.append(f"{where}: {sorted(codes)[:3]} {found.group(0) if found else ''}")
            if secret and secret in text:
                leaks.append(f"{where}: the secret")
    return leaks


# --------------------------------------------------------------------------- the cycle


@pytest.fixture
def workspace(sample, tmp_path) -> Workspace:
    """A data directory of its own: a copy of the sample's warehouse and landing zone, no Dagster instance yet."""
    data_dir = tmp_path / "data"
    (data_dir / "warehouse").mkdir(parents=True)
    sample.scratch_copy(data_dir / "warehouse" / "cyberclaims.duckdb")
    shutil.copytree(sample.landing, data_dir / "landing")
    return Workspace(data_dir, data_dir / "warehouse" / "cyberclaims.duckdb")


def test_every_hostile_file_at_once_leaves_the_sector_cycle_publishing_and_no_identifier_anywhere(sample, workspace):
    landing = workspace.data_dir / "landing"
    with workspace.con() as con:
        before = dict(con.execute("SELECT source_file, status FROM control.submissions").fetchall())
    plants, planted_ids = plant_attacks(landing)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CYBERCLAIMS_", "DAGSTER_HOME"))}
    env |= {"CYBERCLAIMS_DATA_DIR": str(workspace.data_dir), "CYBERCLAIMS_DUCKDB": str(workspace.db),
            "CYBERCLAIMS_HMAC_KEY": os.environ["CYBERCLAIMS_HMAC_KEY"]}
    run = subprocess.run([sys.executable, "-m", "cyberclaims.cli", "run"], env=env, capture_output=True, text=True,
                         timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "SUCCESS" in run.stdout and "Traceback" not in run.stderr
    assert "\u202e" not in run.stdout + run.stderr  # file names reach the terminal escaped

    with workspace.con() as con:
        recorded = {f: (sid, status, error) for sid, f, status, error in con.execute(
            "SELECT submission_id, source_file, status, error FROM control.submissions").fetchall()}
        gate = {sid: (status, reasons) for sid, status, reasons in con.execute(
            "SELECT submission_id, status, reasons FROM control.submission_gate").fetchall()}
        quarantined = {}
        for sid, codes in con.execute(
                "SELECT submission_id, list_distinct(flatten(list(reason_codes))) FROM raw.quarantine GROUP BY 1"
        ).fetchall():
            quarantined[sid] = {code.split(":")[0] for code in codes}
        unbalanced = con.execute("""
            SELECT s.source_file, s.rows_delivered, s.rows_loaded, s.rows_quarantined,
                   (SELECT count(*) FROM raw.quarantine q WHERE q.submission_id = s.submission_id)
                 + (SELECT count(*) FROM raw.policies r WHERE r.submission_id = s.submission_id)
                 + (SELECT count(*) FROM raw.incidents r WHERE r.submission_id = s.submission_id)
                 + (SELECT count(*) FROM raw.claim_valuations r WHERE r.submission_id = s.submission_id) AS stored
            FROM control.submissions s WHERE s.status = 'loaded'
              AND (s.rows_delivered <> s.rows_loaded + s.rows_quarantined
                   OR s.rows_delivered <> stored)""").fetchall()

    # Every file delivered before the attack keeps its outcome; every planted file has its own.
    assert {f: recorded[f][1] for f in before} == before
    for plant in plants:
        assert plant.source_file in recorded, f"{plant.source_file} has no recorded outcome"
        sid, status, error = recorded[plant.source_file]
        assert status == plant.status, (plant.source_file, status, error)
        if plant.error:
            assert plant.error in (error or ""), (plant.source_file, error)
        assert plant.quarantine <= quarantined.get(sid, set()), (plant.source_file, quarantined.get(sid))
        if plant.gate:
            assert gate[sid][0] == "held" and any(r.startswith(plant.gate) for r in gate[sid][1]), gate[sid]
        feedback = workspace.data_dir / "feedback" / plant.insurer / f"{sid}.json"
        assert feedback.exists(), f"no feedback for {plant.source_file}"
        report = json.loads(feedback.read_text(encoding="utf-8"))
        assert report["insurer_id"] == plant.insurer
        assert feedback.stat().st_size < 200_000, f"feedback of {plant.source_file} is {feedback.stat().st_size} bytes"
    assert unbalanced == [], unbalanced

    # The glob-named file is read alone: it holds one row fewer than the file it was cut from.
    tf = pl.read_parquet(landing / TF / "tf_claim_202412.parquet")
    with workspace.con() as con:
        loaded = con.execute("SELECT rows_loaded + rows_quarantined FROM control.submissions WHERE source_file = ?",
                             [f"{TF}/tf_claim_2024*.parquet"]).fetchall()
    assert loaded == [(tf.height - 1,)]

    # The cycle published a version with every other insurer's admitted submissions.
    published = workspace.data_dir / "published" / "sector_claims.duckdb"
    with duckdb.connect(str(published), read_only=True) as con:
        included = set(json.loads(con.execute(
            "SELECT value FROM publication_manifest WHERE key = 'submissions_included'").fetchall()[0][0]))
        claims = con.execute("SELECT count(*) FROM fct_claims").fetchall()[0][0]
    admitted = {sid for sid, (status, _) in gate.items() if status in ("passed", "released")}
    assert admitted and admitted <= included, len(admitted - included)
    assert claims > 0
    insurers_published = {recorded_insurer for recorded_insurer in
                          (f.split("/", 1)[0] for f, (sid, _, _) in recorded.items() if sid in included)}
    assert insurers_published >= {DF, PRH, TF, CJ, HN, "lindenhof_eu"}

    # No clear identifier anywhere the pipeline wrote, nor in what the run printed.
    truth = sample.truth("policy")
    clear_ids = set(truth["insured_id"].drop_nulls()) | {i for i in planted_ids if USCC_PATTERN.fullmatch(i)}
    names = set(truth["insured_name"].drop_nulls()) | {i for i in planted_ids if not USCC_PATTERN.fullmatch(i)}
    dagster_home = workspace.data_dir / "dagster_home"
    assert any(dagster_home.rglob("*.db")) and any(dagster_home.rglob("*.err")), "no Dagster instance was written"
    assert identifier_leaks(workspace.data_dir, clear_ids, names, run.stdout, run.stderr,
                            secret=env["CYBERCLAIMS_HMAC_KEY"]) == []


def test_the_identifier_scan_finds_a_code_in_a_compute_log_an_instance_database_and_a_parquet_export(tmp_path):
    code, name = "91110106GTDCE9FDWU", "北京通科零售连锁有限公司"
    (tmp_path / "dagster_home" / "storage" / "run" / "compute_logs").mkdir(parents=True)
    (tmp_path / "dagster_home" / "storage" / "run" / "compute_logs" / "step.err").write_text(f"error near {code}\n")
    import sqlite3

    with sqlite3.connect(tmp_path / "dagster_home" / "runs.db") as db:
        db.execute("CREATE TABLE event_logs (event TEXT)")
        db.execute("INSERT INTO event_logs VALUES (?)", [f'{{"message": "{name} failed"}}'])
    pl.DataFrame({"x": ["ok", f"id {code}"]}).write_parquet(tmp_path / "export.parquet")
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "delivered.csv").write_text(code)  # deliveries hold identifiers by nature
    leaks = identifier_leaks(tmp_path, {code}, {name})
    assert sorted(Path(leak.split(":")[0]).name for leak in leaks) == ["export.parquet", "runs.db", "step.err"], leaks
    (tmp_path / "dagster_home" / "storage" / "run" / "compute_logs" / "step.out").write_text("key=s3cr3t-value\n")
    assert identifier_leaks(tmp_path, set(), set(), secret="s3cr3t-value") == [
        f"{tmp_path}/dagster_home/storage/run/compute_logs/step.out: the secret"]
    assert not any("landing" in leak for leak in leaks)
