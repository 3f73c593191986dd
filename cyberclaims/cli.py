"""The `cyberclaims` command line."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import click

from cyberclaims import settings
from cyberclaims.orchestration.jobs import CYCLE_JOB  # = cyberclaims.orchestration.definitions.CYCLE_JOB, without Dagster


def _shown(text) -> str:
    """Text that came with a submission (a file name, an error quoting its headers) as the terminal shows it:
    control and bidirectional characters escaped, so a name cannot colour, move or reorder the operator's screen."""
    from cyberclaims.ingestion.pipeline import printable

    return printable(str(text))


def _shown_lines(text: str) -> str:
    return "\n".join(_shown(line) for line in str(text).split("\n"))


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def main(verbose: bool) -> None:
    """Sector cyber-insurance claims warehouse: sample data, ingestion, publication."""
    # Before anything is written: the warehouse, the audit files and the key are the bureau's only (CYBERCLAIMS_UMASK).
    try:
        settings.apply_umask()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # dbt resolves a relative path against its project folder, the pipeline against this directory: both get
    # the absolute path, so the warehouse resource and dbt's profile name the same file.
    settings.absolute_path_variables()


@main.command()
@click.option("--insureds", type=int, default=None, help="Number of insured companies (default 3000).")
@click.option("--target-rows", type=int, default=None, help="Aim for about this many claim-valuation rows instead.")
@click.option("--seed", type=int, default=20240101, show_default=True)
@click.option("--first-month", default="2022-01", show_default=True)
@click.option("--last-month", default="2025-12", show_default=True, help="Data cut-off (last valuation month).")
@click.option("--defect-rate", type=float, default=0.004, show_default=True, help="Share of rows per injected row defect.")
@click.option("--no-file-defects", is_flag=True, help="Do not inject resubmitted, truncated, odd-column or unknown files.")
def generate(insureds, target_rows, seed, first_month, last_month, defect_rate, no_file_defects) -> None:
    """Write sample submissions of the sample insurers to data/landing and their truth to data/truth."""
    from cyberclaims.sample.generate import generate_sample
    from cyberclaims.sample.market import MarketParams, params_for_target_rows
    from cyberclaims.sample.render import DefectRates

    if target_rows:
        params = params_for_target_rows(target_rows, seed=seed, first_month=first_month, last_month=last_month)
    else:
        params = MarketParams(seed=seed, n_insureds=insureds or 3000, first_month=first_month, last_month=last_month)
    rates = DefectRates(*([defect_rate] * 6), file_defects=not no_file_defects)
    data_dir = settings.paths().data_dir
    started = time.perf_counter()
    summary = generate_sample(data_dir, params, rates, progress=lambda m: click.echo(f"  … {m}"))
    click.echo(f"Sample written to {data_dir / 'landing'} in {time.perf_counter() - started:.1f}s "
               f"({params.n_insureds} insureds, {params.first_month}..{params.last_month}, seed {params.seed})")
    for rt, info in summary["record_types"].items():
        click.echo(f"  {rt:16s} delivered {info['delivered']:>10,}  with defects {sum(info['defects'].values()):>7,}")
    click.echo(f"  files: {summary['files']}")
    click.echo(f"  expected quarantine reasons: {summary['expected_quarantine_reasons']}")


@main.command()
def prepare() -> None:
    """Parse the dbt project into its manifest (done by ./dev and before every run)."""
    _prepare_dbt()


def _prepare_dbt() -> None:
    from cyberclaims.orchestration.defs.transformation.project import dbt_project, prepare_manifest

    project = dbt_project()
    parsed = prepare_manifest(project)
    click.echo(f"dbt manifest {'parsed' if parsed else 'up to date'}: {project.manifest_path}")


@main.command()
@click.option("--job", "job_name", default=CYCLE_JOB, show_default=True, help="Dagster job to run.")
@click.option("--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.option("--rebuild", is_flag=True,
              help="Build, publish and report even if nothing changed since the published version.")
def run(job_name: str, log_level: str, rebuild: bool) -> None:
    """Run the whole cycle through Dagster, in process (the run shows in the Dagster UI).

    When no submission arrived or was decided and the dbt project is unchanged since the published
    version, the run stops after ingestion and the gate: the marts, the published database, the
    feedback and the regulator pack would come out the same.
    """
    settings.ensure_dagster_home()
    _prepare_dbt()
    import dagster as dg

    from cyberclaims.orchestration.definitions import defs
    from cyberclaims.orchestration.defs.resources import REBUILD_TAG
    from cyberclaims.orchestration.defs.transformation.assets import BUILD_INPUTS
    from cyberclaims.orchestration.runs import PoolWaitTimeout, execute_job

    definitions = defs()
    job = definitions.resolve_job_def(job_name)
    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    # The op that decides whether the marts need building, named as the definitions name it.
    decision_op = definitions.resolve_assets_def(BUILD_INPUTS).op.name
    decides = decision_op in job.graph.node_dict
    if rebuild and decides:
        run_config["ops"] = {decision_op: {"config": {"rebuild": True}}}
    started = time.perf_counter()
    # Runs whose process died are marked failed and their writer-pool slot freed first; the wait for the
    # pool is bounded by CYBERCLAIMS_POOL_WAIT_SECONDS (cyberclaims.orchestration.runs).
    with dg.DagsterInstance.get() as instance:
        try:
            result = execute_job(job, instance, run_config, tags={REBUILD_TAG: "true"} if rebuild else None)
        except (PoolWaitTimeout, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Run {result.run_id} of job '{job_name}': {'SUCCESS' if result.success else 'FAILURE'} "
               f"in {time.perf_counter() - started:.1f}s")
    if result.success and decides and not result.asset_materializations_for_node(decision_op):
        click.echo("Nothing new since the published version (same submissions, gate decisions and dbt project): "
                   "dbt build, publication, feedback and regulator pack skipped (--rebuild forces them).")
    with dg.DagsterInstance.get() as instance:
        _print_held_publication(instance, result.run_id)
    _print_disabled_insurers()
    _print_status()
    sys.exit(0 if result.success else 1)


def _print_held_publication(instance, run_id: str) -> None:
    """When the run's publication was held by the difference rule (README, Privacy), say why."""

    from cyberclaims.orchestration.defs.publication import PUBLISHED_KEY

    event = instance.get_latest_materialization_event(PUBLISHED_KEY)
    if event is None or event.run_id != run_id:
        return
    held = event.asset_materialization.metadata.get("held")
    if held is not None:
        click.echo(f"Publication held (version {event.asset_materialization.metadata['version'].value} stays "
                   f"published): {_shown_lines(held.value)}")


def _print_disabled_insurers() -> None:
    """An invalid config disables only its insurer; say so, with every problem, to stderr."""
    from cyberclaims.ingestion.config import config_dir, load_configs

    loaded = load_configs()
    for insurer_id, error in sorted(loaded.errors.items()):
        click.echo(f"WARNING: insurer {insurer_id} is DISABLED (its files are not read) — invalid config in "
                   f"{config_dir()}:\n  " + error.replace("\n", "\n  "), err=True)


@main.command()
@click.option("--rollback", "rollback_to", type=int, default=None, metavar="VERSION",
              help="Make an earlier kept version the published one again (atomic).")
@click.pass_context
def publish(ctx: click.Context, rollback_to: int | None) -> None:
    """Publish the audited marts as the next version of data/published/sector_claims.duckdb."""
    from cyberclaims.publication.publish import existing_versions, rollback

    published = settings.paths().published
    if rollback_to is None:
        ctx.invoke(run, job_name="publish")
        return
    try:
        path = rollback(published, rollback_to)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path} is version {rollback_to} again (kept: {existing_versions(published)})")


@main.command()
def status() -> None:
    """Summarize the warehouse: rows per table, submissions by status, quarantine by reason."""
    _print_status()


def _print_status() -> None:
    import duckdb

    from cyberclaims.ingestion import warehouse
    from cyberclaims.publication.publish import existing_versions, published_version
    from cyberclaims.quality.gate import SECTOR_ACTOR

    published = settings.paths().published
    click.echo(f"Published {published / 'sector_claims.duckdb'}: version {published_version(published) or 'none'}"
               f" (kept: {existing_versions(published) or 'none'})")
    _print_last_cycle()
    from cyberclaims.ingestion.config import config_dir, load_configs

    for insurer_id, error in sorted(load_configs().errors.items()):
        problems = error.count("\n")
        click.echo(f"Insurer {insurer_id} DISABLED: its config in {config_dir()} is invalid ({problems} problem(s); "
                   f"`cyberclaims onboard check {config_dir() / (insurer_id + '.yaml')}` lists them)")
    path = settings.paths().warehouse
    if not path.exists():
        click.echo(f"No warehouse yet at {path}")
        return
    try:
        con = warehouse.connect(path, read_only=True)
    except duckdb.IOException:
        click.echo(f"Warehouse {path} is locked by another process (a writer outside this cycle?): its counts are "
                   "not shown; `cyberclaims sql --internal` reads a copy")
        return
    with con:
        click.echo(f"Warehouse {path}")
        for table, n in warehouse.table_counts(con).items():
            click.echo(f"  {table:26s} {n:>12,}")
        click.echo("  submissions by insurer, status and gate:")
        for insurer, status, gate, n in con.execute(
            "SELECT s.insurer_id, s.status, coalesce(g.status, '-'), count(*) FROM control.submissions s "
            "LEFT JOIN control.submission_gate g USING (submission_id) GROUP BY ALL ORDER BY ALL"
        ).fetchall():
            click.echo(f"    {insurer:16s} {status:9s} {gate:9s} {n:>6}")
        held = con.execute(
            "SELECT s.source_file, g.reasons, g.decided_by = ? FROM control.submission_gate g "
            "JOIN control.submissions s USING (submission_id) WHERE g.status = 'held' ORDER BY s.source_file",
            [SECTOR_ACTOR],
        ).fetchall()
        for by_sector, title in (
            (False, "held by the submission gate (see `cyberclaims submissions list --status held`):"),
            (True, "held by the sector tests: a blocking dbt test failed on their rows, the others were published "
                   "(`cyberclaims submissions show ID`, then release or reject):"),
        ):
            rows = [(f, r) for f, r, sector in held if bool(sector) == by_sector]
            if rows:
                click.echo(f"  {title}")
                for source_file, reasons in rows:
                    click.echo(f"    {_shown(source_file):48s} {_shown(','.join(reasons))}")
        click.echo("  quarantined rows by reason:")
        for reason, n in con.execute(
            "SELECT reason, count(*) FROM (SELECT unnest(reason_codes) AS reason FROM raw.quarantine) GROUP BY ALL ORDER BY ALL"
        ).fetchall():
            click.echo(f"    {reason:18s} {n:>8,}")


def _print_last_cycle() -> None:
    """The last monthly cycle recorded in the Dagster instance: its status, when it ended and, when it
    failed, why (the root cause of each failed step, e.g. the blocking dbt tests that failed)."""
    from datetime import UTC, datetime

    import dagster as dg

    home = settings.paths().dagster_home
    if not (home / "dagster.yaml").exists():
        click.echo(f"Last cycle: none recorded (no Dagster instance at {home})")
        return
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(job_name=CYCLE_JOB), limit=1)
        if not records:
            click.echo(f"Last cycle: no {CYCLE_JOB} run recorded in {home}")
            return
        record = records[0]
        run = record.dagster_run
        when = record.end_time or record.start_time
        at = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else "not started"
        ended = "ended" if record.end_time else "started"
        click.echo(f"Last cycle: {CYCLE_JOB} run {run.run_id[:8]} {run.status.value}, {ended} {at}")
        _print_held_publication(instance, run.run_id)
        if run.status != dg.DagsterRunStatus.FAILURE:
            return
        failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        for entry in failures:
            data = entry.dagster_event.event_specific_data
            user = getattr(data, "user_failure_data", None)
            why = user.description if user and user.description else (
                _root_cause(data.error) if data and data.error else "no error recorded")
            click.echo(f"  failed step {entry.dagster_event.step_key}: {_shown_lines(why)}")
        if not failures:
            click.echo("  the run failed before any step failed (see the Dagster UI)")


@main.command()
@click.option("-c", "--command", "command", default=None, help="Run this SQL and exit.")
@click.option("-f", "--file", "sql_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Run the SQL in this file and exit.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="Database file (default: the published sector_claims.duckdb).")
@click.option("--internal", is_flag=True,
              help="Query the internal warehouse (bureau staff only), on a private copy that never blocks the cycle.")
def sql(command: str | None, sql_file: str | None, as_csv: bool, db_path: str | None, internal: bool) -> None:
    """SQL on the published sector claims database: read-only, no file access, configuration locked,
    memory, threads and statement time limited (CYBERCLAIMS_SQL_MEMORY_LIMIT, CYBERCLAIMS_SQL_THREADS,
    CYBERCLAIMS_SQL_TIMEOUT_SECONDS)."""
    from contextlib import ExitStack
    from pathlib import Path

    from cyberclaims.publication.publish import PUBLISHED_NAME
    from cyberclaims.sql import warehouse_snapshot

    with ExitStack() as stack:
        try:
            if internal:
                source = Path(db_path) if db_path else settings.paths().warehouse
                path = stack.enter_context(warehouse_snapshot(source, settings.paths().data_dir / "internal" / "sql"))
            else:
                path = Path(db_path) if db_path else settings.paths().published / PUBLISHED_NAME
            _sql_session(path, internal, command, sql_file, as_csv)
        except (FileNotFoundError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from None


def _sql_session(path, internal: bool, command: str | None, sql_file: str | None, as_csv: bool) -> None:
    from pathlib import Path

    import duckdb

    from cyberclaims.sql import is_internal, open_published, repl, run_sql

    try:
        con = open_published(path)
    except duckdb.IOException as exc:
        raise click.ClickException(f"{path} cannot be opened read-only ({str(exc).splitlines()[0]})") from None
    if is_internal(con) and not internal:
        con.close()
        raise click.ClickException(f"{path} is the internal warehouse (raw submissions): use --internal, which "
                                   "queries a private copy and never blocks the cycle")
    fmt = "csv" if as_csv else "table"
    with con:
        if command is None and sql_file is None:
            repl(con, fmt)
            return
        text = command if command is not None else Path(sql_file).read_text(encoding="utf-8")
        try:
            run_sql(con, text, sys.stdout, fmt)
        except duckdb.Error as exc:
            raise click.ClickException(str(exc)) from None


@main.group()
def report() -> None:
    """Reports built from the published data."""


def _root_cause(error) -> str:
    """The message of the exception that started a Dagster step failure (not Dagster's wrapper)."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


@report.command("regulator")
@click.option("--quarter", default=None, metavar="YYYYQn",
              help="Quarter of the pack, e.g. 2025Q4 (default: the latest complete quarter in the data).")
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Disclosure thresholds (default: regulator/pack.yaml; the claim size bands are the dbt seed tax_claim_size_band).")
def report_regulator(quarter: str | None, rules_file: str | None) -> None:
    """Pilot statistics for the regulator, with disclosure control, into data/regulator/<quarter>/."""
    import duckdb

    from cyberclaims.regulator.pack import check_quarter
    from cyberclaims.regulator.statistics import PackError

    # Refuse a quarter the data do not cover before starting Dagster, with the reason only.
    try:
        quarter = check_quarter(settings.paths().warehouse, quarter)
    except (PackError, duckdb.Error) as exc:
        raise click.ClickException(str(exc)) from None
    settings.ensure_dagster_home()
    _prepare_dbt()
    import dagster as dg

    from cyberclaims.orchestration.definitions import defs
    from cyberclaims.orchestration.defs.regulator import PACK_KEY, REGULATOR_JOB

    definitions = defs()
    pack_op = definitions.resolve_assets_def(PACK_KEY).op.name
    with dg.DagsterInstance.get() as instance:
        result = definitions.resolve_job_def(REGULATOR_JOB).execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"ops": {pack_op: {"config": {
                "quarter": quarter, "rules_file": str(Path(rules_file).resolve()) if rules_file else None}}}},
        )
        if not result.success:
            errors = [_root_cause(e.event_specific_data.error) for e in result.all_events
                      if e.is_step_failure and e.event_specific_data and e.event_specific_data.error]
            raise click.ClickException("; ".join(errors) or f"run {result.run_id} failed")
        metadata = result.asset_materializations_for_node(pack_op)[0].metadata
    folder = settings.paths().regulator / metadata["quarter"].value
    click.echo(f"Regulator pack {metadata['quarter'].value} (data cut-off {metadata['data_cutoff'].value}, "
               f"publication version {metadata['publication_version'].value}, "
               f"{metadata['contributing_insurers'].value} insurers): {folder}")
    click.echo(f"  disclosure control: {metadata['suppression'].value}")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        click.echo(f"  {path.relative_to(folder)}  {path.stat().st_size:,} bytes")


@main.group()
def submissions() -> None:
    """The submission gate: list submissions by gate status, show one, release or reject a held one, revoke an
    admitted one."""


@submissions.command("list")
@click.option("--status", type=click.Choice(["pending", "passed", "held", "released", "rejected"]), default=None,
              help="Gate status; 'rejected' includes files that could not be read.")
@click.option("--insurer", default=None)
def submissions_list(status: str | None, insurer: str | None) -> None:
    """Submissions with their gate status and reasons, and files rejected unread with their error (default: every one)."""
    from cyberclaims.ingestion import warehouse
    from cyberclaims.quality.review import gate_overview

    with warehouse.connect(settings.paths().warehouse, read_only=True) as con:
        rows = gate_overview(con, status, insurer)
        unread = warehouse.rejected_files(con, insurer) if status in (None, "rejected") else []
    for r in rows:
        reasons = _shown(",".join(r["reasons"] or []))
        click.echo(f"{r['submission_id'][:16]}  {r['insurer_id']:16s} {r['status']:9s} {_shown(r['source_file']):48s} "
                   f"{reasons}")
    for r in unread:
        click.echo(f"{r['submission_id'][:16]}  {r['insurer_id']:16s} {'rejected':9s} {_shown(r['source_file']):48s} "
                   f"file not read: {_shown(r['error'])}")
    click.echo(f"{len(rows) + len(unread)} submission(s)" + (f", {len(unread)} of them files not read "
               "(`cyberclaims submissions retry ID` reads one again)" if unread else ""))


@submissions.command("show")
@click.argument("submission_id")
def submissions_show(submission_id: str) -> None:
    """The gate's findings for one submission, or a rejected file's error (id or a prefix of ≥ 8 characters), as JSON."""
    import json

    from cyberclaims.ingestion import warehouse

    with warehouse.connect(settings.paths().warehouse, read_only=True) as con:
        try:
            sid = warehouse.resolve_submission_id(con, submission_id)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        row = con.execute(
            "SELECT s.insurer_id, s.source_file, coalesce(g.status, s.status), g.reasons, g.results, g.decided_by, "
            "g.decision_note, s.error, s.mapping_version, s.ingested_at "
            "FROM control.submissions s LEFT JOIN control.submission_gate g USING (submission_id) WHERE submission_id = ?", [sid]
        ).fetchall()[0]
    keys = ("insurer_id", "source_file", "status", "reasons", "results", "decided_by", "decision_note", "error",
            "mapping_version", "ingested_at")
    out = {"submission_id": sid} | dict(zip(keys, row, strict=True))
    out["results"] = json.loads(out["results"]) if out["results"] else None
    if out["error"]:
        out["retry"] = f"cyberclaims submissions retry {sid[:12]} (or change the insurer's mapping_version)"
    # JSON escapes (\u202e) of what a terminal would obey: still the same JSON, but safe to print.
    from cyberclaims.ingestion.pipeline import printable

    text = json.dumps(out, ensure_ascii=False, indent=2, default=str)
    click.echo("\n".join(printable(line, escape=lambda ch: json.dumps(ch)[1:-1]) for line in text.split("\n")))


@submissions.command("retry")
@click.argument("submission_id")
@click.option("--note", default="retry requested", show_default=True, help="Why (recorded in the submission log).")
@click.option("--reviewer", default=None, help="Who asks (default: $USER).")
def submissions_retry(submission_id: str, note: str, reviewer: str | None) -> None:
    """Read a rejected file again with the next `cyberclaims run` (e.g. after the layout was fixed)."""
    from cyberclaims.ingestion import warehouse

    actor = reviewer or os.environ.get("USER") or "operator"
    with warehouse.connect(settings.paths().warehouse) as con:
        try:
            sid = warehouse.resolve_submission_id(con, submission_id)
            source_file = warehouse.forget_rejection(con, sid, note, actor)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{_shown(source_file)} ({sid[:16]}): will be read again by the next `cyberclaims run`")


def _review(action: str, submission_id: str, note: str, reviewer: str | None) -> None:
    """The operator's decision through the review job, as the UI's launchpad runs it: in the writer pool, recorded
    as a run and as a materialization of the gate's decisions."""
    settings.ensure_dagster_home()
    import dagster as dg

    from cyberclaims.orchestration.definitions import defs
    from cyberclaims.orchestration.defs.ingestion.gate import REVIEW_JOB, review_held_submission
    from cyberclaims.orchestration.runs import PoolWaitTimeout, execute_job

    actor = reviewer or os.environ.get("USER") or "operator"
    op = review_held_submission.name
    run_config = {"ops": {op: {"config": {"submission_id": submission_id, "action": action, "note": note, "reviewer": actor}}},
                  "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.DagsterInstance.get() as instance:
        try:
            result = execute_job(defs().resolve_job_def(REVIEW_JOB), instance, run_config)
        except PoolWaitTimeout as exc:
            raise click.ClickException(str(exc)) from None
    if not result.success:
        failures = [e.step_failure_data for e in result.all_events if e.is_step_failure]
        why = [f.user_failure_data.description if f.user_failure_data else f.error.message for f in failures]
        raise click.ClickException("; ".join(w.strip() for w in why if w) or f"review run {result.run_id} failed")
    outcome = result.output_for_node(op)
    click.echo(f"{_shown(outcome['source_file'])} ({outcome['submission_id'][:16]}): {outcome['logged']} by {actor}")
    if action == "release":
        click.echo("It enters the marts and the published database with the next `cyberclaims run`.")
        for source_file in outcome["reopened"]:
            click.echo(f"  {_shown(source_file)}: held for drift against an older baseline; judged again by the next run")
    elif outcome["logged"] == "revoked":
        click.echo("Its rows leave the marts and the published database with the next `cyberclaims run` "
                   "(the marts are rebuilt whole); they stay in raw for audit.")


def _review_command(action: str, summary: str, why: str) -> None:
    @submissions.command(action, help=summary)
    @click.argument("submission_id")
    @click.option("--note", required=True, help=f"{why} (recorded, shown in the insurer's feedback).")
    @click.option("--reviewer", default=None, help="Who decides (default: $USER).")
    def command(submission_id: str, note: str, reviewer: str | None) -> None:
        _review(action, submission_id, note, reviewer)


_review_command("release", "Admit a held submission.", "Why it may be admitted")
_review_command("reject", "Reject a held or admitted submission for good: its rows never reach (or leave) the marts.",
                "Why it is rejected")
_review_command("revoke", "Revoke an admitted submission: its rows leave the marts and the next published version.",
                "Why it is revoked")


@main.group()
def onboard() -> None:
    """Onboard an insurer: dry-run its layout, or write the bureau's standard submission template."""


@onboard.command("check")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def onboard_check(config: Path, files: tuple[Path, ...]) -> None:
    """Validate CONFIG and dry-run FILES through it (nothing is written). Exit 0 only if they would load cleanly."""
    from cyberclaims.ingestion.onboard import check_files, render

    report = check_files(config, list(files))
    click.echo(_shown_lines(render(report)), nl=False)  # it quotes the files' headers and values
    sys.exit(0 if report.clean else (2 if report.config_error else 1))


@onboard.command("template")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("bureau_template"),
              show_default=True, help="Folder to write the template and its config into.")
@click.option("--insurer-id", default="new_insurer", show_default=True, help="The insurer id of the ready config.")
@click.option("--display-name", default="New insurer (bureau standard template)", show_default=True)
@click.option("--variant", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True,
              help="Which template the ready config reads: the workbook or the three CSV files.")
def onboard_template(out_dir: Path, insurer_id: str, display_name: str, variant: str) -> None:
    """Write the bureau's standard submission template (xlsx and CSV) and the ready config that reads it."""
    from cyberclaims.ingestion.template import write_template

    written = write_template(out_dir, insurer_id, display_name, variant)
    for path in written:
        click.echo(f"  {path}")
    click.echo(f"An insurer delivering in this template needs no mapping: copy {insurer_id}.yaml into the config "
               f"folder (CYBERCLAIMS_CONFIG_DIR) and drop the filled files into landing/{insurer_id}/.")


@main.command()
@click.option("--port", default=3000, show_default=True)
def ui(port: int) -> None:
    """Open the Dagster UI on this installation's runs (http://127.0.0.1:PORT)."""
    home = settings.ensure_dagster_home()
    click.echo(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={home})")
    os.execvp("dagster", ["dagster", "dev", "-m", "cyberclaims.orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)])


if __name__ == "__main__":
    main()
