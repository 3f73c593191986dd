"""The submission-level profile the `submission` suite judges, and the gate's settle loop (pure: no DuckDB).

One row per pending submission and record type with the measures of quality.measures: quarantine
share, share of policies known, drift against the insurer's previous *admitted* submission of that
record type, reconciliation with the manifest's control totals. Drift skips held submissions, so a
held one must not serve as the baseline of the next: `settle` recomputes the profiles and runs the
suite again until the set of held submissions is stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from cyberclaims.ingestion.config import InsurerConfig, QualityConfig
from cyberclaims.quality.measures import MEASURES, Observation

if TYPE_CHECKING:
    from cyberclaims.quality.facts import Facts

PROFILE_INDEX = ["submission_id", "record_type"]


def jsonable(value):
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


def suite_parameters(quality: QualityConfig) -> dict:
    """The `submission` suite's parameters from the insurer's thresholds (quality.measures)."""
    parameters: dict = {}
    for m in MEASURES:
        if m.threshold:
            parameters |= m.threshold.parameters(m.threshold.value(quality))
    return parameters


def profiles(
    cfg: InsurerConfig,
    order: list[str],
    facts: dict[tuple[str, str], Facts],
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
            observed = Observation(f, p, comparable, q, manifest_file, manifest_error)
            row = {"submission_id": sid, "record_type": rt} | {m.column: m.value(observed) for m in MEASURES}
            rows.append(row)
            info[(sid, rt)] = {
                "record_type": rt,
                "rows": {"delivered": f.delivered, "accepted": f.accepted, "quarantined": f.quarantined},
                "previous_submission": {"submission_id": p.submission_id, "source_file": p.source_file,
                                        "accepted": p.accepted} if p else None,
                "measures": {k: jsonable(v) for k, v in row.items() if k not in PROFILE_INDEX},
                "totals": {k: str(v) for k, v in f.totals.items()},
                "previous_totals": {k: str(v) for k, v in p.totals.items()} if p else None,
                "open_share": jsonable(f.open_share),
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
    frame = pd.DataFrame(rows, columns=[*PROFILE_INDEX, *(m.column for m in MEASURES)])
    return frame, info


class Runner(Protocol):
    """What `settle` needs of quality.suites.SuiteRunner."""

    def run(self, name: str, frame: pd.DataFrame, parameters: dict, index: list[str]) -> list[dict]: ...


@dataclass(frozen=True)
class Settled:
    """The settled outcome: the submissions held (by the record suites or the submission suite), the
    submission suite's failed expectations, the profiles and the suite parameters they were judged with."""

    held: set[str]
    failures: list[dict]
    info: dict[tuple[str, str], dict]
    parameters: dict


def settle(
    runner: Runner,
    cfg: InsurerConfig,
    order: list[str],
    facts: dict[tuple[str, str], Facts],
    last_admitted: dict[str, str],
    manifests: dict[str, tuple[str | None, str | None]],
    admitted_count: dict[str, int],
    held_by_records: set[str] | frozenset[str] = frozenset(),
) -> Settled:
    """Run the `submission` suite over the profiles of the pending submissions (`order`, in delivery
    order) until the set of held submissions is stable: drift compares with the last admitted
    submission, so one held (by the record suites, `held_by_records`, or by this suite) must not serve
    as the baseline of the next. It settles in delivery order, within len(order) + 1 rounds."""
    parameters = suite_parameters(cfg.quality)
    failing = set(held_by_records)
    for _ in range(len(order) + 1):
        frame, info = profiles(cfg, order, facts, last_admitted, failing, manifests, admitted_count)
        failures = runner.run("submission", frame, parameters, PROFILE_INDEX)
        now_failing = set(held_by_records) | {row["submission_id"] for f in failures for row in f["unexpected"]}
        if now_failing == failing:
            return Settled(failing, failures, info, parameters)
        failing = now_failing
    # The walk is ordered, so it settles within len(order) rounds.
    from cyberclaims.quality.gate import GateError  # pragma: no cover - quality.gate imports this module

    raise GateError("submission gate did not settle")  # pragma: no cover
