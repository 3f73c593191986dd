from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cyberclaims.ingestion.config import CONFIG_DIR, ConfigError, load_all_configs, load_config


def test_all_shipped_configs_load():
    configs = load_all_configs()
    assert len(configs) >= 5
    assert {c.format for c in configs.values()} == {"csv", "excel", "jsonl", "parquet"}
    assert any(c.encoding.lower() == "gbk" for c in configs.values())


def write_variant(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((CONFIG_DIR / "dongfang_pc.yaml").read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "dongfang_pc.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "mutate, key, problem",
    [
        (lambda d: d["record_types"]["policy"]["columns"].update(polcy_number="X"),
         "record_types.policy.columns.polcy_number", "not a canonical field of policy"),
        (lambda d: d["record_types"]["claim_valuation"]["columns"].pop("valuation_date"),
         "record_types.claim_valuation.columns", "required canonical field 'valuation_date' is not mapped"),
        (lambda d: d["record_types"]["policy"]["value_maps"]["product_type"].update({"NEW": "cyber_pet"}),
         "record_types.policy.value_maps.product_type.NEW", "'cyber_pet' is not a code of tax_product_type"),
        (lambda d: d.update(encoding="klingon"), "encoding", "unknown encoding"),
        (lambda d: d.update(format="xml"), "format", "Input should be"),
        (lambda d: d["record_types"].update(reinsurance={"file_pattern": "x", "columns": {}}),
         "record_types.reinsurance", "unknown record type"),
        (lambda d: d.update(insurer_id="Other Insurer"), "insurer_id", "String should match pattern"),
        (lambda d: d["quality"].update(max_quarantine_share=1.5), "quality.max_quarantine_share", "less than or equal to 1"),
        (lambda d: d["quality"].update(drift={"paid_factr": 4}), "quality.drift.paid_factr", "Extra inputs are not permitted"),
        (lambda d: d["quality"].update(drift={"row_count_record_types": ["claims"]}),
         "quality.drift.row_count_record_types", "'claims' is not a record type"),
    ],
)
def test_invalid_config_names_file_key_and_problem(tmp_path, mutate, key, problem):
    path = write_variant(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and key in message and problem in message, message


def test_gate_thresholds_default_and_override_per_insurer(tmp_path):
    configs = load_all_configs()
    assert configs["dongfang_pc"].quality.manifest_required and not configs["tianfu_digital"].quality.manifest_required
    assert configs["tianfu_digital"].quality.drift.paid_factor == 5.0
    path = write_variant(tmp_path, lambda d: d["quality"].update(drift={"paid_factor": 3.0}))
    assert load_config(path).quality.drift.paid_factor == 3.0


def test_onboarding_is_a_config_file(tmp_path):
    """A new insurer with an existing format needs only a YAML file."""
    def rename(d):
        d["insurer_id"] = "dongfang_pc"
        d["display_name"] = "Another insurer"
    config = load_config(write_variant(tmp_path, rename))
    assert config.record_types_for_file("claims_202401.csv") == ["claim_valuation"]
    assert config.record_types_for_file("readme.txt") == []


def test_the_onboarding_guide_documents_every_option_of_the_config_model():
    """docs/onboarding.md's reference is generated from the model: regenerate it when a key changes."""
    from cyberclaims.ingestion.config import DateParts, FieldSpec, InsurerConfig, QualityConfig, RecordTypeConfig
    from cyberclaims.ingestion.config_reference import BEGIN, END, generate

    guide = (Path(__file__).parents[1] / "docs" / "onboarding.md").read_text(encoding="utf-8")
    section = guide[guide.index(BEGIN): guide.index(END) + len(END)] + "\n"
    assert section == generate(), "run: python -m cyberclaims.ingestion.config_reference --write docs/onboarding.md"
    for model in (InsurerConfig, RecordTypeConfig, FieldSpec, DateParts, QualityConfig):
        for key, info in model.model_fields.items():
            assert f"| `{key}` |" in section, f"{model.__name__}.{key} is not documented"
            assert info.description, f"{model.__name__}.{key} has no description"
