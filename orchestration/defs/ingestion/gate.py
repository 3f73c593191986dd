"""The submission-level gate in Dagster: a blocking check on every insurer's ingestion asset,
and the operator's review job (release or reject a held submission).

The check runs the Great Expectations suites of expectations/suites/ over the insurer's new
submissions (quality.gate.evaluate_insurer) and records each one as passed (admitted) or held.
A held submission is withheld from the dbt models by its gate status, so the check reports it
with severity WARN and the other insurers' data flows on; the check fails with severity ERROR,
and being blocking stops everything downstream, when the gate itself cannot decide.
"""

import dagster as dg

from ingestion.config import InsurerConfig
from orchestration.defs.ingestion.assets import asset_key
from orchestration.defs.resources import WRITER_POOL, WarehouseResource
from quality.gate import GateError, evaluate_insurer
from quality.review import ReviewError, gate_overview, review

CHECK_NAME = "submission_gate"
REVIEW_JOB = "review_submission"


def build_gate_check(cfg: InsurerConfig) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key(cfg.insurer_id),
        name=CHECK_NAME,
        blocking=True,
        pool=WRITER_POOL,
        description=(
            f"Submission-level gate for {cfg.display_name}: GX suites (expectations/suites/) on each new "
            "submission — required fields and ranges, date order, paid ≤ limit, known policies, drift against "
            "the previous admitted submission, reconciliation with the manifest. Out of bounds → held (WARN; the "
            "insurer's other submissions and other insurers proceed). Gate unable to decide → ERROR (blocks)."
        ),
    )
    def _gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        try:
            with warehouse.writer() as con:
                decisions = evaluate_insurer(con, cfg)
                still_held = gate_overview(con, status="held", insurer=cfg.insurer_id)
        except GateError as exc:
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                       description=f"the gate could not decide: {exc}")
        for d in decisions:
            if d.status == "held":
                context.log.warning(f"{d.source_file}: HELD ({', '.join(d.reasons)})")
        held_now = [d for d in decisions if d.status == "held"]
        return dg.AssetCheckResult(
            passed=not still_held,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{len(decisions)} new submission(s) evaluated: {len(decisions) - len(held_now)} admitted, "
                f"{len(held_now)} held; {len(still_held)} held in all, awaiting an operator "
                "(`cyberclaims submissions release|reject ID --note ...` or the review_submission job)."
            ),
            metadata={
                "evaluated": len(decisions),
                "admitted": len(decisions) - len(held_now),
                "held_now": dg.MetadataValue.json({d.source_file: d.reasons for d in held_now}),
                "held_awaiting_review": dg.MetadataValue.json(
                    [{"submission_id": h["submission_id"], "source_file": h["source_file"], "reasons": h["reasons"]}
                     for h in still_held]
                ),
            },
        )

    return _gate


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
