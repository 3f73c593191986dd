"""The submission-level gate in Dagster: each insurer's gate decisions are an asset downstream of its
ingestion, the decisions table (control.submission_gate, which dbt's staging reads) is downstream of every
insurer's, and an operator's review (release, reject, revoke) is a job that records its decision on that table.

An insurer's gate asset runs the Great Expectations suites of expectations/suites/ over the insurer's new
submissions (quality.gate.evaluate_insurer) and records each one as passed (admitted) or held. Only admitted
submissions reach the dbt models, so neither a held submission nor a gate that cannot decide for one insurer
stops the others: the gate's `held_submissions` check warns (WARN) while a submission awaits an operator, and
its `decided` check fails (ERROR) when the suites could not decide, leaving that insurer's new submissions
pending (out of the marts) until a run decides them.
"""

import dagster as dg

from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.orchestration.defs.ingestion.assets import GROUP, asset_key
from cyberclaims.orchestration.defs.resources import WRITER_POOL, WarehouseResource
from cyberclaims.quality.gate import GateError, evaluate_insurer
from cyberclaims.quality.review import ReviewError, gate_overview, review

HELD_CHECK = "held_submissions"
DECIDED_CHECK = "decided"
REVIEW_JOB = "review_submission"
# The gate's decisions of every insurer: the dbt source control.submission_gate.
SUBMISSION_GATE = dg.AssetKey(["control", "submission_gate"])


def gate_key(insurer_id: str) -> dg.AssetKey:
    return dg.AssetKey(["control", f"{insurer_id}_gate"])


def build_gate_asset(cfg: InsurerConfig) -> dg.AssetsDefinition:
    key = gate_key(cfg.insurer_id)

    @dg.asset(
        key=key,
        deps=[asset_key(cfg.insurer_id)],
        group_name=GROUP,
        kinds={"great_expectations", "duckdb"},
        pool=WRITER_POOL,
        description=(
            f"Submission-level gate decisions for {cfg.display_name}: GX suites (expectations/suites/) on each new "
            "submission — required fields and ranges, date order, paid ≤ limit, known policies, drift against "
            "the previous admitted submission, reconciliation with the manifest. Within bounds: passed (admitted "
            "to the marts); out of bounds: held for an operator. Written to control.submission_gate and its log."
        ),
        metadata={"insurer_id": cfg.insurer_id},
        tags={"insurer": cfg.insurer_id},
        check_specs=[
            dg.AssetCheckSpec(HELD_CHECK, asset=key, description=(
                "No submission of the insurer is held awaiting an operator (WARN: the held ones stay out of the "
                "marts, everything else proceeds).")),
            dg.AssetCheckSpec(DECIDED_CHECK, asset=key, description=(
                "The gate could decide every new submission (ERROR otherwise: they stay pending, out of the "
                "marts, and the other insurers proceed).")),
        ],
    )
    def _gate(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        try:
            with warehouse.writer() as con:
                decisions = evaluate_insurer(con, cfg)
                still_held = gate_overview(con, status="held", insurer=cfg.insurer_id)
                pending = gate_overview(con, status="pending", insurer=cfg.insurer_id)
        except GateError as exc:
            context.log.error(f"the gate could not decide for {cfg.insurer_id}: {exc}")
            yield dg.MaterializeResult(metadata={"evaluated": 0, "undecided": str(exc)})
            yield dg.AssetCheckResult(check_name=DECIDED_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                      description=f"the gate could not decide: {exc}")
            with warehouse.reader() as con:
                still_held = gate_overview(con, status="held", insurer=cfg.insurer_id)
            yield dg.AssetCheckResult(check_name=HELD_CHECK, passed=not still_held, severity=dg.AssetCheckSeverity.WARN,
                                      description=f"{len(still_held)} held, awaiting an operator; new submissions undecided")
            return
        for d in decisions:
            if d.status == "held":
                context.log.warning(f"{d.source_file}: HELD ({', '.join(d.reasons)})")
        held_now = [d for d in decisions if d.status == "held"]
        yield dg.MaterializeResult(metadata={
            "evaluated": len(decisions),
            "admitted": len(decisions) - len(held_now),
            "held_now": dg.MetadataValue.json({d.source_file: d.reasons for d in held_now}),
            "held_awaiting_review": len(still_held),
        })
        yield dg.AssetCheckResult(check_name=DECIDED_CHECK, passed=not pending,
                                  severity=dg.AssetCheckSeverity.ERROR,
                                  description=f"{len(pending)} submission(s) still pending after the gate")
        yield dg.AssetCheckResult(
            check_name=HELD_CHECK,
            passed=not still_held,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{len(decisions)} new submission(s) evaluated: {len(decisions) - len(held_now)} admitted, "
                f"{len(held_now)} held; {len(still_held)} held in all, awaiting an operator "
                "(`cyberclaims submissions release|reject ID --note ...` or the review_submission job)."
            ),
            metadata={
                "held_awaiting_review": dg.MetadataValue.json(
                    [{"submission_id": h["submission_id"], "source_file": h["source_file"], "reasons": h["reasons"]}
                     for h in still_held]
                ),
            },
        )

    return _gate


def _status_counts(con) -> dict[str, int]:
    return dict(con.execute("SELECT status, count(*) FROM control.submission_gate GROUP BY ALL ORDER BY ALL").fetchall())


def build_submission_gate_table(insurer_ids: list[str]) -> dg.AssetsDefinition:
    """control.submission_gate, the decisions of every insurer's gate and of the operators' reviews."""

    @dg.asset(
        key=SUBMISSION_GATE,
        deps=[gate_key(i) for i in insurer_ids],
        group_name=GROUP,
        kinds={"duckdb"},
        description=(
            "control.submission_gate: the gate state of every loaded submission (pending, passed, held, released, "
            "rejected, revoked) with reasons and results; dbt's staging admits the passed and released ones. "
            "Materialized after the insurers' gates and by every operator review (review_submission job)."
        ),
    )
    def _submission_gate(warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.reader() as con:
            by_status = _status_counts(con)
        return dg.MaterializeResult(metadata={"submissions": sum(by_status.values()),
                                              "by_status": dg.MetadataValue.json(by_status)})

    return _submission_gate


CONFIG_CHECK = "config"


def build_config_check(insurer_id: str, config_error: str) -> dg.AssetChecksDefinition:
    """Fails (ERROR) on the asset of an insurer whose mapping config is invalid, with every problem."""

    @dg.asset_check(
        asset=asset_key(insurer_id),
        name=CONFIG_CHECK,
        description=f"The mapping config of {insurer_id} validates (ingestion/config.py).",
    )
    def _config(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   description=f"invalid mapping config: the insurer is disabled\n{config_error}")

    return _config


class ReviewConfig(dg.Config):
    submission_id: str  # the id or an unambiguous prefix (≥ 8 characters)
    action: str  # release | reject
    note: str  # why: recorded with the decision and shown in the insurer's feedback
    reviewer: str = "dagster operator"


@dg.op(pool=WRITER_POOL, description="Release (admit) or reject a held submission; recorded with reviewer and note.")
def review_held_submission(context: dg.OpExecutionContext, config: ReviewConfig, warehouse: WarehouseResource) -> dict:
    try:
        with warehouse.writer() as con:
            outcome = review(con, config.submission_id, config.action, config.reviewer, config.note)
    except ReviewError as exc:
        raise dg.Failure(description=str(exc)) from None
    context.log.info(f"{outcome['source_file']}: {outcome['status']} by {config.reviewer}: {config.note}")
    context.log_event(dg.AssetMaterialization(SUBMISSION_GATE, description=f"{config.action} by {config.reviewer}", metadata={
        "submission_id": outcome["submission_id"], "source_file": outcome["source_file"], "decision": outcome["logged"],
        "reviewer": config.reviewer, "note": config.note, "reopened": dg.MetadataValue.json(outcome["reopened"])}))
    for source_file in outcome["reopened"]:
        context.log.info(f"{source_file}: held for drift against an older baseline; judged again by the next cycle")
    return outcome


@dg.job(
    name=REVIEW_JOB,
    description=(
        "Operator decision on a submission (config: submission_id, action release|reject|revoke, note): release or "
        "reject a held one, revoke an admitted one. A released submission enters the marts and the published "
        "database with the next monthly_cycle run; a revoked one leaves them."
    ),
)
def review_submission_job():
    review_held_submission()
