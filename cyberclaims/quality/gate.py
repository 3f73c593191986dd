"""The submission-level gate: Great Expectations suites over each new submission, then admit or hold.

Every loaded submission enters `control.submission_gate` as `pending`. The gate evaluates an
insurer's pending submissions in delivery order:

1. the record suites (`expectations/suites/{policy,incident,claim_valuation}.json`) run on the
   submissions' accepted rows, in bounded batches of whole submissions; every failing row is
   attributed to its submission by (submission_id, source_row);
2. the `submission` suite runs on one profile row per submission and record type: quarantine
   share, share of policies known, drift against the insurer's previous *admitted* submission
   of that record type (row count, premium and paid totals, share of open claims) and the
   reconciliation with the manifest's control totals. Thresholds come from the insurer's
   config (`quality:`) as suite parameters.

A submission with any failing expectation is **held**; the others **pass** and are admitted.
Only admitted submissions (passed, or released by an operator) reach the dbt models, so a held
submission never delays another insurer's. Drift skips held submissions: the next month is
compared with the last admitted one, not with the outlier.

The record suites also judge each row against the claim's *admitted* history (paid never falls,
a claim is not valued before it was reported, across files) and the FX seed (a rate for every
amount's month), so what the sector-level dbt tests would refuse is held here, per submission.
A required field the insurer's config declares not delivered is not required of it.

Sector level: when a blocking dbt test of the build still fails on rows of newly admitted
submissions, the build holds exactly those (`hold_for_sector_tests`, reason SECTOR_TEST:<test>,
actor `sector_tests`) and rebuilds without them (`attribute_sector_failures` decides what can be
attributed). Operators release, reject or revoke (`review`): a revocation takes an admitted
submission out of the marts and the next published version.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd

from cyberclaims.ingestion import contract as c
from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.ingestion.manifest import ROW_COUNT
from cyberclaims.ingestion.taxonomy import load_taxonomy, read_seed

log = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations" / "suites"
# The gate statuses whose rows reach the marts: the one definition in Python (dbt: macro is_admitted).
ADMITTED = ("passed", "released")
# A hold by a failing sector-level dbt test: SECTOR_TEST:<test name>.
SECTOR_TEST = "SECTOR_TEST"
# A validation batch holds whole submissions up to about this many rows.
MAX_BATCH_ROWS = 200_000
SAMPLES_PER_FINDING = 5
PROFILE_INDEX = ["submission_id", "record_type"]
RECORD_INDEX = ["submission_id", "source_row"]


# Why a submission is held (the `reason` in each expectation's meta in expectations/suites/).
GATE_REASONS = {
    "REQUIRED_FIELD": "an accepted row lacks a required field (the mapping is wrong)",
    "RANGE": "an accepted value is outside its allowed range",
    "DATE_ORDER": "accepted rows have dates out of order",
    "PREMIUM_ABOVE_LIMIT": "written premium exceeds the limit (often a 元/万元 unit mix-up)",
    "PAID_ABOVE_LIMIT": "paid indemnity exceeds the policy limit beyond the tolerance",
    "QUARANTINE_SHARE": "too large a share of the delivered rows failed row-level validation",
    "UNKNOWN_POLICIES": "too many incidents or claims refer to policies the insurer has not delivered",
    "DRIFT_ROW_COUNT": "the row count moved too far from the previous admitted submission",
    "DRIFT_PREMIUM": "the written premium total moved too far from the previous admitted submission",
    "DRIFT_PAID": "the paid total moved too far from the previous admitted submission",
    "DRIFT_OPEN_SHARE": "the share of open claims moved too far from the previous admitted submission",
    "MANIFEST_INVALID": "the manifest delivered with the file cannot be read or names another file",
    "MANIFEST_MISSING": "no manifest was delivered although the insurer's config requires one",
    "MANIFEST_ROW_COUNT": "the rows delivered differ from the manifest's row count",
    "MANIFEST_TOTALS": "an amount total differs from the manifest's control total",
    "PAID_DECREASES": "a cumulative paid amount is below the claim's previous admitted valuation, or above its "
                      "next later one (a late correction that would make paid fall)",
    "INCURRED_MISMATCH": "the delivered incurred differs from paid indemnity + paid expense + case reserve − "
                         "recoveries by more than the tolerance",
    "FX_RATE_MISSING": "an amount's currency has no FX rate for its month (valuation month; policies: inception month)",
    "VALUED_BEFORE_REPORTED": "across files, a claim is valued before it was reported: its report date is after "
                              "an admitted valuation, or its valuation before an admitted report date",
    SECTOR_TEST: "a blocking test of the sector build (dbt) fails on this submission's rows; the other submissions "
                 "were published without it",
}

# Who holds a submission whose rows fail a sector-level dbt test (control.submission_gate.decided_by and the log).
SECTOR_ACTOR = "sector_tests"


def reason_description(reason: str) -> str:
    """What a gate reason code means (SECTOR_TEST:<test> by its prefix)."""
    return GATE_REASONS.get(reason.split(":", 1)[0], "")


class GateError(RuntimeError):
    """The gate could not evaluate (a suite raised, the warehouse is inconsistent)."""


class ReviewError(ValueError):
    """An operator decision that cannot be taken (unknown id, wrong state, no note)."""


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------- suites


class SuiteRunner:
    """The versioned suites of expectations/suites/, in an ephemeral GX context over pandas batches."""

    def __init__(self, suites_dir: Path = SUITES_DIR):
        import great_expectations as gx

        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self._source = self.context.data_sources.add_pandas("submissions")
        self.definitions: dict[tuple[str, frozenset[str]], object] = {}
        self.versions: dict[str, str] = {}
        self.docs: dict[str, dict] = {}
        for path in sorted(suites_dir.glob("*.json")):
            doc = json.loads(path.read_text(encoding="utf-8"))
            self.versions[doc["name"]] = doc["meta"]["version"]
            self.docs[doc["name"]] = doc
            self._definition(doc["name"], frozenset())

    def _definition(self, name: str, not_delivered: frozenset[str]):
        """The suite's validation definition without the REQUIRED_FIELD expectations of the columns an
        insurer declares not delivered (built once per suite and set of columns)."""
        key = (name, not_delivered)
        if key not in self.definitions:
            gx, doc = self._gx, self.docs[name]
            variant = name if not not_delivered else f"{name} without {', '.join(sorted(not_delivered))}"
            expectations = [
                e for e in doc["expectations"]
                if not ((e.get("meta") or {}).get("reason") == "REQUIRED_FIELD" and e["kwargs"].get("column") in not_delivered)
            ]
            suite = self.context.suites.add(gx.ExpectationSuite(**{**doc, "name": variant, "expectations": expectations}))
            batch = self._source.add_dataframe_asset(variant).add_batch_definition_whole_dataframe("new_submissions")
            self.definitions[key] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=variant, data=batch, suite=suite)
            )
        return self.definitions[key]

    def run(self, name: str, frame: pd.DataFrame, parameters: dict, index: list[str],
            not_delivered: frozenset[str] = frozenset()) -> list[dict]:
        """Failed expectations, each with its unexpected rows identified by the index columns.
        `not_delivered`: columns whose REQUIRED_FIELD expectations do not apply (the insurer's config
        declares them not delivered, so they are null on every row)."""
        if frame.empty:
            return []
        required = {e["kwargs"].get("column") for e in self.docs[name]["expectations"]
                    if (e.get("meta") or {}).get("reason") == "REQUIRED_FIELD"}
        result = self._definition(name, frozenset(not_delivered) & required).run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": index},
        )
        failures = []
        for r in result.results:
            _raise_on_exception(name, r)
            if r.success:
                continue
            config = r.expectation_config
            failures.append({
                "suite": name,
                "expectation": config.type,
                "kwargs": {k: v for k, v in config.kwargs.items() if k in ("column", "column_A", "column_B")},
                "reason": (config.meta or {}).get("reason", "EXPECTATION"),
                "describe": (config.meta or {}).get("describe", ""),
                "unexpected": r.result.get("unexpected_index_list") or [],
            })
        return failures


def _raise_on_exception(suite: str, result) -> None:
    info = result.exception_info or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    for item in infos:
        if isinstance(item, dict) and item.get("raised_exception"):
            raise GateError(f"suite {suite}: {result.expectation_config.type} raised: {item.get('exception_message')}")


# --------------------------------------------------------------------------- evaluation


@dataclass
class Decision:
    submission_id: str
    source_file: str
    status: str  # passed | held
    reasons: list[str]
    results: dict = field(default_factory=dict)


def _jsonable(value):
    if value is pd.NA or value is pd.NaT:  # a missing value of a nullable pandas column
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        # Ratios and shares to 6 decimals: readable, and never an 18-digit run that looks like an identifier.
        return None if value != value else round(value, 6)
    return value


def _open_statuses() -> list[str]:
    return [r["status"] for r in read_seed("tax_claim_status") if r["is_open"].lower() == "true"]


def pending_submissions(con: duckdb.DuckDBPyConnection, insurer_id: str) -> list[tuple[str, str, datetime]]:
    return con.execute(
        """SELECT g.submission_id, s.source_file, s.ingested_at FROM control.submission_gate g
           JOIN control.submissions s USING (submission_id)
           WHERE g.insurer_id = ? AND g.status = 'pending' ORDER BY s.ingested_at, s.submission_id""",
        [insurer_id],
    ).fetchall()


# The date whose month gives an amount's FX rate (fx_rates_monthly), per record type.
FX_DATE = {"policy": "inception_date", "claim_valuation": "valuation_date"}


def _fx_months() -> tuple[list[str], list[str]]:
    """(rate_month, currency) pairs with a rate in the FX seed the dbt models convert with."""
    rows = [r for r in read_seed("fx_rates_monthly") if (r.get("cny_per_unit") or "").strip()]
    return [r["rate_month"] for r in rows], [r["currency"].upper() for r in rows]


def _record_frame(con, cfg: InsurerConfig, rt: str, submission_ids: list[str]) -> pd.DataFrame:
    """Accepted rows of the given submissions, typed for pandas (money as double, dates as timestamps),
    with what the record suites compare them with: the FX seed, the policy's limit, and the claim's
    admitted history (latest ingested version per valuation date, other submissions that are admitted)."""
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
        params["fx_months"], params["fx_currencies"] = _fx_months()
    if rt == "claim_valuation":
        params["insurer"], params["admitted"] = cfg.insurer_id, list(ADMITTED)
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


def _batches(sizes: list[tuple[str, int]], limit: int = MAX_BATCH_ROWS) -> list[list[str]]:
    batches: list[list[str]] = [[]]
    total = 0
    for sid, n in sizes:
        if batches[-1] and total + n > limit:
            batches.append([])
            total = 0
        batches[-1].append(sid)
        total += n
    return [b for b in batches if b]


def _record_findings(con, cfg: InsurerConfig, runner: SuiteRunner, submission_ids: list[str]) -> dict[str, list[dict]]:
    findings: dict[str, list[dict]] = {}
    parameters = {
        "currencies": sorted(load_taxonomy().codes["tax_currency"]),
        "incurred_tolerance": float(cfg.quality.incurred_tolerance),
    }
    for rt in cfg.record_types:
        sizes = con.execute(
            "SELECT submission_id, rows_loaded FROM control.submission_counts WHERE record_type = ? "
            "AND submission_id IN (SELECT unnest(?))",
            [rt, submission_ids],
        ).fetchall()
        position = {sid: i for i, sid in enumerate(submission_ids)}
        for batch in _batches(sorted(sizes, key=lambda s: position[s[0]])):
            frame = _record_frame(con, cfg, rt, batch)
            for failure in runner.run(rt, frame, parameters, RECORD_INDEX, not_delivered_columns(cfg, rt)):
                by_submission: dict[str, list[dict]] = {}
                for row in failure["unexpected"]:
                    by_submission.setdefault(row["submission_id"], []).append(row)
                for sid, rows in by_submission.items():
                    findings.setdefault(sid, []).append({
                        "suite": f"{rt} {runner.versions[rt]}",
                        "record_type": rt,
                        "reason": failure["reason"],
                        "expectation": failure["expectation"],
                        "columns": failure["kwargs"],
                        "describe": failure["describe"],
                        "unexpected_rows": len(rows),
                        "samples": [
                            {k: _jsonable(v) for k, v in r.items() if k != "submission_id"}
                            for r in sorted(rows, key=lambda r: r["source_row"])[:SAMPLES_PER_FINDING]
                        ],
                    })
    return findings


@dataclass
class _Facts:
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


def _facts(con, insurer_id: str, submission_ids: list[str]) -> dict[tuple[str, str], _Facts]:
    if not submission_ids:
        return {}
    files = dict(con.execute(
        "SELECT submission_id, source_file FROM control.submissions WHERE submission_id IN (SELECT unnest(?))", [submission_ids]
    ).fetchall())
    facts = {
        (sid, rt): _Facts(sid, files[sid], rt, delivered, loaded, quarantined, {}, [])
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
        "WHERE submission_id IN (SELECT unnest(?)) GROUP BY ALL", [_open_statuses(), submission_ids]
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


def _ratio(current: Decimal | int | None, previous: Decimal | int | None) -> float | None:
    if current is None or previous is None or previous == 0:
        return None
    return float(Decimal(current) / Decimal(previous))


def _profiles(
    cfg: InsurerConfig,
    order: list[str],
    facts: dict[tuple[str, str], _Facts],
    last_admitted: dict[str, str],
    skip: set[str],
    manifests: dict[str, tuple[str | None, str | None]],
    admitted_count: dict[str, int],
) -> tuple[pd.DataFrame, dict[tuple[str, str], dict]]:
    """One row per pending submission and record type; drift against the last admitted one, skipping `skip`.

    `admitted_count` holds, per record type, how many of the insurer's submissions were admitted
    before the pending ones: drift is assessed only from `drift.min_admitted_history` of them on.
    """
    q = cfg.quality
    drift = q.drift
    previous = dict(last_admitted)  # record type → submission id
    history = dict(admitted_count)  # record type → admitted submissions so far
    rows, info = [], {}
    for sid in order:
        manifest_file, manifest_error = manifests.get(sid, (None, None))
        for rt in cfg.record_types:
            f = facts.get((sid, rt))
            if f is None:
                continue
            p = facts.get((previous[rt], rt)) if rt in previous else None
            comparable = (
                p is not None and history.get(rt, 0) >= drift.min_admitted_history
                and p.accepted >= drift.min_previous_rows and f.accepted >= drift.min_previous_rows
            )
            paid = (f.totals.get("paid_indemnity", 0) + f.totals.get("paid_expense", 0)) if rt == "claim_valuation" else None
            prev_paid = (p.totals.get("paid_indemnity", 0) + p.totals.get("paid_expense", 0)) if p and rt == "claim_valuation" else None
            row_diff = total_diff = None
            if manifest_file and not manifest_error:
                stated = {x["measure"]: x for x in f.controls if x["manifest"] is not None}
                if ROW_COUNT in stated:
                    row_diff = float(abs(stated[ROW_COUNT]["delivered"] - stated[ROW_COUNT]["manifest"]))
                amounts = [abs(x["delivered"] - x["manifest"]) for m, x in stated.items() if m != ROW_COUNT]
                total_diff = float(max(amounts)) if amounts else None
            row = {
                "submission_id": sid,
                "record_type": rt,
                "quarantine_share": f.quarantined / f.delivered if f.delivered >= q.min_rows_for_shares else None,
                "known_policy_share": f.known_policy_share if f.accepted >= q.min_rows_for_shares else None,
                "row_count_ratio": _ratio(f.accepted, p.accepted) if comparable and rt in drift.row_count_record_types else None,
                "premium_ratio": _ratio(f.totals.get("written_premium"), p.totals.get("written_premium")) if comparable and rt == "policy" else None,
                "paid_ratio": _ratio(paid, prev_paid) if comparable and rt == "claim_valuation" else None,
                "open_share_change": abs(f.open_share - p.open_share)
                if comparable and rt == "claim_valuation" and f.open_share is not None and p.open_share is not None else None,
                "manifest_error": manifest_error,
                "manifest_delivered": manifest_file is not None,
                "manifest_row_difference": row_diff,
                "manifest_total_difference": total_diff,
            }
            rows.append(row)
            info[(sid, rt)] = {
                "record_type": rt,
                "rows": {"delivered": f.delivered, "accepted": f.accepted, "quarantined": f.quarantined},
                "previous_submission": {"submission_id": p.submission_id, "source_file": p.source_file,
                                        "accepted": p.accepted} if p else None,
                "measures": {k: _jsonable(v) for k, v in row.items() if k not in PROFILE_INDEX},
                "totals": {k: str(v) for k, v in f.totals.items()},
                "previous_totals": {k: str(v) for k, v in p.totals.items()} if p else None,
                "open_share": _jsonable(f.open_share),
                "reconciliation": [
                    {"measure": x["measure"], "counted": str(x["delivered"]),
                     "manifest": None if x["manifest"] is None else str(x["manifest"]),
                     "difference": None if x["manifest"] is None else str(x["delivered"] - x["manifest"])}
                    for x in f.controls
                ] if manifest_file else [],
            }
        if sid not in skip:
            for rt in cfg.record_types:
                if (sid, rt) in facts:
                    previous[rt] = sid
                    history[rt] = history.get(rt, 0) + 1
    frame = pd.DataFrame(rows, columns=[*PROFILE_INDEX, *(k for k in (rows[0] if rows else {}) if k not in PROFILE_INDEX)])
    return frame, info


def _parameters(cfg: InsurerConfig) -> dict:
    q, d = cfg.quality, cfg.quality.drift
    return {
        "max_quarantine_share": q.max_quarantine_share,
        "min_known_policy_share": q.min_known_policy_share,
        "row_count_ratio_min": 1 / d.row_count_factor, "row_count_ratio_max": d.row_count_factor,
        "premium_ratio_min": 1 / d.premium_factor, "premium_ratio_max": d.premium_factor,
        "paid_ratio_min": 1 / d.paid_factor, "paid_ratio_max": d.paid_factor,
        "open_share_change": d.open_share_change,
        "manifest_delivered_allowed": [True] if q.manifest_required else [True, False],
        "reconciliation_tolerance": float(q.reconciliation_tolerance),
    }


def evaluate_insurer(
    con: duckdb.DuckDBPyConnection, cfg: InsurerConfig, runner: SuiteRunner | None = None
) -> list[Decision]:
    """Evaluate and decide every pending submission of one insurer (one transaction for the decisions)."""
    pending = pending_submissions(con, cfg.insurer_id)
    if not pending:
        return []
    runner = runner or SuiteRunner()
    order = [sid for sid, _, _ in pending]
    first_ingested = pending[0][2]

    # The insurer's last admitted submission of each record type before the pending ones, and how many.
    admitted = con.execute(
        """SELECT sc.record_type, arg_max(s.submission_id, (s.ingested_at, s.submission_id)), count(*)
           FROM control.submission_gate g JOIN control.submissions s USING (submission_id)
           JOIN control.submission_counts sc USING (submission_id)
           WHERE g.insurer_id = ? AND g.status IN (SELECT unnest(?)) AND s.ingested_at <= ?
           GROUP BY ALL""",
        [cfg.insurer_id, list(ADMITTED), first_ingested],
    ).fetchall()
    last_admitted = {rt: sid for rt, sid, _ in admitted}
    admitted_count = {rt: n for rt, _, n in admitted}
    manifests = {
        sid: (mf, me) for sid, mf, me in con.execute(
            "SELECT submission_id, manifest_file, manifest_error FROM control.submission_gate WHERE submission_id IN (SELECT unnest(?))",
            [order],
        ).fetchall()
    }
    facts = _facts(con, cfg.insurer_id, order + sorted(set(last_admitted.values())))
    record_findings = _record_findings(con, cfg, runner, order)

    # Drift compares with the last admitted submission, so a held one must not serve as the baseline
    # of the next: iterate until the set of failing submissions is stable (it settles in delivery order).
    failing = set(record_findings)
    parameters = _parameters(cfg)
    for _ in range(len(order) + 1):
        frame, info = _profiles(cfg, order, facts, last_admitted, failing, manifests, admitted_count)
        profile_failures = runner.run("submission", frame, parameters, PROFILE_INDEX)
        now_failing = set(record_findings) | {row["submission_id"] for f in profile_failures for row in f["unexpected"]}
        if now_failing == failing:
            break
        failing = now_failing
    else:  # pragma: no cover - the walk is ordered, so it settles within len(order) rounds
        raise GateError("submission gate did not settle")

    profile_findings: dict[str, list[dict]] = {}
    for failure in profile_failures:
        for row in failure["unexpected"]:
            column = failure["kwargs"]["column"]
            profile_findings.setdefault(row["submission_id"], []).append({
                "suite": f"submission {runner.versions['submission']}",
                "record_type": row["record_type"],
                "reason": failure["reason"],
                "expectation": failure["expectation"],
                "columns": failure["kwargs"],
                "describe": failure["describe"],
                "observed": _jsonable(row.get(column)),
                "threshold": _threshold(runner, failure, parameters),
            })

    decided_at = now()
    decisions = []
    for sid, source_file, _ in pending:
        findings = record_findings.get(sid, []) + profile_findings.get(sid, [])
        reasons = sorted({f["reason"] for f in findings})
        results = {
            "suite_versions": runner.versions,
            "thresholds": cfg.quality.model_dump(),
            "findings": findings,
            "profile": [v for (s, _), v in info.items() if s == sid],
        }
        decisions.append(Decision(sid, source_file, "held" if reasons else "passed", reasons, results))
    _record_decisions(con, decisions, decided_at)
    return decisions


def _threshold(runner: SuiteRunner, failure: dict, parameters: dict) -> dict:
    doc = runner.docs["submission"]
    for e in doc["expectations"]:
        if e["type"] == failure["expectation"] and e["kwargs"].get("column") == failure["kwargs"].get("column"):
            return {
                k: _jsonable(parameters.get(v["$PARAMETER"]) if isinstance(v, dict) else v)
                for k, v in e["kwargs"].items() if k in ("min_value", "max_value", "value_set")
            }
    return {}


def _record_decisions(con, decisions: list[Decision], at: datetime) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        for d in decisions:
            con.execute(
                """UPDATE control.submission_gate SET status = ?, reasons = ?, results = ?, evaluated_at = ?,
                   admitted_at = CASE WHEN ? = 'passed' THEN CAST(? AS TIMESTAMP) END, decided_by = 'gate', decided_at = ?
                   WHERE submission_id = ? AND status = 'pending'""",
                [d.status, d.reasons, json.dumps(d.results, default=_jsonable, ensure_ascii=False), at, d.status, at, at,
                 d.submission_id],
            )
            con.execute(
                "INSERT INTO control.submission_gate_log VALUES (?, ?, ?, ?, 'gate', ?)",
                [d.submission_id, at, d.status, d.reasons, None],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# --------------------------------------------------------------------------- operator decisions


def resolve_submission(con: duckdb.DuckDBPyConnection, prefix: str) -> str:
    """The full submission id for an id or an unambiguous prefix of at least 8 characters."""
    if len(prefix) < 8:
        raise ReviewError("give at least 8 characters of the submission id")
    matches = [r[0] for r in con.execute(
        "SELECT submission_id FROM control.submission_gate WHERE starts_with(submission_id, ?)", [prefix.lower()]
    ).fetchall()]
    if not matches:
        raise ReviewError(f"no loaded submission with id {prefix}")
    if len(matches) > 1:
        raise ReviewError(f"{prefix} is ambiguous: {len(matches)} submissions")
    return matches[0]


# Operator actions: the gate statuses each applies to. A rejection of an admitted submission is a
# revocation (`revoke` says so explicitly): its rows leave the marts and the next published version.
REVIEW_ACTIONS = {
    "release": ("held",),
    "reject": ("held", *ADMITTED),
    "revoke": ADMITTED,
}


def review(con: duckdb.DuckDBPyConnection, submission: str, action: str, actor: str, note: str) -> dict:
    """An operator releases (admits) a held submission, rejects a held or admitted one, or revokes an
    admitted one (never admitted again); recorded with who and why. The gate status of a rejected or
    revoked submission is `rejected`; the log says `revoked` when it had been admitted."""
    if action not in REVIEW_ACTIONS:
        raise ReviewError(f"unknown action {action!r} ({', '.join(REVIEW_ACTIONS)})")
    if not note or not note.strip():
        raise ReviewError("a note saying why is required")
    sid = resolve_submission(con, submission)
    status, insurer_id, source_file = con.execute(
        "SELECT g.status, g.insurer_id, s.source_file FROM control.submission_gate g JOIN control.submissions s USING (submission_id) "
        "WHERE submission_id = ?", [sid]
    ).fetchall()[0]
    if status not in REVIEW_ACTIONS[action]:
        allowed = " or ".join(REVIEW_ACTIONS[action])
        hint = {"release": "only a held submission can be released",
                "reject": "only a held or admitted submission can be rejected",
                "revoke": "only an admitted submission can be revoked (reject a held one)"}[action]
        raise ReviewError(f"{source_file} ({sid[:12]}) is {status}, not {allowed}: {hint}")
    new_status = "released" if action == "release" else "rejected"
    logged = "revoked" if status in ADMITTED else new_status
    at = now()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            """UPDATE control.submission_gate SET status = ?, admitted_at = CASE WHEN ? = 'released' THEN CAST(? AS TIMESTAMP) END,
               decided_by = ?, decided_at = ?, decision_note = ? WHERE submission_id = ?""",
            [new_status, new_status, at, actor, at, note.strip(), sid],
        )
        con.execute("INSERT INTO control.submission_gate_log VALUES (?, ?, ?, [], ?, ?)", [sid, at, logged, actor, note.strip()])
        reopened = _reopen_drift_holds(con, sid, insurer_id, at) if new_status == "released" else []
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {"submission_id": sid, "insurer_id": insurer_id, "source_file": source_file, "status": new_status,
            "logged": logged, "previous_status": status, "decided_by": actor,
            "decided_at": at.isoformat(timespec="seconds"), "reopened": reopened}


def _reopen_drift_holds(con: duckdb.DuckDBPyConnection, released: str, insurer_id: str, at: datetime) -> list[str]:
    """A released submission becomes the drift baseline of the insurer's later deliveries: the later
    ones held for drift alone were judged against an older baseline, so they return to `pending` and
    the next cycle's gate judges them again (in delivery order, against the released one)."""
    rows = con.execute(
        """SELECT g.submission_id, s.source_file FROM control.submission_gate g JOIN control.submissions s USING (submission_id)
           CROSS JOIN (SELECT ingested_at, submission_id FROM control.submissions WHERE submission_id = ?) r
           WHERE g.insurer_id = ? AND g.status = 'held' AND len(g.reasons) > 0
             AND list_bool_and(list_transform(g.reasons, lambda x: starts_with(x, 'DRIFT_')))
             AND (s.ingested_at > r.ingested_at OR (s.ingested_at = r.ingested_at AND s.submission_id > r.submission_id))
           ORDER BY s.ingested_at, s.submission_id""",
        [released, insurer_id],
    ).fetchall()
    note = f"re-evaluated: {released[:12]} was released and is the new drift baseline"
    for sid, _ in rows:
        con.execute(
            """UPDATE control.submission_gate SET status = 'pending', reasons = [], results = NULL, evaluated_at = NULL,
               admitted_at = NULL, decided_by = NULL, decided_at = NULL, decision_note = NULL WHERE submission_id = ?""",
            [sid],
        )
        con.execute("INSERT INTO control.submission_gate_log VALUES (?, ?, 'pending', [], 'gate', ?)", [sid, at, note])
    return [f for _, f in rows]


def gate_overview(con: duckdb.DuckDBPyConnection, status: str | None = None, insurer: str | None = None) -> list[dict]:
    rows = con.execute(
        """SELECT g.submission_id, g.insurer_id, s.source_file, g.status, g.reasons, g.evaluated_at, g.decided_by,
                  g.decision_note
           FROM control.submission_gate g JOIN control.submissions s USING (submission_id)
           WHERE (? IS NULL OR g.status = ?) AND (? IS NULL OR g.insurer_id = ?)
           ORDER BY g.insurer_id, s.ingested_at, s.source_file""",
        [status, status, insurer, insurer],
    ).fetchall()
    keys = ("submission_id", "insurer_id", "source_file", "status", "reasons", "evaluated_at", "decided_by", "decision_note")
    return [dict(zip(keys, r, strict=True)) for r in rows]


# --------------------------------------------------------------------------- sector-level holds


@dataclass(frozen=True)
class SectorTestFailure:
    """A node of a failed dbt build: a blocking test that failed (with the SQL of its failing rows), or
    any other node that errored."""

    name: str
    resource_type: str  # test | model | seed | unit_test | …
    status: str  # fail | error
    message: str
    failures: int | None = None
    compiled_code: str | None = None


@dataclass
class SectorVerdict:
    """What a failed build can be blamed on: per submission, the tests its rows fail; and the failures
    that name no holdable submission (each with why). Submissions are held only when there are none
    of the latter."""

    holds: dict[str, list[dict]] = field(default_factory=dict)
    unattributable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def attributable(self) -> bool:
        return bool(self.holds) and not self.unattributable


LINEAGE = ("insurer_id", "submission_id")


def released_after_sector_hold(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Submissions an operator released after a sector-test hold: the sector tests never hold them again."""
    return {r[0] for r in con.execute(
        "SELECT submission_id FROM control.submission_gate WHERE status = 'released' AND submission_id IN "
        "(SELECT submission_id FROM control.submission_gate_log WHERE actor = ? AND status = 'held')", [SECTOR_ACTOR]
    ).fetchall()}


def attribute_sector_failures(
    con: duckdb.DuckDBPyConnection, failures: list[SectorTestFailure], published: set[str]
) -> SectorVerdict:
    """Blame each failing test on the submissions of its failing rows (read-only: the test's own SQL,
    run again on the warehouse the build left). A failure is attributable when its rows carry
    insurer_id and submission_id and every row names an admitted submission that is not in the
    published version and was not released by an operator after an earlier sector-test hold.

    A test that fails on rows of most insurers at once is not one delivery's problem (a model, a macro
    or a seed is wrong): holding them all would publish an empty sector, so it is not attributed."""
    verdict = SectorVerdict()
    admitted = dict(con.execute(
        "SELECT submission_id, insurer_id FROM control.submission_gate WHERE status IN (SELECT unnest(?))", [list(ADMITTED)]
    ).fetchall())
    most_insurers = max(1, len(set(admitted.values())) // 2)
    released = released_after_sector_hold(con)
    for failure in failures:
        why = _unattributable(con, failure)
        if why:
            verdict.unattributable.append((failure.name, why))
            continue
        sql = failure.compiled_code
        rows = con.execute(f"SELECT submission_id, count(*) FROM (\n{sql}\n) AS failing GROUP BY ALL ORDER BY ALL").fetchall()
        sids = {sid for sid, _ in rows}
        problems = [
            (not rows, "its failing rows are gone when read again"),
            (None in sids, "failing rows without a submission_id"),
            (bool(sids & published), "rows of published submission(s) " + _short(sids & published)),
            (bool(sids & released), "rows of submission(s) released by an operator after a sector-test hold "
             + _short(sids & released)),
            (bool(sids - admitted.keys() - {None}),
             "rows of submission(s) no longer admitted " + _short(sids - admitted.keys() - {None})),
            (len({admitted[s] for s in sids if s in admitted}) > most_insurers,
             f"rows of {len({admitted[s] for s in sids if s in admitted})} insurers' submissions: not one delivery's problem"),
        ]
        blocking = [text for bad, text in problems if bad]
        if blocking:
            verdict.unattributable.append((failure.name, "; ".join(blocking)))
            continue
        for sid, n in rows:
            samples = con.execute(
                f"SELECT * EXCLUDE ({', '.join(LINEAGE)}) FROM (\n{sql}\n) AS failing WHERE submission_id = ? LIMIT ?",
                [sid, SAMPLES_PER_FINDING],
            )
            names = [d[0] for d in samples.description]
            verdict.holds.setdefault(sid, []).append({
                "test": failure.name,
                "failing_rows": n,
                "samples": [{k: _jsonable(v) for k, v in zip(names, r, strict=True) if k != "source_file"}
                            for r in samples.fetchall()],
            })
    return verdict


def _unattributable(con: duckdb.DuckDBPyConnection, failure: SectorTestFailure) -> str | None:
    if failure.resource_type != "test" or failure.status != "fail":
        first_line = (failure.message or "").strip().splitlines()[:1]
        return f"{failure.resource_type} {failure.status}" + (f": {first_line[0]}" if first_line else "")
    if not failure.compiled_code:
        return "no compiled SQL in the build's results"
    try:
        columns = {d[0] for d in con.execute(f"SELECT * FROM (\n{failure.compiled_code}\n) AS failing LIMIT 0").description}
    except duckdb.Error as exc:
        return f"its SQL cannot be read again ({type(exc).__name__})"
    if not set(LINEAGE) <= columns:
        return "its failing rows carry no insurer_id and submission_id (a test on an aggregate or a seed)"
    return None


def _short(ids: set[str]) -> str:
    return ", ".join(sorted(i[:12] for i in ids if i))


def hold_for_sector_tests(con: duckdb.DuckDBPyConnection, holds: dict[str, list[dict]]) -> list[dict]:
    """Hold admitted submissions whose rows fail blocking sector-level tests (reasons SECTOR_TEST:<test>,
    the tests, failing row counts and sample keys in `results.sector_tests`), logged with actor
    `sector_tests`. One transaction. An operator releases, rejects or revokes them as any held one."""
    at = now()
    held = []
    con.execute("BEGIN TRANSACTION")
    try:
        for sid, findings in sorted(holds.items()):
            rows = con.execute(
                "SELECT g.status, g.results, g.insurer_id, s.source_file FROM control.submission_gate g "
                "JOIN control.submissions s USING (submission_id) WHERE submission_id = ?", [sid]
            ).fetchall()
            if not rows or rows[0][0] not in ADMITTED:
                raise GateError(f"{sid[:12]} is not admitted: the sector tests cannot hold it")
            _, results, insurer_id, source_file = rows[0]
            reasons = sorted({f"{SECTOR_TEST}:{f['test']}" for f in findings})
            note = "failed blocking sector test(s): " + ", ".join(
                f"{f['test']} ({f['failing_rows']} row{'s' if f['failing_rows'] != 1 else ''})" for f in findings)
            results = (json.loads(results) if results else {}) | {
                "sector_tests": [{**f, "held_at": at.isoformat(timespec="seconds")} for f in findings]}
            con.execute(
                """UPDATE control.submission_gate SET status = 'held', reasons = ?, results = ?, admitted_at = NULL,
                   decided_by = ?, decided_at = ?, decision_note = ? WHERE submission_id = ?""",
                [reasons, json.dumps(results, default=_jsonable, ensure_ascii=False), SECTOR_ACTOR, at, note, sid],
            )
            con.execute("INSERT INTO control.submission_gate_log VALUES (?, ?, 'held', ?, ?, ?)",
                        [sid, at, reasons, SECTOR_ACTOR, note])
            held.append({"submission_id": sid, "insurer_id": insurer_id, "source_file": source_file,
                         "reasons": reasons, "note": note})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return held
