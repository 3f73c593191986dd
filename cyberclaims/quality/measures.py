"""The registry of submission-level measures: one entry per column of the `submission` suite's profile.

Each measure says, in one place, which profile column it is, which record types it applies to, how it is
computed from the facts of a submission (quality.facts.Facts) and of the insurer's previous admitted one,
which setting of the insurer's `quality:` config is its threshold and which suite parameters that gives,
the reason code a failing submission is held with and what it means (English and Chinese, for the
insurer's feedback). The profiles (quality.profiles), the suite parameters, the gate's reason texts
(quality.gate.GATE_REASONS) and the feedback read it; its expectation is in
expectations/suites/submission.json (`meta.reason` = the reason, `$PARAMETER`s = the parameters), and
tests/test_gate.py checks that the two name the same measures.

Adding a measure: an entry here and its expectation in submission.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from cyberclaims.ingestion.config import QualityConfig
from cyberclaims.ingestion.contract import RECORD_TYPES
from cyberclaims.ingestion.manifest import ROW_COUNT

if TYPE_CHECKING:
    from cyberclaims.quality.facts import Facts


@dataclass(frozen=True)
class Observation:
    """What a measure is computed from: one submission's record type and its drift baseline."""

    current: Facts
    previous: Facts | None  # the insurer's last admitted submission of the record type before it
    comparable: bool  # drift is assessed (enough admitted history and rows on both sides)
    quality: QualityConfig  # the insurer's `quality:` config
    manifest_file: str | None
    manifest_error: str | None


@dataclass(frozen=True)
class Threshold:
    """A measure's bound in the insurer's `quality:` config and the suite parameters it gives."""

    config_key: str  # dotted path under `quality:`, e.g. drift.row_count_factor
    parameters: Callable[[object], dict[str, object]]  # configured value → {suite parameter: value}

    def value(self, quality: QualityConfig):
        value = quality
        for part in self.config_key.split("."):
            value = getattr(value, part)
        return value

    @property
    def default(self):
        """The value when the insurer's config does not set it (ingestion.config.QualityConfig)."""
        return self.value(QualityConfig())

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(self.parameters(self.default))


@dataclass(frozen=True)
class Measure:
    column: str  # the profile column the expectation judges
    record_types: tuple[str, ...]  # null (not assessed) for the others
    compute: Callable[[Observation], object]  # the value; None = not assessed
    reason: str  # the reason code a submission failing the expectation is held with
    en: str  # what the reason means (GATE_REASONS, the feedback)
    zh: str  # the same for Chinese readers (the feedback)
    threshold: Threshold | None = None  # None: the bound is fixed in the suite

    def value(self, o: Observation):
        return self.compute(o) if o.current.record_type in self.record_types else None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.threshold.parameter_names if self.threshold else ()


def _ratio(current: Decimal | int | None, previous: Decimal | int | None) -> float | None:
    if current is None or previous is None or previous == 0:
        return None
    return float(Decimal(current) / Decimal(previous))


def _paid(f: Facts):
    return f.totals.get("paid_indemnity", 0) + f.totals.get("paid_expense", 0)


def _within_factor(name: str) -> Callable[[object], dict[str, object]]:
    """A ratio within [1 / f, f] of the configured factor f."""
    return lambda f: {f"{name}_min": 1 / f, f"{name}_max": f}


def _stated(o: Observation) -> dict[str, dict] | None:
    """The control totals the submission's readable manifest states, by measure (None without one)."""
    if not o.manifest_file or o.manifest_error:
        return None
    return {x["measure"]: x for x in o.current.controls if x["manifest"] is not None}


def _manifest_row_difference(o: Observation) -> float | None:
    stated = _stated(o)
    if stated is None or ROW_COUNT not in stated:
        return None
    return float(abs(stated[ROW_COUNT]["delivered"] - stated[ROW_COUNT]["manifest"]))


def _manifest_total_difference(o: Observation) -> float | None:
    stated = _stated(o)
    if stated is None:
        return None
    amounts = [abs(x["delivered"] - x["manifest"]) for m, x in stated.items() if m != ROW_COUNT]
    return float(max(amounts)) if amounts else None


def _row_count_ratio(o: Observation) -> float | None:
    # Incident counts spike with systemic events: only the record types of `drift.row_count_record_types`.
    if not o.comparable or o.current.record_type not in o.quality.drift.row_count_record_types:
        return None
    return _ratio(o.current.accepted, o.previous.accepted)


def _open_share_change(o: Observation) -> float | None:
    if not o.comparable or o.current.open_share is None or o.previous.open_share is None:
        return None
    return abs(o.current.open_share - o.previous.open_share)


# In the order of the profile's columns (and of expectations/suites/submission.json).
MEASURES: tuple[Measure, ...] = (
    Measure(
        "quarantine_share", RECORD_TYPES,
        lambda o: o.current.quarantined / o.current.delivered if o.current.delivered >= o.quality.min_rows_for_shares else None,
        "QUARANTINE_SHARE",
        "too large a share of the delivered rows failed row-level validation",
        "报送的行中未通过行级校验（被隔离）的比例过高",
        Threshold("max_quarantine_share", lambda v: {"max_quarantine_share": v}),
    ),
    Measure(
        "known_policy_share", ("incident", "claim_valuation"),
        lambda o: o.current.known_policy_share if o.current.accepted >= o.quality.min_rows_for_shares else None,
        "UNKNOWN_POLICIES",
        "too many incidents or claims refer to policies the insurer has not delivered",
        "过多的事故或理赔记录所指向的保单未由本公司报送",
        Threshold("min_known_policy_share", lambda v: {"min_known_policy_share": v}),
    ),
    Measure(
        "row_count_ratio", RECORD_TYPES, _row_count_ratio,
        "DRIFT_ROW_COUNT",
        "the row count moved too far from the previous admitted submission",
        "行数与上一次已接收的报送相比变动过大",
        Threshold("drift.row_count_factor", _within_factor("row_count_ratio")),
    ),
    Measure(
        "premium_ratio", ("policy",),
        lambda o: _ratio(o.current.totals.get("written_premium"), o.previous.totals.get("written_premium")) if o.comparable else None,
        "DRIFT_PREMIUM",
        "the written premium total moved too far from the previous admitted submission",
        "签单保费合计与上一次已接收的报送相比变动过大",
        Threshold("drift.premium_factor", _within_factor("premium_ratio")),
    ),
    Measure(
        "paid_ratio", ("claim_valuation",),
        lambda o: _ratio(_paid(o.current), _paid(o.previous)) if o.comparable else None,
        "DRIFT_PAID",
        "the paid total moved too far from the previous admitted submission",
        "已付金额（赔款与费用）合计与上一次已接收的报送相比变动过大",
        Threshold("drift.paid_factor", _within_factor("paid_ratio")),
    ),
    Measure(
        "open_share_change", ("claim_valuation",), _open_share_change,
        "DRIFT_OPEN_SHARE",
        "the share of open claims moved too far from the previous admitted submission",
        "未决赔案占比与上一次已接收的报送相比变动过大",
        Threshold("drift.open_share_change", lambda v: {"open_share_change": v}),
    ),
    Measure(
        "manifest_error", RECORD_TYPES, lambda o: o.manifest_error,
        "MANIFEST_INVALID",
        "the manifest delivered with the file cannot be read or names another file",
        "随文件报送的清单（manifest）无法读取，或所指为另一个文件",
    ),
    Measure(
        "manifest_delivered", RECORD_TYPES, lambda o: o.manifest_file is not None,
        "MANIFEST_MISSING",
        "no manifest was delivered although the insurer's config requires one",
        "按本公司配置须随文件报送清单（manifest），但未报送",
        Threshold("manifest_required", lambda required: {"manifest_delivered_allowed": [True] if required else [True, False]}),
    ),
    Measure(
        "manifest_row_difference", RECORD_TYPES, _manifest_row_difference,
        "MANIFEST_ROW_COUNT",
        "the rows delivered differ from the manifest's row count",
        "报送的行数与清单所列行数不符",
    ),
    Measure(
        "manifest_total_difference", RECORD_TYPES, _manifest_total_difference,
        "MANIFEST_TOTALS",
        "an amount total differs from the manifest's control total",
        "某项金额合计与清单所列控制合计不符",
        Threshold("reconciliation_tolerance", lambda v: {"reconciliation_tolerance": float(v)}),
    ),
)

BY_REASON = {m.reason: m for m in MEASURES}

