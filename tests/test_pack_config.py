"""regulator/pack.yaml is read through one validating model: a bad file is refused with the field named."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from cyberclaims.regulator.pack import DEFAULT_CONFIG, load_config
from cyberclaims.regulator.statistics import PackError


def _variant(tmp_path: Path, change) -> Path:
    doc = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / "pack.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_the_shipped_file_reads_as_written():
    doc = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    config = load_config()
    assert config.rules.min_insurers == doc["disclosure"]["min_insurers"]
    assert config.rules.dominance_share == doc["disclosure"]["dominance_share"]
    assert [b.code for b in config.severity_bands] == [b["code"] for b in doc["severity_bands"]]
    assert [b.upper for b in config.severity_bands] == [
        None if b["upper"] is None else Decimal(str(b["upper"])) for b in doc["severity_bands"]]


def test_a_fractional_band_bound_keeps_its_written_digits(tmp_path):
    config = load_config(_variant(tmp_path, lambda d: d["severity_bands"][1].update(upper=10000.1)))
    assert config.severity_bands[1].upper == Decimal("10000.1")


@pytest.mark.parametrize(("change", "named"), [
    (lambda d: d["disclosure"].update(min_insurers=0), "disclosure.min_insurers"),
    (lambda d: d["disclosure"].update(dominance_share=1.5), "disclosure.dominance_share"),
    (lambda d: d["disclosure"].update(min_insureds="five"), "disclosure.min_insureds"),
    (lambda d: d["disclosure"].pop("min_insureds"), "disclosure.min_insureds"),
    (lambda d: d["disclosure"].update(min_insurer=3), "disclosure.min_insurer"),  # a misspelt key
    (lambda d: d["severity_bands"][2].pop("en"), "severity_bands.2.en"),
    (lambda d: d["severity_bands"][3].update(upper="lots"), "severity_bands.3.upper"),
    (lambda d: d["severity_bands"][-1].update(upper=10**7), "last severity band"),
    (lambda d: d.pop("disclosure"), "disclosure"),
])
def test_a_bad_file_names_the_field(tmp_path, change, named):
    path = _variant(tmp_path, change)
    with pytest.raises(PackError) as refused:
        load_config(path)
    assert named in str(refused.value)
    assert str(path) in str(refused.value)


def test_a_file_that_is_not_yaml_is_refused(tmp_path):
    path = tmp_path / "pack.yaml"
    path.write_text("disclosure: [unclosed", encoding="utf-8")
    with pytest.raises(PackError, match="not a valid regulator pack configuration"):
        load_config(path)
