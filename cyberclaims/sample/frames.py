"""Frames of the simulated market: the draws rendered as canonical policy, incident and claim
valuation frames (insurer numbering, free text, currencies), plus the truth of insureds and events."""

from __future__ import annotations

import string
from collections.abc import Callable

import numpy as np
import polars as pl
import pyarrow as pa

from cyberclaims.ingestion.contract import FIELDS, MONEY_PRECISION, MONEY_SCALE, REVENUE_PRECISION
from cyberclaims.sample.calibration import (
    _CHUNK_ROWS,
    _CITIES,
    _CONTACT_SHARE,
    _CVES,
    _DESCRIPTIONS,
    _GIVEN_NAMES,
    _NAME_FIRST,
    _NAME_SECOND,
    _NAME_SUFFIX,
    _NAME_WORDS,
    _PILOT_ABBREVIATION,
    _REVENUE_GROWTH,
    _STATUS,
    _SURNAMES,
    _Event,
    _Market,
    _Reference,
)
from cyberclaims.sample.draws import _Claims, _day, _develop, _Incidents, _Insureds, _month_end, _month_of, _month_start, _Policies, _Window, _year_of

# --------------------------------------------------------------------------- frame building


_DTYPES: dict[str, pl.DataType] = {
    "identifier": pl.String(), "str": pl.String(), "code": pl.String(), "currency": pl.String(),
    "date": pl.Date(), "money": pl.Decimal(MONEY_PRECISION, MONEY_SCALE),
    "revenue": pl.Decimal(REVENUE_PRECISION, MONEY_SCALE), "int": pl.Int64(), "number": pl.Float64(),
    "bool": pl.Boolean(), "code_list": pl.List(pl.String), "str_list": pl.List(pl.String),
}


def schema(record_type: str) -> dict[str, pl.DataType]:
    """Columns and dtypes of a simulated policy / incident / claim_valuation frame, in order."""
    return {"insurer_id": pl.String(), "submission_month": pl.Date(),
            **{f.name: _DTYPES[f.kind] for f in FIELDS[record_type]}}


def _conform(columns: dict[str, pl.Series], record_type: str) -> pl.DataFrame:
    frame = pl.DataFrame([columns[name].alias(name) for name in schema(record_type)])
    if frame.schema != pl.Schema(schema(record_type)):
        raise AssertionError(f"{record_type} frame does not match its schema: {frame.schema}")
    return frame


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    return pl.from_arrow(pa.array(days.astype(np.int32), mask=null)).cast(pl.Date)


def _money(cents: np.ndarray, precision: int = MONEY_PRECISION) -> pl.Series:
    """Exact decimals from integer cents (no float round-trip), via a 128-bit arrow buffer."""
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension to 128 bits
    array = pa.Array.from_buffers(pa.decimal128(precision, MONEY_SCALE), len(cents), [None, pa.py_buffer(words)])
    return pl.from_arrow(array)


def _to_cents(yuan: np.ndarray, rate: np.ndarray) -> np.ndarray:
    return np.round(yuan * 100 / rate).astype(np.int64)


def _codes(codes: tuple[str, ...] | list[str], index: np.ndarray) -> pl.Series:
    return pl.Series(list(codes), dtype=pl.String).gather(index)


def _lists(keys: np.ndarray, decode: Callable[[int], list[str]]) -> pl.Series:
    distinct, inverse = np.unique(keys, return_inverse=True)
    return pl.Series([decode(int(k)) for k in distinct], dtype=pl.List(pl.String)).gather(inverse)


def _industry_codes(industry: np.ndarray) -> pl.Series:
    return pl.Series(industry, dtype=pl.Int64).cast(pl.String).str.zfill(4).set(pl.Series(industry < 0), None)


def _bits(codes: tuple[str, ...]) -> Callable[[int], list[str]]:
    return lambda mask: [c for i, c in enumerate(codes) if mask >> i & 1]


def _render_numbers(mk: _Market, kind: str, insurer: np.ndarray, year: np.ndarray, seq: np.ndarray) -> pl.Series:
    order = np.argsort(insurer, kind="stable")
    bounds = np.searchsorted(insurer[order], np.arange(len(mk.ids) + 1))
    frame = pl.DataFrame({"year": year[order], "seq": seq[order]})
    rendered = pl.concat([
        frame.slice(lo, hi - lo).select(_pattern_expr(patterns[kind])).to_series()
        for patterns, lo, hi in zip(mk.numbers, bounds[:-1], bounds[1:], strict=True)
    ])
    return rendered.gather(np.argsort(order)).alias(kind)


def _pattern_expr(pattern: str) -> pl.Expr:
    parts: list[pl.Expr] = []
    for literal, field, spec, _ in string.Formatter().parse(pattern):
        if literal:
            parts.append(pl.lit(literal))
        if field == "yyyy":
            parts.append(pl.col("year").cast(pl.String))
        elif field == "yy":
            parts.append((pl.col("year") % 100).cast(pl.String).str.zfill(2))
        elif field == "seq":
            parts.append(pl.col("seq").cast(pl.String).str.zfill(int(spec)))
        elif field is not None:
            raise ValueError(f"unknown field {field!r} in number pattern {pattern!r}")
    return pl.concat_str(parts)


def _insured_name(ins: _Insureds, ref: _Reference) -> pl.Series:
    words = [w for s in ref.sectors for w in _NAME_WORDS[s]]
    parts = ins.name_parts
    return pl.DataFrame([
        _codes([name for _, _, name in _CITIES], ins.city), _codes(list(_NAME_FIRST), parts[:, 0]),
        _codes(list(_NAME_SECOND), parts[:, 1]), _codes(words, ins.sector * 3 + parts[:, 2]),
        _codes([s for s, _ in _NAME_SUFFIX], parts[:, 3]),
    ]).select(pl.concat_str(pl.all())).to_series()


def _description(rng: np.random.Generator, ref: _Reference, mk: _Market, inc: _Incidents, insurer: np.ndarray,
                 events: tuple[_Event, ...]) -> pl.Series:
    n = len(inc.policy)
    english = mk.english[insurer].astype(np.int64)
    templates = [_DESCRIPTIONS[t][lang] for lang in (0, 1) for t in ref.incident_types]
    contact = rng.random(n) < _CONTACT_SHARE
    phone = 10_000_000_000 + rng.integers(3, 10, n) * 1_000_000_000 + rng.integers(0, 1_000_000_000, n)
    frame = pl.DataFrame([
        _codes(templates, inc.incident_type + english * len(ref.incident_types)).alias("text"),
        _codes([f"（{e.ref}）" for e in events] + [f" ({e.ref})" for e in events] + [""],
               np.where(inc.event >= 0, inc.event + english * len(events), 2 * len(events))).alias("event"),
        _codes(["；联系人 ", "; contact "], english).alias("lead"),
        _codes(list(_SURNAMES), rng.integers(0, len(_SURNAMES), n)).alias("surname"),
        _codes(list(_GIVEN_NAMES), rng.integers(0, len(_GIVEN_NAMES), n)).alias("given"),
        pl.Series("phone", phone),
        pl.Series("contact", contact),
    ])
    leak = pl.concat_str(pl.col("lead"), pl.col("surname"), pl.col("given"), pl.lit(" "),
                         pl.col("phone").cast(pl.String))
    return frame.select(pl.concat_str(
        pl.col("text"), pl.col("event"), pl.when(pl.col("contact")).then(leak).otherwise(pl.lit("")))
    ).to_series()


def _policy_frame(ref: _Reference, mk: _Market, ins: _Insureds, pol: _Policies, numbers: pl.Series,
                  insured_id: pl.Series, insured_name: pl.Series) -> pl.DataFrame:
    who = pol.insured
    month = _month_of(pol.inception)
    rate = ref.fx[pol.currency, month - ref.fx_first_month]
    revenue = np.round(ins.revenue[who] * _REVENUE_GROWTH ** pol.term, 2)
    pilot_year = ins.pilot_year[who]
    has_pilot = (pilot_year > 0) & (_year_of(pol.inception) >= pilot_year)
    pilot_code = pl.DataFrame({"year": pilot_year, "sector": _codes(
        [_PILOT_ABBREVIATION.get(s, "") for s in ref.sectors], ins.sector[who])}).select(
        pl.when(pl.Series(has_pilot)).then(pl.concat_str(pl.lit("PILOT-"), pl.col("year").cast(pl.String),
                                                         pl.lit("-"), pl.col("sector")))).to_series()
    score = ins.score[who]
    columns = {
        "insurer_id": _codes(mk.ids, pol.insurer),
        "submission_month": _dates(_month_start(month)),
        "policy_number": numbers,
        "insured_id": insured_id.gather(who),
        "insured_name": insured_name.gather(who),
        "industry_code": _industry_codes(ins.industry[who]),
        "sector_code": _codes(ref.sectors, ins.sector[who]),
        "region_code": pl.Series(ins.region[who]).cast(pl.String),
        "annual_revenue": _money(_to_cents(revenue, rate), REVENUE_PRECISION),
        "employee_count": pl.Series(ins.employees[who], dtype=pl.Int64),
        "product_type": _codes(ref.products, ins.product[who]),
        "coverage_sections": _lists(ins.sections[who], _bits(ref.sections)),
        "inception_date": _dates(pol.inception),
        "expiry_date": _dates(pol.expiry),
        "limit_amount": _money(_to_cents(pol.limit, rate)),
        "deductible": _money(_to_cents(ins.deductible[who], rate)),
        "written_premium": _money(_to_cents(pol.premium, rate)),
        "currency": _codes(ref.currencies, pol.currency),
        "is_standalone": pl.Series(ins.standalone[who]),
        "pilot_code": pilot_code,
        "risk_assessment_score": pl.Series(score, dtype=pl.Int64).set(pl.Series(ins.score_missing[who]), None),
    }
    return _conform(columns, "policy")


def _cve_list(key: int) -> list[str]:
    names = [c for c, _ in _CVES]
    if key == 0:
        return []
    first, second = (key - 1) % len(_CVES), (key - 1) // len(_CVES) - 1
    return [names[first]] + ([names[second]] if second >= 0 else [])


def _incident_frame(rng: np.random.Generator, ref: _Reference, mk: _Market, inc: _Incidents, pol: _Policies,
                    policy_numbers: pl.Series, incident_numbers: pl.Series, insured_id: pl.Series,
                    events: tuple[_Event, ...]) -> pl.DataFrame:
    insurer = pol.insurer[inc.policy]
    columns = {
        "insurer_id": _codes(mk.ids, insurer),
        "submission_month": _dates(_month_start(_month_of(inc.reported))),
        "incident_number": incident_numbers,
        "policy_number": policy_numbers.gather(inc.policy),
        "insured_id": insured_id.gather(pol.insured[inc.policy]),
        "occurred_date": _dates(inc.occurred),
        "discovered_date": _dates(inc.discovered),
        "reported_date": _dates(inc.reported),
        "resolved_date": _dates(inc.resolved, null=inc.resolved < 0),
        "incident_type": _codes(ref.incident_types, inc.incident_type),
        "attack_vector": _codes(ref.attack_vectors, inc.attack_vector),
        "cve_ids": _lists(inc.cve_key, _cve_list),
        "records_affected": pl.Series(inc.records, dtype=pl.Int64).set(pl.Series(inc.records < 0), None),
        "data_types": _lists(inc.data_types, _bits(ref.data_types)),
        "downtime_hours": pl.Series(inc.downtime, dtype=pl.Float64).fill_nan(None),
        # A trailing null entry for attritional incidents (event -1), so a window without events works too.
        "systemic_event_ref": _codes([e.ref for e in events] + [None], np.where(inc.event >= 0, inc.event, len(events))),
        "description": _description(rng, ref, mk, inc, insurer, events),
    }
    # Truth only, beside the contract's fields: which reports are one occurrence (a co-insured incident is
    # reported to each insurer, whose layouts may then say its dates differently, e.g. without the day).
    return _conform(columns, "incident").with_columns(pl.Series("occurrence_id", inc.occurrence, dtype=pl.Int64))


def _valuation_frame(rng: np.random.Generator, ref: _Reference, mk: _Market, win: _Window, clm: _Claims,
                     insurer: np.ndarray, currency: np.ndarray, policy: np.ndarray, claim_numbers: pl.Series,
                     incident_numbers: pl.Series, policy_numbers: pl.Series) -> pl.DataFrame:
    """Claims come ordered by insurer and claim number, so the developed rows are in frame order.

    Development runs in chunks of whole claims to bound the memory of its row-level temporaries.
    """
    first_phase, second_phase = clm.rows_per_claim(win.last_month)
    ends = np.cumsum(first_phase + second_phase)
    total = int(ends[-1]) if len(ends) else 0
    cuts = np.searchsorted(ends, np.arange(_CHUNK_ROWS, total, _CHUNK_ROWS)) + 1
    bounds = np.unique(np.r_[0, cuts, len(ends)])
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        val = _develop(rng, ref, win, clm.take(slice(lo, hi)), currency[lo:hi])
        claim = val.claim + lo
        columns = {
            "insurer_id": _codes(mk.ids, insurer[claim]),
            "submission_month": _dates(_month_start(val.month)),
            "claim_number": claim_numbers.gather(claim),
            "incident_number": incident_numbers.gather(clm.incident[claim]),
            "policy_number": policy_numbers.gather(policy[claim]),
            "coverage_section": _codes(ref.sections, clm.section[claim]),
            "status": _codes(_STATUS, val.status),
            "report_date": _dates(clm.report[claim]),
            "closed_date": _dates(val.closed, null=val.closed < 0),
            "valuation_date": _dates(_month_end(val.month)),
            "paid_indemnity": _money(val.paid_indemnity),
            "paid_expense": _money(val.paid_expense),
            "case_reserve": _money(val.case_reserve),
            "recoveries": _money(val.recoveries),
            "currency": _codes(ref.currencies, currency[claim]),
            "reported_incurred": _money(val.paid_indemnity + val.paid_expense + val.case_reserve - val.recoveries),
        }
        parts.append(_conform(columns, "claim_valuation"))
    if not parts:
        return pl.DataFrame(schema=schema("claim_valuation"))
    return pl.concat(parts, rechunk=False)


def _insured_frame(ref: _Reference, mk: _Market, ins: _Insureds, pol: _Policies, insured_id: pl.Series,
                   insured_name: pl.Series) -> pl.DataFrame:
    first_inception = _month_start(ins.start_month) + ins.start_day - 1
    return pl.DataFrame([
        insured_id.alias("insured_id"),
        insured_name.alias("insured_name"),
        _codes(ref.sectors, ins.sector).alias("sector_code"),
        _industry_codes(ins.industry).alias("industry_code"),
        pl.Series("region_code", ins.region).cast(pl.String),
        _money(np.round(ins.revenue * 100).astype(np.int64), REVENUE_PRECISION).alias("annual_revenue_cny"),
        pl.Series("employee_count", ins.employees, dtype=pl.Int64),
        pl.Series("risk_assessment_score", ins.score, dtype=pl.Int64),
        pl.Series("score_reported", ~ins.score_missing),
        pl.Series("annual_frequency", ins.frequency, dtype=pl.Float64),
        _codes(mk.ids, ins.insurer).alias("lead_insurer"),
        _codes(mk.ids, np.maximum(ins.co_insurer, 0)).set(pl.Series(ins.co_insurer < 0), None).alias("co_insurer"),
        _dates(first_inception).alias("first_inception_date"),
        pl.Series("n_terms", ins.n_terms, dtype=pl.Int64),
        pl.Series("n_policies", np.bincount(pol.insured, minlength=len(ins.sector)), dtype=pl.Int64),
    ])


def _event_frame(events: tuple[_Event, ...], incidents: pl.DataFrame) -> pl.DataFrame:
    hits = (incidents.filter(pl.col("systemic_event_ref").is_not_null())
            .group_by("systemic_event_ref")
            .agg(pl.col("insured_id").n_unique().alias("n_insureds_hit"),
                 pl.col("insurer_id").n_unique().alias("n_insurers"),
                 pl.len().alias("n_incidents")))
    described = pl.DataFrame({
        "systemic_event_ref": [e.ref for e in events],
        "event_name": [e.name for e in events],
        "incident_type": [e.incident_type for e in events],
        "attack_vector": [e.attack_vector for e in events],
        "start_date": _dates(np.array([_day(e.start) for e in events], dtype=np.int64)),
    }, schema_overrides={c: pl.String for c in ("systemic_event_ref", "event_name", "incident_type", "attack_vector")})
    return (described.join(hits, on="systemic_event_ref", how="left")
            .with_columns(pl.col("n_insureds_hit", "n_insurers", "n_incidents").fill_null(0).cast(pl.Int64))
            .sort("start_date"))
