"""Random draws of the simulated market: insureds, policies, incidents, claims and their monthly
development, vectorized over rows, all from the one generator `market.simulate_market` passes in."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import polars as pl

from cyberclaims.ingestion.pseudonymize import USCC_CHARSET, uscc_check_values
from cyberclaims.sample.calibration import (
    _BASE_FREQUENCY,
    _BOOK_GROWTH,
    _CITIES,
    _CLOSED_NO_PAYMENT,
    _CLOSED_PAID,
    _CO_INSURED_SHARE,
    _CO_INSURER_PREMIUM_SHARE,
    _CVE_CHAINED,
    _CVE_NAMED,
    _CVES,
    _DATA_TYPE_PROBABILITY,
    _DEDUCTIBLE_SHARE,
    _DENIED,
    _DENIED_STATUS,
    _DOWNTIME_UNKNOWN,
    _EVENTS,
    _INCIDENT_MIX,
    _INCIDENT_PROFILE,
    _LIMIT_LADDER,
    _MAX_SECTIONS,
    _MAX_SETTLEMENT_MONTHS,
    _NAME_FIRST,
    _NAME_SECOND,
    _NAME_SUFFIX,
    _NEW_BUSINESS,
    _NO_DATA,
    _NO_PAYMENT,
    _OPEN,
    _PAYMENT_SHAPE,
    _PILOT_SHARE,
    _PREMIUM_AT_1M,
    _PRODUCTS,
    _RATE_TREND,
    _RECOVERY,
    _RENEWAL_RATE,
    _REOPEN,
    _REOPENED,
    _SECOND_CLAIM,
    _SECTION_AFFINITY,
    _SECTION_BASE_AFFINITY,
    _SECTION_SEVERITY,
    _SECTOR_DATA_TYPES,
    _SECTOR_INCIDENT_TILT,
    _SECTOR_PROFILE,
    _SEVERITY_MEDIAN,
    _SEVERITY_SIGMA,
    _TAIL_ALPHA,
    _TAIL_SHARE,
    _TAIL_THRESHOLD,
    _TECH_PRODUCT_TILT,
    _WITHDRAWN,
    _WITHDRAWN_STATUS,
    MarketParams,
    _Event,
    _Market,
    _month_index,
    _Reference,
)

# --------------------------------------------------------------------------- unified social credit code

_ORG_SPACE = 31**9  # nine base-31 characters after '91' and the region code
_MAX_USCC_BATCH = 2**25  # keeps the affine serial map below 2**63


def make_uscc(region_codes: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Valid, pairwise distinct codes '91' + 6-digit region + 9 characters + check, one per region code.

    Distinctness does not rely on luck: the nine-character organisation part is an affine
    bijection of a shuffled row number modulo 31**9.
    """
    n = len(region_codes)
    if n > _MAX_USCC_BATCH:
        raise ValueError(f"at most {_MAX_USCC_BATCH} codes per call, got {n}")
    multiplier = int(rng.integers(2**36, 2**38))
    multiplier += multiplier % 31 == 0  # coprime with 31**9, so the map is a bijection
    serial = (rng.permutation(n).astype(np.int64) * multiplier + int(rng.integers(0, _ORG_SPACE))) % _ORG_SPACE
    values = np.empty((n, 18), dtype=np.int64)
    values[:, 0], values[:, 1] = 9, 1  # registered by the market regulator; enterprise
    region = np.asarray(region_codes, dtype=np.int64)
    for i in range(6):
        values[:, 2 + i] = region // 10 ** (5 - i) % 10
    for i in range(9):
        values[:, 8 + i] = serial // 31 ** (8 - i) % 31
    values[:, 17] = uscc_check_values(values[:, :17])
    chars = np.frombuffer(USCC_CHARSET.encode(), dtype=np.uint8)[values]
    return pl.Series(np.ascontiguousarray(chars).view("S18").ravel()).cast(pl.String)


# --------------------------------------------------------------------------- calendar helpers
# Months are counted from 1970-01 and days from 1970-01-01, both as int64.


def _month_start(month: np.ndarray) -> np.ndarray:
    return np.asarray(month, dtype=np.int64).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _month_end(month: np.ndarray) -> np.ndarray:
    return _month_start(np.asarray(month) + 1) - 1


def _month_of(day: np.ndarray) -> np.ndarray:
    return np.asarray(day, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _year_of(day: np.ndarray) -> np.ndarray:
    return np.asarray(day, dtype=np.int64).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


@dataclass(frozen=True)
class _Window:
    first_month: int
    last_month: int
    cutoff: int  # last day of last_month

    @classmethod
    def of(cls, params: MarketParams, ref: _Reference) -> _Window:
        first, last = _month_index(params.first_month), _month_index(params.last_month)
        if last < first:
            raise ValueError(f"last_month {params.last_month} precedes first_month {params.first_month}")
        fx_last = ref.fx_first_month + ref.fx.shape[1] - 1
        if first < ref.fx_first_month or last > fx_last:
            raise ValueError("the simulation window must lie within the months of fx_rates_monthly.csv")
        return cls(first, last, int(_month_end(np.array(last))))


# --------------------------------------------------------------------------- sampling helpers


def _choice(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n category indices drawn with the given (unnormalized) weights."""
    cdf = np.cumsum(weights, dtype=np.float64)
    return np.searchsorted(cdf / cdf[-1], rng.random(n), side="right")


def _categorical(rng: np.random.Generator, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One category per element, drawn with the weights of row `table[rows[i]]`.

    Loops over the (few) rows of the table rather than materializing an n × categories matrix.
    """
    cdf = np.cumsum(table, axis=1, dtype=np.float64)
    cdf /= cdf[:, -1:]
    u = rng.random(len(rows))
    out = np.empty(len(rows), dtype=np.int64)
    for r in range(len(table)):
        members = rows == r
        out[members] = np.searchsorted(cdf[r], u[members], side="right")
    return out


def _profile_array(ref: _Reference, attribute: str) -> np.ndarray:
    """One incident-profile attribute per incident type, in seed order."""
    return np.array([getattr(_INCIDENT_PROFILE[t], attribute) for t in ref.incident_types], dtype=np.float64)


def _weights(table: dict[str, float], codes: tuple[str, ...], default: float = 0.0) -> np.ndarray:
    return np.array([table.get(c, default) for c in codes], dtype=np.float64)


def _lognormal_days(rng: np.random.Generator, median: np.ndarray, sigma: np.ndarray, cap: int) -> np.ndarray:
    return np.minimum(np.floor(median * np.exp(sigma * rng.standard_normal(len(median)))), cap).astype(np.int64)


def _group_offsets(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows repeated `counts` times: (owner index per row, position of the row within its owner)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    position = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, position


def _sequence_within(group: np.ndarray, *order_keys: np.ndarray) -> np.ndarray:
    """1-based sequence number of each element within its group, ordered by the keys (first key most significant)."""
    order = np.lexsort((*reversed(order_keys), group))
    sorted_group = group[order]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    run_start = np.repeat(first, np.diff(np.r_[first, len(group)]))
    seq = np.empty(len(group), dtype=np.int64)
    seq[order] = np.arange(len(group)) - run_start + 1
    return seq


# --------------------------------------------------------------------------- insureds


@dataclass
class _Insureds:
    sector: np.ndarray
    city: np.ndarray
    region: np.ndarray  # 6-digit GB/T 2260 code
    industry: np.ndarray  # 4-digit GB/T 4754 class, -1 where no division maps to the sector
    revenue: np.ndarray  # yuan, at the first policy term
    employees: np.ndarray
    score: np.ndarray  # pre-bind security score; the insurer does not see it where score_missing
    score_missing: np.ndarray
    frequency: np.ndarray  # expected incidents per policy-year
    insurer: np.ndarray
    co_insurer: np.ndarray  # -1 unless a second insurer covers the risk concurrently
    start_month: np.ndarray
    start_day: np.ndarray  # day of month of inception, kept at renewal
    n_terms: np.ndarray
    product: np.ndarray
    sections: np.ndarray  # bitmask over coverage sections in seed order
    limit: np.ndarray  # yuan
    co_limit: np.ndarray  # yuan, the co-insurer's limit
    deductible: np.ndarray  # yuan
    currency_draw: np.ndarray  # uniform draw that picks a policy's currency from its insurer's currency shares
    standalone: np.ndarray
    pilot_year: np.ndarray  # 0 outside the pilot
    name_parts: np.ndarray  # [n, 4]: first syllable, second syllable, business word, legal form




def _draw_insureds(rng: np.random.Generator, p: MarketParams, ref: _Reference, win: _Window,
                   mk: _Market) -> _Insureds:
    n = p.n_insureds
    n_sectors = len(ref.sectors)
    profile = np.array([_SECTOR_PROFILE[s] for s in ref.sectors])
    sector = _choice(rng, profile[:, 0], n)
    insurer = _choice(rng, mk.share, n)

    city = _categorical(rng, mk.city_weight, insurer)
    city_prefix = np.array([int(prov + code) for prov, code, _ in _CITIES])
    region = city_prefix[city] * 100 + rng.integers(1, 10, n)

    industry = np.full(n, -1, dtype=np.int64)
    for s in range(n_sectors):
        divisions = ref.sector_divisions[s]
        members = np.flatnonzero(sector == s)
        if len(divisions) and len(members):
            division = divisions[rng.integers(0, len(divisions), len(members))]
            industry[members] = division * 100 + rng.integers(1, 5, len(members)) * 10 + rng.integers(0, 10, len(members))

    revenue = np.round(profile[sector, 1] * np.exp(1.5 * rng.standard_normal(n)), 2).clip(1e6)
    employees = np.maximum(np.round(revenue / 1e6 * np.exp(0.6 * rng.standard_normal(n))), 5).astype(np.int64)
    score = np.clip(np.round(65 + 15 * rng.standard_normal(n)), 5, 99).astype(np.int64)
    score_missing = rng.random(n) < 0.10
    size_factor = np.clip((revenue / 1e8) ** 0.2, 0.5, 3.0)
    frequency = (_BASE_FREQUENCY * profile[sector, 2] * size_factor * np.exp(0.025 * (65 - score))
                 * p.frequency_scale)

    # The first underwriting year holds the existing book; later months add new business.
    n_months = win.last_month - win.first_month + 1
    year = np.arange(n_months) // 12
    month_weight = np.where(year == 0, 1.0, _NEW_BUSINESS * _BOOK_GROWTH ** (year - 1.0))
    start_month = win.first_month + _choice(rng, month_weight, n)
    start_day = rng.integers(1, 29, n)
    renewals_until_lapse = rng.geometric(1 - _RENEWAL_RATE, n)
    n_terms = np.minimum(renewals_until_lapse, (win.last_month - start_month) // 12 + 1)

    # A co-insurer is any other insurer of the market (none in a market of one).
    co_insured = rng.random(n) < _CO_INSURED_SHARE
    n_insurers = len(mk.ids)
    co_insurer = (np.where(co_insured, (insurer + rng.integers(1, n_insurers, n)) % n_insurers, -1)
                  if n_insurers > 1 else np.full(n, -1, dtype=np.int64))

    product_weight = np.tile(_weights({k: v[0] for k, v in _PRODUCTS.items()}, ref.products), (n_sectors, 1))
    tech = [ref.products.index(c) for c in ("it_product_liability", "security_product", "security_services_pl")]
    product_weight[ref.sectors.index("telecom_internet"), tech] *= _TECH_PRODUCT_TILT
    product = _categorical(rng, product_weight, sector)
    sections = np.zeros(n, dtype=np.int64)
    for k, code in enumerate(ref.products):
        _, core, optional = _PRODUCTS[code]
        members = np.flatnonzero(product == k)
        size = min(_MAX_SECTIONS, len(core) + len(optional))
        n_optional = rng.integers(0, size - len(core) + 1, len(members))
        # A random priority per optional section; each insured takes its n_optional best.
        rank = np.argsort(np.argsort(rng.random((len(members), len(optional))), axis=1), axis=1)
        bits = sum(1 << ref.sections.index(s) for s in core) + np.zeros(len(members), dtype=np.int64)
        for j, s in enumerate(optional):
            bits |= np.where(rank[:, j] < n_optional, 1 << ref.sections.index(s), 0)
        sections[members] = bits

    def limit_index() -> np.ndarray:
        raw = 1.3 * (np.log10(revenue) - 7.3) + 1.5 + 0.8 * rng.standard_normal(n)
        return np.clip(np.round(raw), 0, len(_LIMIT_LADDER) - 1).astype(np.int64)

    limit = _LIMIT_LADDER[limit_index()]
    co_limit = _LIMIT_LADDER[limit_index()]
    deductible = np.where(rng.random(n) < 0.1, 0.0,
                          np.round(limit * _DEDUCTIBLE_SHARE[rng.integers(0, len(_DEDUCTIBLE_SHARE), n)], -3))
    currency_draw = rng.random(n)
    standalone = rng.random(n) < 0.9
    in_pilot = ref.is_pilot[sector] & (rng.random(n) < _PILOT_SHARE)
    pilot_year = np.where(in_pilot, np.where(rng.random(n) < 0.4, 2023, 2024), 0)

    suffix = _choice(rng, np.array([w for _, w in _NAME_SUFFIX]), n)
    name_parts = np.column_stack([
        rng.integers(0, len(_NAME_FIRST), n), rng.integers(0, len(_NAME_SECOND), n),
        rng.integers(0, 3, n), suffix,
    ])
    return _Insureds(
        sector=sector, city=city, region=region, industry=industry, revenue=revenue, employees=employees,
        score=score, score_missing=score_missing, frequency=frequency, insurer=insurer, co_insurer=co_insurer,
        start_month=start_month, start_day=start_day, n_terms=n_terms, product=product, sections=sections,
        limit=limit, co_limit=co_limit, deductible=deductible, currency_draw=currency_draw,
        standalone=standalone, pilot_year=pilot_year, name_parts=name_parts,
    )


# --------------------------------------------------------------------------- policies


@dataclass
class _Policies:
    insured: np.ndarray
    insurer: np.ndarray
    term: np.ndarray  # 0 for the first term, +1 per renewal
    inception: np.ndarray  # day
    expiry: np.ndarray  # day
    limit: np.ndarray  # yuan
    premium: np.ndarray  # yuan
    currency: np.ndarray
    co_policy: np.ndarray  # for a lead policy: row of the co-insurer's concurrent policy, else -1
    is_lead: np.ndarray


def _draw_policies(rng: np.random.Generator, ref: _Reference, ins: _Insureds, win: _Window,
                   mk: _Market) -> _Policies:
    """Lead terms of every insured plus the co-insurers' concurrent terms, ordered by insurer, inception, insured."""
    insured, term = _group_offsets(ins.n_terms)
    inception_month = ins.start_month[insured] + 12 * term
    day_offset = ins.start_day[insured] - 1
    inception = _month_start(inception_month) + day_offset
    expiry = _month_start(inception_month + 12) + day_offset - 1
    n_lead = len(insured)

    co_rows = np.flatnonzero(ins.co_insurer[insured] >= 0)
    all_rows = np.r_[np.arange(n_lead), co_rows]
    is_lead = np.arange(len(all_rows)) < n_lead
    insured_all = insured[all_rows]
    insurer = np.where(is_lead, ins.insurer[insured_all], ins.co_insurer[insured_all])
    limit = np.where(is_lead, ins.limit[insured_all], ins.co_limit[insured_all])
    term_all = term[all_rows]

    known_score = np.where(ins.score_missing, 65, ins.score)[insured_all]
    sector_rate = np.array([_SECTOR_PROFILE[s][2] for s in ref.sectors]) ** 0.8
    premium = (_PREMIUM_AT_1M * (limit / 1e6) ** 0.65 * sector_rate[ins.sector[insured_all]]
               * np.clip((ins.revenue[insured_all] / 1e8) ** 0.1, 0.7, 1.5)
               * np.exp(0.012 * (65 - known_score)) * np.exp(0.2 * rng.standard_normal(len(all_rows)))
               * _RATE_TREND ** ((inception_month[all_rows] - win.first_month) // 12)
               * np.where(is_lead, 1.0, _CO_INSURER_PREMIUM_SHARE))
    co_policy = np.full(len(all_rows), -1, dtype=np.int64)
    co_policy[co_rows] = np.arange(n_lead, len(all_rows))

    order = np.lexsort((insured_all, inception[all_rows], insurer))
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    co_policy = np.where(co_policy >= 0, position[np.maximum(co_policy, 0)], -1)
    return _Policies(
        insured=insured_all[order], insurer=insurer[order], term=term_all[order],
        inception=inception[all_rows][order], expiry=expiry[all_rows][order], limit=limit[order],
        premium=np.round(premium)[order],
        currency=mk.currency_of(insurer, ins.currency_draw[insured_all])[order],
        co_policy=co_policy[order], is_lead=is_lead[order],
    )


# --------------------------------------------------------------------------- incidents


@dataclass
class _Incidents:
    """One row per incident as reported by one insurer (co-insured incidents appear once per insurer),
    ordered by insurer, reported, occurred, policy."""

    policy: np.ndarray
    occurred: np.ndarray
    discovered: np.ndarray
    reported: np.ndarray
    resolved: np.ndarray  # -1 while unresolved at the cut-off
    incident_type: np.ndarray
    attack_vector: np.ndarray
    cve_key: np.ndarray  # 0 none; else 1 + first CVE + (1 + second CVE) * len(_CVES)
    records: np.ndarray  # -1 where no records were stolen
    data_types: np.ndarray  # bitmask over data types in seed order
    downtime: np.ndarray  # hours, NaN when unknown
    event: np.ndarray  # index into the events inside the window, -1 for attritional incidents
    occurrence: np.ndarray  # the occurrence reported: equal for each insurer's report of a co-insured incident


def _events_in_window(win: _Window) -> tuple[_Event, ...]:
    return tuple(e for e in _EVENTS
                 if _month_start(np.array(win.first_month)) <= _day(e.start) <= win.cutoff)


def _day(iso: str) -> int:
    return int(np.datetime64(iso, "D").astype(np.int64))


def _draw_incidents(rng: np.random.Generator, p: MarketParams, ref: _Reference, win: _Window,
                    ins: _Insureds, pol: _Policies) -> _Incidents:
    lead = np.flatnonzero(pol.is_lead)
    counts = rng.poisson(ins.frequency[pol.insured[lead]])
    base_policy = lead[np.repeat(np.arange(len(lead)), counts)]
    term_days = pol.expiry[base_policy] - pol.inception[base_policy] + 1
    occurred = pol.inception[base_policy] + np.floor(rng.random(len(base_policy)) * term_days).astype(np.int64)

    tilt = np.array([[_SECTOR_INCIDENT_TILT.get(s, {}).get(t, 1.0) for t in ref.incident_types] for s in ref.sectors])
    mix = _weights(_INCIDENT_MIX, ref.incident_types) * tilt
    incident_type = _categorical(rng, mix, ins.sector[pol.insured[base_policy]])
    event = np.full(len(base_policy), -1, dtype=np.int64)

    # Systemic events: many in-force insureds hit within days, whatever insurer covers them.
    events = _events_in_window(win)
    parts = [(base_policy, occurred, incident_type, event)]
    for k, e in enumerate(events):
        start = _day(e.start)
        in_force = lead[(pol.inception[lead] <= start) & (pol.expiry[lead] >= start)]
        hit = in_force[rng.random(len(in_force)) < min(e.hit_rate * p.frequency_scale, 1.0)]
        when = np.minimum(start + rng.integers(0, e.spread_days, len(hit)), pol.expiry[hit])
        parts.append((hit, when, np.full(len(hit), ref.incident_types.index(e.incident_type)),
                      np.full(len(hit), k)))
    base_policy, occurred, incident_type, event = (np.concatenate(a) for a in zip(*parts, strict=True))
    n = len(base_policy)

    vector_weights = np.array([_weights(_INCIDENT_PROFILE[t].vectors, ref.attack_vectors) for t in ref.incident_types])
    discovery_median = _profile_array(ref, "discovery_days")
    discovery_sigma = _profile_array(ref, "discovery_sigma")
    breach_share = _profile_array(ref, "breach_share")
    downtime_median = _profile_array(ref, "downtime_hours")
    attack_vector = _categorical(rng, vector_weights, incident_type)
    systemic = event >= 0
    # Event tables carry a trailing dummy entry that attritional incidents (event -1) index harmlessly.
    event_vector = np.array([ref.attack_vectors.index(e.attack_vector) for e in events] + [0])
    attack_vector = np.where(systemic, event_vector[event], attack_vector)

    discovered = occurred + _lognormal_days(rng, discovery_median[incident_type], discovery_sigma[incident_type], 1500)
    resolution = _lognormal_days(rng, np.full(n, 30.0), np.ones(n), 1000)

    cve_years = np.array([y for _, y in _CVES])
    eligible = np.searchsorted(cve_years, _year_of(occurred), side="right")
    exploit = attack_vector == ref.attack_vectors.index("vulnerability_exploit")
    named = exploit & (rng.random(n) < _CVE_NAMED) & (eligible > 0)
    first_cve = np.floor(rng.random(n) * eligible).astype(np.int64)
    second_cve = np.floor(rng.random(n) * eligible).astype(np.int64)
    chained = named & (rng.random(n) < _CVE_CHAINED) & (second_cve != first_cve)
    cve_key = np.where(named, 1 + first_cve + np.where(chained, (1 + second_cve) * len(_CVES), 0), 0)
    cve_of_event = np.array([[c for c, _ in _CVES].index(e.ref) + 1 if e.is_cve else 0 for e in events] + [0])
    cve_key = np.where(systemic, cve_of_event[event], cve_key)

    sector = ins.sector[pol.insured[base_policy]]
    breached = rng.random(n) < breach_share[incident_type]
    size = (ins.revenue[pol.insured[base_policy]] / 1e8) ** 0.3
    records = np.where(breached, np.ceil(np.minimum(3000 * size * np.exp(2.2 * rng.standard_normal(n)), 1e9)), -1)
    type_probability = np.array([[_SECTOR_DATA_TYPES.get(s, {}).get(d, _DATA_TYPE_PROBABILITY.get(d, 0.0))
                                  for d in ref.data_types] for s in ref.sectors])
    stolen = rng.random((n, len(ref.data_types))) < type_probability[sector]
    stolen_mask = (stolen * (1 << np.arange(len(ref.data_types)))).sum(axis=1)
    stolen_mask = np.where(stolen_mask == 0, 1 << ref.data_types.index("PII"), stolen_mask)
    data_types = np.where(breached, stolen_mask, 1 << ref.data_types.index(_NO_DATA))
    median_hours = downtime_median[incident_type]
    downtime = np.where(median_hours > 0, np.round(median_hours * np.exp(rng.standard_normal(n)), 1), 0.0)
    downtime = np.where(rng.random(n) < _DOWNTIME_UNKNOWN, np.nan, downtime)

    # A co-insured incident is reported to both insurers, each on its own timetable.
    source = np.r_[np.arange(n), np.flatnonzero(pol.co_policy[base_policy] >= 0)]
    policy = np.where(np.arange(len(source)) < n, base_policy[source], pol.co_policy[base_policy[source]])
    reported = discovered[source] + _lognormal_days(rng, np.full(len(source), 3.0), np.ones(len(source)), 720)
    resolved = np.maximum(discovered[source] + resolution[source], reported)
    resolved = np.where(resolved <= win.cutoff, resolved, -1)

    keep = reported <= win.cutoff
    source, policy, reported, resolved = source[keep], policy[keep], reported[keep], resolved[keep]
    order = np.lexsort((policy, occurred[source], reported, pol.insurer[policy]))
    source, policy, reported, resolved = source[order], policy[order], reported[order], resolved[order]
    return _Incidents(
        policy=policy, occurred=occurred[source], discovered=discovered[source], reported=reported,
        resolved=resolved, incident_type=incident_type[source], attack_vector=attack_vector[source],
        cve_key=cve_key[source], records=records[source].astype(np.int64), data_types=data_types[source],
        downtime=downtime[source], event=event[source], occurrence=source,
    )


# --------------------------------------------------------------------------- claims


@dataclass
class _Claims:
    incident: np.ndarray
    section: np.ndarray
    report: np.ndarray  # day
    close_month: np.ndarray
    close_day: np.ndarray
    status: np.ndarray  # status once closed
    indemnity: np.ndarray  # yuan paid by the first closure
    expense: np.ndarray  # yuan of ALAE by the first closure
    recovery: np.ndarray  # yuan recovered at the first closure
    reserve_basis: np.ndarray  # yuan the adjuster is ultimately heading for
    reserve_bias: np.ndarray  # initial over (>1) or under (<1) reserving, fading as the claim matures
    reopen_month: np.ndarray  # -1 if never reopened
    close2_month: np.ndarray
    close2_day: np.ndarray
    extra_indemnity: np.ndarray  # yuan paid after reopening
    extra_expense: np.ndarray

    def take(self, index: np.ndarray | slice) -> _Claims:
        return _Claims(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def rows_per_claim(self, last_month: int) -> tuple[np.ndarray, np.ndarray]:
        """Valuation rows before and after reopening, each cut at last_month."""
        report_month = _month_of(self.report)
        first_phase = np.minimum(self.close_month, last_month) - report_month + 1
        reopened = (self.reopen_month >= 0) & (self.reopen_month <= last_month)
        second_phase = np.where(reopened, np.minimum(self.close2_month, last_month) - self.reopen_month + 1, 0)
        return first_phase, second_phase


def _draw_claims(rng: np.random.Generator, ref: _Reference, win: _Window, ins: _Insureds, pol: _Policies,
                 inc: _Incidents) -> _Claims:
    claim_share = _profile_array(ref, "claim_share")
    n_inc = len(inc.policy)
    per_incident = (rng.random(n_inc) < claim_share[inc.incident_type]) * (1 + (rng.random(n_inc) < _SECOND_CLAIM))
    incident, order = _group_offsets(per_incident)
    n = len(incident)
    policy = inc.policy[incident]
    itype = inc.incident_type[incident]

    affinity = np.array([[_SECTION_AFFINITY[t].get(s, _SECTION_BASE_AFFINITY.get(s, 0.2)) for s in ref.sections]
                         for t in ref.incident_types])
    covered = (ins.sections[pol.insured[policy]][:, None] >> np.arange(len(ref.sections))) & 1
    # Gumbel-max draws one covered section per claim, weighted by affinity; the second claim of an
    # incident excludes the section of the first (its predecessor row).
    with np.errstate(divide="ignore"):
        log_weight = np.log(affinity[itype] * covered)
    section = np.empty(n, dtype=np.int64)
    for k in (0, 1):
        rows = np.flatnonzero(order == k)
        if k == 1:
            log_weight[rows, section[rows - 1]] = -np.inf
        gumbel = -np.log(-np.log(rng.random((len(rows), len(ref.sections)))))
        section[rows] = np.argmax(log_weight[rows] + gumbel, axis=1)

    first_lag = np.where(rng.random(n) < 0.6, 0, rng.geometric(0.1, n))
    later_lag = np.floor(rng.exponential(30.0, n)).astype(np.int64)
    report = inc.reported[incident] + np.where(order == 0, first_lag, later_lag)
    keep = report <= win.cutoff
    incident, order, policy, itype, section, report = (
        a[keep] for a in (incident, order, policy, itype, section, report))
    n = len(incident)

    severity_factor = _profile_array(ref, "severity")
    section_factor = _weights(_SECTION_SEVERITY, ref.sections)
    body = _SEVERITY_MEDIAN * np.exp(_SEVERITY_SIGMA * rng.standard_normal(n))
    tail = _TAIL_THRESHOLD * rng.random(n) ** (-1 / _TAIL_ALPHA)
    ground_up = (np.where(rng.random(n) < _TAIL_SHARE, tail, body)
                 * np.clip((ins.revenue[pol.insured[policy]] / 1e8) ** 0.25, 0.4, 4.0)
                 * severity_factor[itype] * section_factor[section] * np.where(order == 0, 1.0, 0.6))
    net = np.round(np.maximum(np.minimum(ground_up, pol.limit[policy]) - ins.deductible[pol.insured[policy]], 0), 2)

    u = rng.random(n)
    status = np.select(
        [u < _DENIED, u < _DENIED + _WITHDRAWN, (u < _DENIED + _WITHDRAWN + _NO_PAYMENT) | (net == 0)],
        [_DENIED_STATUS, _WITHDRAWN_STATUS, _CLOSED_NO_PAYMENT], _CLOSED_PAID)
    paid = status == _CLOSED_PAID
    indemnity = np.where(paid, net, 0.0)

    # Bigger claims take longer to settle; claims closed without payment settle quickly.
    median_months = np.where(paid, 8.0 * (np.maximum(indemnity, 1e3) / 1e5) ** 0.15,
                             np.where(status == _CLOSED_NO_PAYMENT, 3.0, 2.0))
    settle = np.clip(np.round(median_months * np.exp(0.6 * rng.standard_normal(n))), 0, _MAX_SETTLEMENT_MONTHS)
    report_month = _month_of(report)
    close_month = report_month + settle.astype(np.int64)
    close_day = _random_day_in(rng, close_month, earliest=report)

    expense = np.round(np.select(
        [paid, status == _CLOSED_NO_PAYMENT, status == _DENIED_STATUS],
        [indemnity * rng.uniform(0.10, 0.20, n) + 3000 * np.exp(0.5 * rng.standard_normal(n)),
         8000 * np.exp(0.8 * rng.standard_normal(n)), 3000 * np.exp(0.8 * rng.standard_normal(n))],
        np.where(rng.random(n) < 0.5, 0.0, 1000 * np.exp(0.5 * rng.standard_normal(n)))), 2)
    recovery = np.where(paid & (rng.random(n) < _RECOVERY), np.round(indemnity * rng.uniform(0.05, 0.3, n), 2), 0.0)
    # Claims that end without payment still carry a reserve until the adjuster decides.
    phantom = np.where(net > 0, net * rng.uniform(0.2, 0.8, n), 20_000 * np.exp(rng.standard_normal(n)))
    reserve_basis = np.where(paid, indemnity, phantom)
    reserve_bias = 0.85 * np.exp(0.5 * rng.standard_normal(n))

    reopens = np.isin(status, (_CLOSED_PAID, _CLOSED_NO_PAYMENT)) & (rng.random(n) < _REOPEN)
    reopen_month = np.where(reopens, close_month + rng.integers(2, 13, n), -1)
    close2_month = np.where(reopens, reopen_month + rng.integers(1, 7, n), -1)
    close2_day = np.where(reopens, _random_day_in(rng, np.maximum(close2_month, 0)), -1)
    # A reopened claim pays more, but never beyond what is left of the policy limit.
    extra = np.minimum(np.where(paid, indemnity * rng.uniform(0.1, 0.5, n), 30_000 * np.exp(rng.standard_normal(n))),
                       np.maximum(pol.limit[policy] - indemnity, 0))
    extra_indemnity = np.where(reopens & (rng.random(n) < 0.7), np.round(extra, 2), 0.0)
    extra_expense = np.where(reopens, np.round(0.15 * extra_indemnity + 2000, 2), 0.0)
    return _Claims(
        incident=incident, section=section, report=report, close_month=close_month, close_day=close_day,
        status=status, indemnity=indemnity, expense=expense, recovery=recovery, reserve_basis=reserve_basis,
        reserve_bias=reserve_bias, reopen_month=reopen_month, close2_month=close2_month, close2_day=close2_day,
        extra_indemnity=extra_indemnity, extra_expense=extra_expense,
    )


def _random_day_in(rng: np.random.Generator, month: np.ndarray, earliest: np.ndarray | None = None) -> np.ndarray:
    first = _month_start(month) if earliest is None else np.maximum(_month_start(month), earliest)
    span = _month_end(month) - first + 1
    return first + np.floor(rng.random(len(month)) * span).astype(np.int64)


# --------------------------------------------------------------------------- claim development


@dataclass
class _Valuations:
    claim: np.ndarray
    month: np.ndarray
    status: np.ndarray
    closed: np.ndarray  # closed day, -1 while open
    paid_indemnity: np.ndarray  # cents, policy currency
    paid_expense: np.ndarray
    case_reserve: np.ndarray
    recoveries: np.ndarray


def _develop(rng: np.random.Generator, ref: _Reference, win: _Window, clm: _Claims,
             currency: np.ndarray) -> _Valuations:
    """One row per claim and month-end from report to closure (and again after reopening), ≤ cut-off.

    Amounts are built cumulatively in yuan; paid amounts are converted to the policy currency
    increment by increment at the rate of the month paid (so they never fall), the case reserve
    at the valuation month's rate.
    """
    first_phase, second_phase = clm.rows_per_claim(win.last_month)
    claim, k = _group_offsets(first_phase + second_phase)
    n1 = first_phase[claim]
    later = k >= n1
    report_month = _month_of(clm.report)[claim]
    month = np.where(later, clm.reopen_month[claim] + k - n1, report_month + k)

    duration = clm.close_month[claim] - report_month
    progress = np.where(duration > 0, k / np.maximum(duration, 1), 1.0)
    closed_first = ~later & (k == duration)
    duration2 = clm.close2_month[claim] - clm.reopen_month[claim]
    k2 = k - n1
    closed_second = later & (k2 == duration2)

    indemnity, extra = clm.indemnity[claim], clm.extra_indemnity[claim]
    instalments = np.floor(4 * np.minimum(progress, 1) ** _PAYMENT_SHAPE) / 4
    paid_indemnity = np.where(later, indemnity + np.where(closed_second, extra, 0.0),
                              np.where(closed_first, indemnity, indemnity * instalments))
    paid_expense = np.where(later, clm.expense[claim] + clm.extra_expense[claim] * (k2 + 1) / (duration2 + 1),
                            clm.expense[claim] * (k + 1) / (duration + 1))
    recoveries = np.where(later | closed_first, clm.recovery[claim], 0.0)

    basis = clm.reserve_basis[claim]
    noise = np.exp(0.1 * rng.standard_normal(len(claim)))
    estimate = basis * clm.reserve_bias[claim] ** (1 - np.minimum(progress, 1)) * noise
    reserve_first = np.maximum(estimate - paid_indemnity, 0.05 * basis)
    reserve_second = np.maximum(extra, 0.3 * np.maximum(indemnity, 20_000)) * noise
    reserve = np.round(np.where(later, reserve_second, reserve_first), -2)
    reserve = np.where(closed_first | closed_second, 0.0, reserve)

    final_second = np.where(indemnity + extra > 0, _CLOSED_PAID, _CLOSED_NO_PAYMENT)
    status = np.where(later, np.where(closed_second, final_second, _REOPENED),
                      np.where(closed_first, clm.status[claim], _OPEN))
    closed = np.select([closed_first, closed_second], [clm.close_day[claim], clm.close2_day[claim]], -1)

    rate = ref.fx[currency[claim], month - ref.fx_first_month]
    counts = first_phase + second_phase
    starts = np.cumsum(counts) - counts

    def paid_in_currency(cumulative_yuan: np.ndarray) -> np.ndarray:
        cents = np.round(cumulative_yuan * 100).astype(np.int64)
        increment = np.diff(cents, prepend=0)
        increment[starts] = cents[starts]
        converted = np.round(increment / rate).astype(np.int64)
        total = np.cumsum(converted)
        return total - np.repeat(total[starts] - converted[starts], counts)

    return _Valuations(
        claim=claim, month=month, status=status, closed=closed,
        paid_indemnity=paid_in_currency(paid_indemnity), paid_expense=paid_in_currency(paid_expense),
        case_reserve=np.round(reserve * 100 / rate).astype(np.int64), recoveries=paid_in_currency(recoveries),
    )
