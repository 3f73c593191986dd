"""Simulated cyber-insurance market: the canonical truth fictitious insurers would report.

The simulator draws insured companies, their annual policy terms (renewals, new business,
co-insured risks written by two insurers), incidents (attritional Poisson events plus a few
named systemic events hitting many insureds across insurers at once), the claims they give
rise to and each claim's monthly development (payments, case reserves, closure, reopening).

Everything is vectorized over rows with numpy; loops run only over small sets (insurers,
sectors, products, events). All randomness comes from one PCG64 generator seeded by
`MarketParams.seed`, consumed in a fixed order, so equal params give identical frames.
Codes are checked against the taxonomy seeds when the reference data is loaded, so a seed
change that drops a code the simulator uses fails loudly instead of producing bad truth.

The insurers of the market come from their sample profiles (`cyberclaims.sample.profiles`: market
share, home provinces, currencies, number patterns, language of free text); by default those that
also have a valid mapping config.

This module composes the parts: `calibration` (parameters, market assumptions, reference data),
`draws` (the random draws, in their fixed order) and `frames` (the frames rendered from them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from cyberclaims.sample.calibration import _MAX_TARGET_INSUREDS, _PROBE_INSUREDS, MarketParams, _Market, _Reference, _reference
from cyberclaims.sample.draws import (
    _Claims,
    _draw_claims,
    _draw_incidents,
    _draw_insureds,
    _draw_policies,
    _events_in_window,
    _Incidents,
    _Insureds,
    _Policies,
    _sequence_within,
    _Window,
    _year_of,
    make_uscc,
)
from cyberclaims.sample.frames import _event_frame, _incident_frame, _insured_frame, _insured_name, _policy_frame, _render_numbers, _valuation_frame, schema
from cyberclaims.sample.profiles import SampleProfile, sample_market

__all__ = ["MarketParams", "estimate_valuation_rows", "make_uscc", "params_for_target_rows", "schema", "simulate_market"]

# --------------------------------------------------------------------------- public API


@dataclass
class _Simulation:
    ref: _Reference
    market: _Market
    win: _Window
    rng: np.random.Generator
    insureds: _Insureds
    policies: _Policies
    incidents: _Incidents
    claims: _Claims


def _simulate(params: MarketParams, profiles: Sequence[SampleProfile] | None) -> _Simulation:
    if params.n_insureds < 1:
        raise ValueError("n_insureds must be positive")
    ref = _reference()
    mk = _Market.of(sample_market().profiles if profiles is None else profiles, ref)
    win = _Window.of(params, ref)
    rng = np.random.Generator(np.random.PCG64(params.seed))
    ins = _draw_insureds(rng, params, ref, win, mk)
    pol = _draw_policies(rng, ref, ins, win, mk)
    inc = _draw_incidents(rng, params, ref, win, ins, pol)
    clm = _draw_claims(rng, ref, win, ins, pol, inc)
    return _Simulation(ref, mk, win, rng, ins, pol, inc, clm)


def simulate_market(params: MarketParams, profiles: Sequence[SampleProfile] | None = None) -> dict[str, pl.DataFrame]:
    """Returns {"policy": df, "incident": df, "claim_valuation": df, "insured": df, "systemic_event": df}.

    The market's insurers are `profiles`, in that order (default: the sample profiles that have a valid
    mapping config, `cyberclaims.sample.profiles.sample_market`); shares are renormalized over them.

    policy / incident / claim_valuation carry insurer_id, submission_month and every canonical
    field of `ingestion.contract` in clear, with the dtypes of `schema(record_type)`; amounts
    are in the row's own currency; incidents also carry occurrence_id (truth only: equal for each
    insurer's report of one co-insured occurrence). insured and systemic_event describe the hidden truth.
    Row order: policies by insurer, inception, insured; incidents by insurer, reported date,
    occurred date, policy; claim valuations by insurer, claim sequence, valuation date; insureds
    as drawn; systemic events by start date. Numbers (policy/incident/claim) count up in that
    order within each insurer.
    """
    sim = _simulate(params, profiles)
    ref, mk, win, rng, ins, pol, inc, clm = (sim.ref, sim.market, sim.win, sim.rng, sim.insureds, sim.policies,
                                             sim.incidents, sim.claims)
    events = _events_in_window(win)

    insured_id = make_uscc(ins.region, rng)
    insured_name = _insured_name(ins, ref)
    policy_seq = _sequence_within(pol.insurer, pol.inception, pol.insured)
    policy_numbers = _render_numbers(mk, "policy", pol.insurer, _year_of(pol.inception), policy_seq)
    inc_insurer = pol.insurer[inc.policy]
    incident_seq = _sequence_within(inc_insurer, inc.reported, inc.occurred, inc.policy)
    incident_numbers = _render_numbers(mk, "incident", inc_insurer, _year_of(inc.reported), incident_seq)

    claim_insurer = pol.insurer[inc.policy[clm.incident]]
    claim_seq = _sequence_within(claim_insurer, clm.report, incident_seq[clm.incident], clm.section)
    order = np.lexsort((claim_seq, claim_insurer))
    clm, claim_seq, claim_insurer = clm.take(order), claim_seq[order], claim_insurer[order]
    claim_policy = inc.policy[clm.incident]
    claim_numbers = _render_numbers(mk, "claim", claim_insurer, _year_of(clm.report), claim_seq)

    incidents = _incident_frame(rng, ref, mk, inc, pol, policy_numbers, incident_numbers, insured_id, events)
    valuations = _valuation_frame(rng, ref, mk, win, clm, claim_insurer, pol.currency[claim_policy], claim_policy,
                                  claim_numbers, incident_numbers, policy_numbers)
    return {
        "policy": _policy_frame(ref, mk, ins, pol, policy_numbers, insured_id, insured_name),
        "incident": incidents,
        "claim_valuation": valuations,
        "insured": _insured_frame(ref, mk, ins, pol, insured_id, insured_name),
        "systemic_event": _event_frame(events, incidents),
    }


def estimate_valuation_rows(params: MarketParams, profiles: Sequence[SampleProfile] | None = None) -> int:
    """Claim-valuation rows simulate_market(params, profiles) would return, from a simulation of at most
    _PROBE_INSUREDS insureds that stops before building frames, scaled linearly in n_insureds."""
    probe = replace(params, n_insureds=min(params.n_insureds, _PROBE_INSUREDS))
    sim = _simulate(probe, profiles)
    first_phase, second_phase = sim.claims.rows_per_claim(sim.win.last_month)
    rows = int(first_phase.sum() + second_phase.sum())
    return round(rows * params.n_insureds / probe.n_insureds)


def params_for_target_rows(target_rows: int, seed: int = MarketParams.seed,
                           profiles: Sequence[SampleProfile] | None = None, **kw: object) -> MarketParams:
    """MarketParams (other fields from kw) whose n_insureds gives about target_rows claim valuations.

    Unless kw fixes frequency_scale, targets that would need more than _MAX_TARGET_INSUREDS
    insureds keep that many and scale claim frequency up instead (rows are linear in both).
    """
    if target_rows < 1:
        raise ValueError("target_rows must be positive")
    probe = MarketParams(seed=seed, n_insureds=_PROBE_INSUREDS, **kw)  # type: ignore[arg-type]
    profiles = sample_market().profiles if profiles is None else profiles
    probe_rows = estimate_valuation_rows(probe, profiles)
    if probe_rows == 0:
        raise ValueError(f"{probe} yields no claim valuations; widen the window or raise frequency_scale")
    n_insureds = target_rows * _PROBE_INSUREDS / probe_rows
    if n_insureds > _MAX_TARGET_INSUREDS and "frequency_scale" not in kw:
        probe = replace(probe, frequency_scale=probe.frequency_scale * n_insureds / _MAX_TARGET_INSUREDS)
        n_insureds = target_rows * _PROBE_INSUREDS / estimate_valuation_rows(probe, profiles)
    return replace(probe, n_insureds=max(1, round(n_insureds)))
