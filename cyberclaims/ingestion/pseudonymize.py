"""Identity: validate and normalize identifiers, then replace them by keyed HMAC-SHA256 keys.

insured_key = HMAC(secret, "insured|" + normalized USCC) is the same at every insurer, which
is what lets the sector link one event across insurers. Policy, incident and claim numbers
are insurer-scoped: HMAC(secret, "<entity>|<insurer>|<number>"). Each distinct value is
hashed once per process (cache), so a claim valued every month costs one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
import unicodedata
from pathlib import Path

import numpy as np
import polars as pl

# GB 32100-2015: the code set (0–9 and the capitals without I, O, S, V, Z, valued 0–30 in this
# order) and the weights 3**i mod 31 of the first 17 positions.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_WEIGHTS = np.array(USCC_WEIGHTS, dtype=np.int64)
_USCC_VALUE = {c: i for i, c in enumerate(USCC_CHARSET)}

SECRET_ENV = "CYBERCLAIMS_HMAC_KEY"
SECRET_FILE_ENV = "CYBERCLAIMS_HMAC_KEY_FILE"


def normalize_identifier(value: str) -> str:
    """Full-width → half-width (NFKC), no internal blanks, upper case."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def normalize_series(values: pl.Series) -> pl.Series:
    distinct = values.drop_nulls().unique().to_list()
    return values.replace_strict({v: normalize_identifier(v) for v in distinct}, default=None, return_dtype=pl.String)


def uscc_check_values(values) -> np.ndarray:
    """The check character's value (0–30) from the values of the first 17 characters: one code (a
    sequence of 17 values) or one per row of an n × 17 integer array. The one implementation of the
    check: ingestion validates with it, the sample generator computes its codes with it."""
    return (31 - np.asarray(values, dtype=np.int64) @ _WEIGHTS % 31) % 31


def uscc_check_char(body17: str) -> str | None:
    """The check character of a code's first 17 characters; None when one is outside the code set."""
    if len(body17) != 17:
        raise ValueError(f"a unified social credit code has 17 characters before its check character, got {body17!r}")
    values = [_USCC_VALUE.get(ch) for ch in body17]
    if None in values:
        return None
    return USCC_CHARSET[int(uscc_check_values(values))]


def is_valid_uscc(code: str) -> bool:
    """GB 32100-2015: 18 characters from the code set, the last one the check character."""
    return len(code) == 18 and code[17] in _USCC_VALUE and uscc_check_char(code[:17]) == code[17]


class SecretMissing(RuntimeError):
    pass


def load_secret(demo_key_file: Path | None = None) -> bytes:
    """The HMAC secret from $CYBERCLAIMS_HMAC_KEY, or the file named by $CYBERCLAIMS_HMAC_KEY_FILE.

    With neither set and a demo key file path given, a local demo secret is created there
    (never committed: data/ is git-ignored) and a loud warning is printed, because keys made
    with it are only comparable inside this installation.
    """
    if value := os.environ.get(SECRET_ENV):
        return value.encode("utf-8")
    key_file = os.environ.get(SECRET_FILE_ENV)
    path = Path(key_file) if key_file else demo_key_file
    if path is None:
        raise SecretMissing(f"set {SECRET_ENV} or {SECRET_FILE_ENV} to the pseudonymization secret")
    if not path.exists():
        if key_file:
            raise SecretMissing(f"{SECRET_FILE_ENV} names {path}, which does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        print(
            "\n" + "!" * 78 + "\n"
            f"!! WARNING: no pseudonymization secret configured ({SECRET_ENV} / {SECRET_FILE_ENV}).\n"
            f"!! A DEMO secret was created at {path}.\n"
            "!! Keys made with it match only inside this installation. For real data, issue one\n"
            "!! secret per consortium from a secrets manager and never commit or log it.\n" + "!" * 78 + "\n",
            file=sys.stderr,
        )
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < 32:
        raise SecretMissing(f"the secret in {path} is shorter than 32 characters")
    return secret.encode("utf-8")


class Pseudonymizer:
    def __init__(self, secret: bytes):
        self._secret = secret
        self._cache: dict[str, str] = {}

    def key(self, message: str) -> str:
        cached = self._cache.get(message)
        if cached is None:
            cached = hmac.new(self._secret, message.encode("utf-8"), hashlib.sha256).hexdigest()
            self._cache[message] = cached
        return cached

    def insured_keys(self, ids: pl.Series) -> tuple[pl.Series, pl.Series]:
        """(insured_key, is_valid_uscc) for already-normalized insured ids; nulls stay null."""
        distinct = ids.drop_nulls().unique().to_list()
        keys = {v: self.key(f"insured|{v}") for v in distinct}
        valid = {v: is_valid_uscc(v) for v in distinct}
        return (
            ids.replace_strict(keys, default=None, return_dtype=pl.String),
            ids.replace_strict(valid, default=None, return_dtype=pl.Boolean),
        )

    def scoped_keys(self, numbers: pl.Series, insurer_id: str, entity: str) -> pl.Series:
        distinct = numbers.drop_nulls().unique().to_list()
        keys = {v: self.key(f"{entity}|{insurer_id}|{v}") for v in distinct}
        return numbers.replace_strict(keys, default=None, return_dtype=pl.String)
