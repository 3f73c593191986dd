from __future__ import annotations

import polars as pl
import pytest

from cyberclaims.ingestion.pseudonymize import (
    Pseudonymizer,
    SecretMissing,
    is_valid_uscc,
    load_secret,
    normalize_identifier,
    uscc_check_char,
    uscc_check_values,
)

# The worked example of GB 32100-2015.
STANDARD_EXAMPLE = "91350100M000100Y43"


def test_check_digit_of_the_standard_example():
    # By hand: values 9 1 3 5 0 1 0 0 M=21 0 0 0 1 0 0 Y=30 4 times weights 1 3 9 27 19 26 16 17 20 29
    # 25 13 8 24 10 30 28 sum to 9+3+27+135+26+420+8+900+112 = 1640; 1640 mod 31 = 28; 31 - 28 = 3.
    assert uscc_check_char(STANDARD_EXAMPLE[:17]) == "3" == STANDARD_EXAMPLE[17]
    assert is_valid_uscc(STANDARD_EXAMPLE)


# Codes as published on company registrations (National Enterprise Credit Information Publicity System).
PUBLISHED = (
    "914403001922038216",  # Huawei Technologies Co., Ltd.
    "91440300708461136T",  # Shenzhen Tencent Computer Systems Co., Ltd.
    "91330100716105852F",  # Alibaba (China) Co., Ltd.
)


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_valid_and_every_other_check_character_is_not(code):
    assert is_valid_uscc(code)
    others = [code[:17] + ch for ch in "0123456789ABCDEFGHJKLMNPQRTUWXY" if ch != code[17]]
    assert len(others) == 30 and not any(is_valid_uscc(o) for o in others)


def test_the_generator_and_ingestion_share_the_check():
    import numpy as np

    from cyberclaims.sample.market import make_uscc

    codes = make_uscc(np.array([350100, 440300, 110000] * 50), np.random.default_rng(7)).to_list()
    assert len(set(codes)) == 150 and all(is_valid_uscc(c) for c in codes)
    # The array form (what the generator uses) and the one-code form agree on the published codes.
    values = np.array([["0123456789ABCDEFGHJKLMNPQRTUWXY".index(ch) for ch in c[:17]] for c in PUBLISHED])
    assert ["0123456789ABCDEFGHJKLMNPQRTUWXY"[v] for v in uscc_check_values(values)] == [c[17] for c in PUBLISHED]


@pytest.mark.parametrize(
    "code",
    [
        STANDARD_EXAMPLE[:17] + "4",  # wrong check character
        STANDARD_EXAMPLE[:17],  # too short
        "I1350100M000100Y43",  # I is not in the code set
        "91350100M000100Y4Z",  # Z is not in the code set
    ],
)
def test_invalid_codes(code):
    assert not is_valid_uscc(code)


def test_full_width_and_lower_case_normalize_to_the_same_key():
    full_width = "９１３５０１００ｍ０００１００ｙ４３"
    assert normalize_identifier(full_width) == STANDARD_EXAMPLE
    assert normalize_identifier(" 91350100m000100y43 ") == STANDARD_EXAMPLE
    p = Pseudonymizer(b"k" * 32)
    keys, valid = p.insured_keys(pl.Series([normalize_identifier(full_width), STANDARD_EXAMPLE]))
    assert keys[0] == keys[1] and len(keys[0]) == 64 and STANDARD_EXAMPLE not in keys[0]
    assert valid.to_list() == [True, True]


def test_keys_depend_on_secret_and_scope():
    a, b = Pseudonymizer(b"a" * 32), Pseudonymizer(b"b" * 32)
    numbers = pl.Series(["P-1"])
    assert a.scoped_keys(numbers, "ins_x", "policy")[0] != b.scoped_keys(numbers, "ins_x", "policy")[0]
    assert a.scoped_keys(numbers, "ins_x", "policy")[0] != a.scoped_keys(numbers, "ins_y", "policy")[0]
    assert a.scoped_keys(numbers, "ins_x", "policy")[0] != a.scoped_keys(numbers, "ins_x", "claim")[0]


def test_demo_secret_is_created_with_a_warning_and_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CYBERCLAIMS_HMAC_KEY", raising=False)
    monkeypatch.delenv("CYBERCLAIMS_HMAC_KEY_FILE", raising=False)
    key_file = tmp_path / "secrets" / "hmac.key"
    first = load_secret(key_file)
    assert "DEMO secret" in capsys.readouterr().err
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert load_secret(key_file) == first
    assert "DEMO secret" not in capsys.readouterr().err


def test_secret_is_required_without_a_demo_key(monkeypatch, tmp_path):
    monkeypatch.delenv("CYBERCLAIMS_HMAC_KEY", raising=False)
    monkeypatch.setenv("CYBERCLAIMS_HMAC_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(SecretMissing, match="does not exist"):
        load_secret(tmp_path / "demo.key")
