"""`cyberclaims sql`: actuaries query the published database; nothing else is reachable through it."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time

import pytest

from cyberclaims.orchestration.defs.transformation.project import dbt_project
from cyberclaims.publication.publish import PUBLISHED_NAME, publication_metadata, publish, published_tables_from_manifest
from tests.conftest import significant


@pytest.fixture(scope="module")
def published_db(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("published")
    with sample.con() as con:
        extra = publication_metadata(con, dbt_project().project_dir)
    publish(sample.warehouse_path, out, published_tables_from_manifest(dbt_project().manifest_path), extra)
    return out / PUBLISHED_NAME


def sql(db, *args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "cyberclaims.cli", "sql", "--db", str(db), *args],
                          capture_output=True, text=True, input=stdin, timeout=120, env=env)


def test_queries_answer_from_the_published_database_as_table_csv_file_and_shell(published_db, sample, tmp_path):
    with sample.con() as con:
        incurred = [r[0] for r in con.execute("SELECT incurred_cny FROM marts.fct_claims").fetchall()]
    expected = (len(incurred), sum(significant(x) for x in incurred))  # published at 3 significant figures
    result = sql(published_db, "--csv", "-c", "SELECT count(*) AS n, sum(incurred_cny) AS incurred FROM fct_claims")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows == [{"n": str(expected[0]), "incurred": str(expected[1])}]
    table = sql(published_db, "-c", "SELECT sector_code, count(*) AS n FROM fct_claims GROUP BY ALL ORDER BY ALL")
    assert table.returncode == 0 and "| sector_code" in table.stdout and "row(s)" in table.stdout
    query = tmp_path / "q.sql"
    query.write_text("SELECT count(*) AS n FROM fct_policies;", encoding="utf-8")
    from_file = sql(published_db, "--csv", "-f", str(query))
    assert from_file.returncode == 0 and from_file.stdout.splitlines()[0] == "n"
    shell = sql(published_db, "--csv", stdin="SELECT 41 + 1 AS answer;\nSELECT * FROM read_csv('/etc/passwd');\n")
    assert "answer\n42" in shell.stdout and "disabled by configuration" in shell.stdout


@pytest.mark.parametrize("statement", [
    "COPY (SELECT 1) TO '{tmp}/x.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '{tmp}/../*.parquet'",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "CREATE TABLE mine AS SELECT 1",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SELECT * FROM duckdb_secrets()",
    "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')",
    "PRAGMA enable_profiling",
    "SET profiling_output = '{tmp}/x.json'",
    "SET memory_limit = '20GB'",
    "EXPORT DATABASE '{tmp}/x'",
])
def test_files_writes_and_settings_are_refused(published_db, tmp_path, statement):
    result = sql(published_db, "-c", statement.format(tmp=tmp_path))
    assert result.returncode != 0
    assert any(s in result.stderr for s in ("disabled by configuration", "disabled through configuration",
                                             "configuration has been locked", "read-only", "locked")), result.stderr
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "other.duckdb").exists()
    assert list(tmp_path.iterdir()) == []  # no file written at all (EXPORT's folder, a profile, a secret)


def test_the_environment_is_not_readable_through_sql(published_db):
    marker = "cyberclaims-env-marker-5150"
    env = {**os.environ, "CYBERCLAIMS_TEST_MARKER": marker}
    for statement in ("SELECT getenv('CYBERCLAIMS_TEST_MARKER') AS v", "SELECT getenv('HOME') AS v"):
        result = sql(published_db, "--csv", "-c", statement, env=env)
        assert result.returncode != 0, result.stdout
        assert marker not in result.stdout + result.stderr
        assert os.environ.get("HOME", "/root") not in result.stdout
        assert "getenv" in result.stderr  # refused by name, not answered


def test_dot_commands_in_the_shell_are_refused_and_the_shell_goes_on(published_db, tmp_path):
    made = tmp_path / "made"
    lines = [f".shell touch {made};", ".read /etc/passwd;", f".system touch {made};", f".output {tmp_path}/out.txt;",
             f".once {tmp_path}/once.txt;", "SELECT 41 + 1 AS answer;", ".read /etc/passwd"]
    shell = sql(published_db, "--csv", stdin="\n".join(lines) + "\n")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.count("Error: Parser Error") == 5, shell.stdout
    assert "answer\n42" in shell.stdout  # the session answers after the refusals
    assert "root:" not in shell.stdout and "/bin/" not in shell.stdout  # nothing of /etc/passwd was read
    assert list(tmp_path.iterdir()) == []  # no command ran, no output file opened


def test_every_query_in_the_actuaries_guide_runs_and_answers(published_db):
    import re
    from pathlib import Path

    from cyberclaims.sql import open_published, run_sql

    guide = Path(__file__).resolve().parents[1] / "docs" / "actuaries.md"
    queries = re.findall(r"```sql\n(.*?)```", guide.read_text(encoding="utf-8"), re.S)
    assert len(queries) == 10
    with open_published(published_db) as con:
        for i, query in enumerate(queries, 1):
            out = io.StringIO()
            assert run_sql(con, query, out, "csv") > 0, f"query {i} returned no rows"


def test_the_shell_is_limited_in_memory_threads_and_time(published_db):
    env = {**os.environ, "CYBERCLAIMS_SQL_MEMORY_LIMIT": "512MB", "CYBERCLAIMS_SQL_THREADS": "1",
           "CYBERCLAIMS_SQL_TIMEOUT_SECONDS": "2"}
    settings = sql(published_db, "--csv", "-c", "SELECT current_setting('memory_limit') AS m, "
                   "current_setting('threads') AS t", env=env)
    assert settings.returncode == 0, settings.stderr
    memory, threads = settings.stdout.splitlines()[1].split(",")
    assert memory.endswith("MiB") and float(memory.split()[0]) <= 512 and threads == "1"
    raised = sql(published_db, "-c", "SET memory_limit = '20GB'", env=env)
    assert raised.returncode != 0 and "locked" in raised.stderr
    started = time.monotonic()
    endless = sql(published_db, "-c", "SELECT count(*) FROM range(1000000000000)", env=env)
    assert endless.returncode != 0 and "interrupted after 2 s" in endless.stderr
    assert time.monotonic() - started < 60


def test_csv_output_streams_everything_and_neutralises_formulas(published_db):
    result = sql(published_db, "--csv", "-c",
                 "SELECT range AS n, CASE WHEN range = 0 THEN '=HYPERLINK(\"http://x\",\"y\")' "
                 "WHEN range = 1 THEN '@SUM(1+1)' WHEN range = 2 THEN '+1+1' ELSE 'plain' END AS t, "
                 "-1.50::DECIMAL(18, 2) AS amount FROM range(25000)")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 25000  # more than one batch
    assert [r["t"] for r in rows[:4]] == ["'=HYPERLINK(\"http://x\",\"y\")", "'@SUM(1+1)", "'+1+1", "plain"]
    assert {r["amount"] for r in rows} == {"-1.50"}  # a negative number stays a number


def test_the_internal_warehouse_needs_internal_and_a_session_on_it_never_blocks_the_writer(sample, tmp_path):
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    sample.scratch_copy(warehouse)
    refused = sql(warehouse, "-c", "SELECT count(*) FROM control.submissions")
    assert refused.returncode != 0 and "internal warehouse" in refused.stderr and "--internal" in refused.stderr
    with sample.con() as con:
        expected = con.execute("SELECT count(*) FROM control.submissions").fetchall()[0][0]
    shell = subprocess.Popen([sys.executable, "-m", "cyberclaims.cli", "sql", "--internal", "--db", str(warehouse),
                              "--csv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "CYBERCLAIMS_DATA_DIR": str(tmp_path / "data")})
    try:
        shell.stdin.write("SELECT count(*) AS n FROM control.submissions;\n")
        shell.stdin.flush()
        assert shell.stdout.readline() == "n\n" and shell.stdout.readline() == f"{expected}\n"
        # The session is open: the pipeline's writer still gets the warehouse.
        with duckdb.connect(str(warehouse)) as writer:
            writer.execute("CREATE TABLE raw.written_during_the_session AS SELECT 1 AS x")
    finally:
        shell.stdin.close()
        shell.wait(timeout=60)
    assert shell.returncode == 0, shell.stderr.read()
    assert not list((tmp_path / "data" / "internal" / "sql").glob("*.duckdb")), "the private copy is removed"
