"""What the warehouse knows about an insurer's submissions, for the gate: the accepted rows the record
suites judge (with what they compare them with) in bounded batches of whole submissions, and the
per-submission facts the submission-level measures are computed from (quality.measures)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.ingestion.manifest import ROW_COUNT
from cyberclaims.ingestion.taxonomy import read_seed

# A validation batch holds whole submissions up to about this many rows.
MAX_BATCH_ROWS = 200_000


def open_statuses() -> list[str]:
    return [r["status"] for r in read_seed("tax_claim_status") if r["is_open"].lower() == "true"]


# The date whose month gives an amount's FX rate (fx_rates_monthly), per record type.
FX_DATE = {"policy": "inception_date", "claim_valuation": "valuation_date"}


def fx_months() -> tuple[list[str], list[str]]:
    """(rate_month, currency) pairs with a rate in the FX seed the dbt models convert with."""
    rows = [r for r in read_seed("fx_rates_monthly") if (r.get("cny_per_unit") or "").strip()]
    return [r["rate_month"] for r in rows], [r["currency"].upper() for r in rows]


def record_frame(con, cfg: InsurerConfig, rt: str, submission_ids: list[str], admitted: tuple[str, ...]) -> pd.DataFrame:
    """Accepted rows of the given submissions, typed for pandas (money as double, dates as timestamps),
    with what the record suites compare them with: the FX seed, the policy's limit, and the claim's
    admitted history (latest ingested version per valuation date, other submissions whose gate status is in
    `admitted`: quality.gate.ADMITTED)."""
    select = ["r.submission_id", "r.source_row"]
    for f in c.stored_fields(rt):
        name = c.key_column(f) if f.kind == "identifier" else f.name
        if f.kind in ("money", "revenue"):
            select.append(f"CAST(r.{name} AS DOUBLE) AS {name}")
        elif f.kind == "date":
            select.append(f"CAST(r.{name} AS TIMESTAMP) AS {name}")
        else:
            select.append(f"r.{name}")
    params: dict = {"ids": submission_ids}
    ctes, joins = [], []
    if rt in FX_DATE:
        # Null (not assessed) when the currency or the date is missing: REQUIRED_FIELD says so.
        select.append(f"CASE WHEN r.currency IS NOT NULL AND r.{FX_DATE[rt]} IS NOT NULL "
                      "THEN fx.rate_month IS NOT NULL END AS fx_rate_known")
        ctes.append("fx AS (SELECT DISTINCT CAST(unnest($fx_months) AS DATE) AS rate_month, "
                    "unnest($fx_currencies) AS currency)")
        joins.append(f"LEFT JOIN fx ON fx.rate_month = CAST(date_trunc('month', r.{FX_DATE[rt]}) AS DATE) "
                     "AND fx.currency = upper(r.currency)")
        params["fx_months"], params["fx_currencies"] = fx_months()
    if rt == "claim_valuation":
        params["insurer"], params["admitted"] = cfg.insurer_id, list(admitted)
        # The limit of the policy the claim refers to: its latest delivered version of this insurer,
        # compared only in the same currency.
        tolerance = 1 + cfg.quality.paid_limit_tolerance
        select.append(f"CASE WHEN p.currency = r.currency THEN CAST(p.limit_amount AS DOUBLE) * {tolerance} END AS limit_with_tolerance")
        joins.append("""LEFT JOIN (
            SELECT insurer_id, policy_key, limit_amount, currency FROM raw.policies
            WHERE insurer_id = $insurer AND submission_id NOT IN (SELECT submission_id FROM control.submission_gate WHERE status = 'rejected')
            QUALIFY row_number() OVER (PARTITION BY policy_key ORDER BY ingested_at DESC, submission_id DESC, source_row DESC) = 1
        ) p ON p.policy_key = r.policy_key""")
        # The insurer's own incurred against the contract's formula, in the row's currency.
        select.append("CAST(abs(r.reported_incurred - (r.paid_indemnity + r.paid_expense + r.case_reserve "
                      "- coalesce(r.recoveries, 0))) AS DOUBLE) AS incurred_difference")
        # The claim's admitted valuations in other submissions, one per date (the latest ingested wins):
        # the previous and the next one in the same currency, the earliest valuation and latest report date.
        ctes.append("""history AS (
            SELECT h.claim_key, h.valuation_date, h.report_date, h.currency, h.paid_indemnity, h.paid_expense
            FROM raw.claim_valuations h JOIN control.submission_gate g ON g.submission_id = h.submission_id
            WHERE h.insurer_id = $insurer AND g.status IN (SELECT unnest($admitted))
              AND h.claim_key IN (SELECT claim_key FROM r)
            QUALIFY row_number() OVER (PARTITION BY h.claim_key, h.valuation_date
                                       ORDER BY h.ingested_at DESC, h.submission_id DESC, h.source_row DESC) = 1
        )""")
        ctes.append("""span AS (
            SELECT claim_key, min(valuation_date) AS first_valuation_date, max(report_date) AS latest_report_date
            FROM history GROUP BY claim_key
        )""")
        joins += [
            "ASOF LEFT JOIN history prev ON prev.claim_key = r.claim_key AND prev.currency = r.currency "
            "AND r.valuation_date > prev.valuation_date",
            "ASOF LEFT JOIN history nxt ON nxt.claim_key = r.claim_key AND nxt.currency = r.currency "
            "AND r.valuation_date < nxt.valuation_date",
            "LEFT JOIN span ON span.claim_key = r.claim_key",
        ]
        select += [
            "CAST(prev.paid_indemnity AS DOUBLE) AS previous_paid_indemnity",
            "CAST(prev.paid_expense AS DOUBLE) AS previous_paid_expense",
            "CAST(nxt.paid_indemnity AS DOUBLE) AS next_paid_indemnity",
            "CAST(nxt.paid_expense AS DOUBLE) AS next_paid_expense",
            "CAST(span.first_valuation_date AS TIMESTAMP) AS admitted_first_valuation_date",
            "CAST(span.latest_report_date AS TIMESTAMP) AS admitted_latest_report_date",
        ]
    query = (
        f"WITH r AS (SELECT * FROM raw.{c.RAW_TABLE[rt]} WHERE submission_id IN (SELECT unnest($ids)))"
        + "".join(f", {cte}" for cte in ctes)
        + f" SELECT {', '.join(select)} FROM r {' '.join(joins)} ORDER BY r.submission_id, r.source_row"
    )
    return con.sql(query, params=params).df()


def not_delivered_columns(cfg: InsurerConfig, rt: str) -> frozenset[str]:
    """Frame columns of the fields the insurer's config declares not delivered (or does not map): null on
    every row, so the gate does not require them of this insurer."""
    delivered = cfg.delivered_fields(rt)
    return frozenset(
        c.key_column(f) if f.kind == "identifier" else f.name for f in c.stored_fields(rt) if f.name not in delivered
    )


def batches(sizes: list[tuple[str, int]], limit: int = MAX_BATCH_ROWS) -> list[list[str]]:
    """Submissions (id, rows) in order, cut into batches of whole submissions of about `limit` rows."""
    out: list[list[str]] = [[]]
    total = 0
    for sid, n in sizes:
        if out[-1] and total + n > limit:
            out.append([])
            total = 0
        out[-1].append(sid)
        total += n
    return [b for b in out if b]


@dataclass
class Facts:
    """What the gate knows of one submission's record type."""

    submission_id: str
    source_file: str
    record_type: str
    delivered: int
    accepted: int
    quarantined: int
    totals: dict[str, Decimal]  # accepted amount totals
    controls: list[dict]  # measure, delivered, manifest
    open_share: float | None = None
    known_policy_share: float | None = None


def read_facts(con, insurer_id: str, submission_ids: list[str]) -> dict[tuple[str, str], Facts]:
    """The facts of the given submissions, per (submission id, record type)."""
    if not submission_ids:
        return {}
    files = dict(con.execute(
        "SELECT submission_id, source_file FROM control.submissions WHERE submission_id IN (SELECT unnest(?))", [submission_ids]
    ).fetchall())
    facts = {
        (sid, rt): Facts(sid, files[sid], rt, delivered, loaded, quarantined, {}, [])
        for sid, rt, delivered, loaded, quarantined in con.execute(
            "SELECT submission_id, record_type, rows_delivered, rows_loaded, rows_quarantined FROM control.submission_counts "
            "WHERE submission_id IN (SELECT unnest(?))", [submission_ids]
        ).fetchall()
    }
    for sid, rt, measure, delivered, accepted, manifest in con.execute(
        "SELECT submission_id, record_type, measure, delivered, accepted, manifest FROM control.submission_controls "
        "WHERE submission_id IN (SELECT unnest(?)) ORDER BY submission_id, record_type, measure = 'row_count' DESC, measure",
        [submission_ids],
    ).fetchall():
        f = facts.get((sid, rt))
        if f is None:
            continue
        if measure != ROW_COUNT:
            f.totals[measure] = accepted
        f.controls.append({"measure": measure, "delivered": delivered, "manifest": manifest})
    for sid, share in con.execute(
        "SELECT submission_id, avg(CASE WHEN status IN (SELECT unnest(?)) THEN 1.0 ELSE 0.0 END) FROM raw.claim_valuations "
        "WHERE submission_id IN (SELECT unnest(?)) GROUP BY ALL", [open_statuses(), submission_ids]
    ).fetchall():
        facts[(sid, "claim_valuation")].open_share = float(share)
    for rt in ("incident", "claim_valuation"):
        for sid, share in con.execute(
            f"""SELECT r.submission_id, avg(CASE WHEN p.policy_key IS NULL THEN 0.0 ELSE 1.0 END)
                FROM raw.{c.RAW_TABLE[rt]} r LEFT JOIN (
                    SELECT DISTINCT policy_key FROM raw.policies WHERE insurer_id = ?
                    AND submission_id NOT IN (SELECT submission_id FROM control.submission_gate WHERE status = 'rejected')
                ) p USING (policy_key)
                WHERE r.submission_id IN (SELECT unnest(?)) GROUP BY ALL""",
            [insurer_id, submission_ids],
        ).fetchall():
            facts[(sid, rt)].known_policy_share = float(share)
    return facts

