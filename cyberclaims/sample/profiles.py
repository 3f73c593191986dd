"""Sample profiles: what the simulated market needs to know about each fictitious insurer.

An insurer's layout is its mapping config; its profile (`profiles.yaml`, validated by `SampleProfile`)
gives its market share, home provinces, currencies, number patterns, the language of its free text and
the file-level defect planted in its deliveries. The sample market is simulated for the insurers that
have both a valid config and a profile, in the profile file's order; a config without a profile is not
in the sample market, a profile without a config is ignored.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cyberclaims.ingestion.config import InsurerConfig, load_configs
from cyberclaims.ingestion.taxonomy import load_taxonomy

PROFILES_FILE = Path(__file__).resolve().parent / "profiles.yaml"
FILE_DEFECTS = ("truncated", "extra_column", "unknown_layout")
_PATTERN_FIELDS = {"yyyy", "yy", "seq"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumberPatterns(_Strict):
    policy: str
    incident: str
    claim: str

    @field_validator("policy", "incident", "claim")
    @classmethod
    def _pattern(cls, value: str) -> str:
        fields = []
        for _, name, spec, _ in string.Formatter().parse(value):
            if name is None:
                continue
            if name not in _PATTERN_FIELDS:
                raise ValueError(f"unknown field {{{name}}} (use {{yyyy}}, {{yy}} or {{seq:N}})")
            if name == "seq" and not (spec or "").isdigit():
                raise ValueError("{seq} needs a width, e.g. {seq:6}")
            fields.append(name)
        if "seq" not in fields:
            raise ValueError("a number pattern needs {seq:N}, which makes the numbers unique")
        return value


class SampleProfile(_Strict):
    insurer_id: str
    market_share: float = Field(gt=0)
    home_provinces: dict[str, float] = Field(default_factory=dict)
    currencies: dict[str, float] = Field(default_factory=lambda: {"CNY": 1.0})
    numbers: NumberPatterns
    language: Literal["zh", "en"] = "zh"
    file_defect: Literal["truncated", "extra_column", "unknown_layout"] = "extra_column"
    coalesce_paths: dict[str, dict[str, str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SampleProfile:
        taxonomy = load_taxonomy()
        unknown = sorted(set(self.currencies) - taxonomy.codes["tax_currency"])
        if unknown:
            raise ValueError(f"currencies: {unknown} not in tax_currency")
        if any(share <= 0 for share in self.currencies.values()) or abs(sum(self.currencies.values()) - 1) > 1e-9:
            raise ValueError("currencies: shares must be positive and add up to 1")
        provinces = sorted(set(self.home_provinces) - taxonomy.codes["tax_region"])
        if provinces:
            raise ValueError(f"home_provinces: {provinces} are not province codes of tax_region")
        if any(weight <= 0 for weight in self.home_provinces.values()):
            raise ValueError("home_provinces: multipliers must be positive")
        return self


def load_profiles(path: Path | None = None) -> dict[str, SampleProfile]:
    """Every profile of the file, in file order; raises ValueError naming the file, insurer and problem."""
    path = path or PROFILES_FILE
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of insurer id → profile")
    profiles, problems = {}, []
    for insurer_id, body in raw.items():
        try:
            profiles[insurer_id] = SampleProfile.model_validate({"insurer_id": insurer_id, **(body or {})})
        except ValidationError as exc:
            problems += [f"{path}: {insurer_id}.{'.'.join(str(p) for p in e['loc']) or '(profile)'}: {e['msg']}"
                         for e in exc.errors()]
        except TypeError:
            problems.append(f"{path}: {insurer_id}: expected a mapping")
    if problems:
        raise ValueError("invalid sample profiles\n" + "\n".join(problems))
    return profiles


@dataclass(frozen=True)
class SampleMarket:
    """The insurers of the sample market: profile and config of each, in profile order."""

    profiles: tuple[SampleProfile, ...]
    configs: dict[str, InsurerConfig]
    # Insurers left out, and why: a config without a profile, a profile whose config is missing or invalid.
    left_out: dict[str, str]

    @property
    def insurer_ids(self) -> list[str]:
        return [p.insurer_id for p in self.profiles]


def sample_market(configs: dict[str, InsurerConfig] | None = None,
                  profiles: dict[str, SampleProfile] | None = None) -> SampleMarket:
    """The insurers with both a valid config and a sample profile (configs default to the valid ones of
    the config folder, profiles to profiles.yaml)."""
    config_errors: dict[str, str] = {}
    if configs is None:
        loaded = load_configs()
        configs, config_errors = loaded.configs, loaded.errors
    profiles = load_profiles() if profiles is None else profiles
    chosen = tuple(p for insurer_id, p in profiles.items() if insurer_id in configs)
    left_out = {i: "no sample profile" for i in configs if i not in profiles}
    left_out |= {i: "config invalid" if i in config_errors else "no config" for i in profiles if i not in configs}
    return SampleMarket(chosen, {p.insurer_id: configs[p.insurer_id] for p in chosen}, dict(sorted(left_out.items())))


def sample_insurers() -> list[str]:
    """Sorted ids of the insurers a generated sample contains (for tests and benchmarks)."""
    return sorted(sample_market().insurer_ids)
