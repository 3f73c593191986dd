"""Caps on one landing file: what a single upload may take of the machine that runs the whole sector's cycle.

A file beyond a cap is rejected before it is read (the reader raises `UnreadableFile` with a reason naming the
cap, its value and the environment variable that sets it; the pipeline records the rejection) and the
insurer's other files, and every other insurer, still load. Each cap is measured from what is cheap to know:
the file's size, a workbook's zip directory and one streamed pass over its parts, a Parquet file's footer; rows
of a CSV or JSON file are counted by reading at most one row more than the cap.

    CYBERCLAIMS_MAX_FILE_MB          a delivered file, any format (default 256 MB)
    CYBERCLAIMS_MAX_UNCOMPRESSED_MB  a workbook once unzipped (all its parts), and the text its cells hold once
                                     each cell's shared string is expanded; a Parquet file's data once decoded
                                     (default 512 MB)
    CYBERCLAIMS_MAX_ROWS_PER_FILE    records in one file, every format; a workbook's rows over all its sheets
                                     (default 1,000,000)
    CYBERCLAIMS_MAX_WORKBOOK_CELLS   cells a workbook reader lays out: rows × columns of each sheet's used range,
                                     plus the shared strings (default 20,000,000)

Why these defaults: the biggest monthly submission of an insurer is a few hundred thousand rows (a CSV of about
100 MB; the sample market's workbooks of 300,000 rows unzip to 170 MB). The workbook reader (fastexcel) lays a
sheet out as a dense grid from its first to its last used cell and copies every cell's text, so its memory
follows the cells and the text, not the file: two cells a million rows apart, or a short string repeated in a
million cells, make a file of a few kilobytes that needs tens of gigabytes. At the caps a workbook needs about
2 GB to read; the machine (2 cores, 24 GB) runs the rest of the cycle beside it.

A size a zip directory declares is not trusted: every part is decompressed through a stream that stops one
byte past the declared size (and past the cap), so a part that holds more than it declares is rejected after at
most that many bytes. Rows and columns of a sheet are counted from its cells as calamine (fastexcel's reader)
places them, never from the sheet's own `<dimension>`, which may lie or be absent.

Values are read from the environment when a file is read (nothing at import time). A value that is not a
whole number above zero raises `InvalidLimit`, which is not an `Exception`: an operator's typo stops the run
instead of being recorded as every insurer's rejection.
"""

from __future__ import annotations

import copy
import os
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MB = 1_000_000


class InvalidLimit(BaseException):  # noqa: N818 - a setting, not an error of a file: see the module docstring
    """A cap's environment variable holds no valid value."""


@dataclass(frozen=True)
class Cap:
    env: str
    default: int
    unit: str  # how the value reads in a reason: "MB", "rows", "cells"


FILE_MB = Cap("CYBERCLAIMS_MAX_FILE_MB", 256, "MB")
UNCOMPRESSED_MB = Cap("CYBERCLAIMS_MAX_UNCOMPRESSED_MB", 512, "MB")
ROWS_PER_FILE = Cap("CYBERCLAIMS_MAX_ROWS_PER_FILE", 1_000_000, "rows")
WORKBOOK_CELLS = Cap("CYBERCLAIMS_MAX_WORKBOOK_CELLS", 20_000_000, "cells")
CAPS = (FILE_MB, UNCOMPRESSED_MB, ROWS_PER_FILE, WORKBOOK_CELLS)


def _value(cap: Cap, environ: Mapping[str, str]) -> int:
    raw = environ.get(cap.env)
    if raw is None or not raw.strip():
        return cap.default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0 or not raw.strip().replace("_", "").isdigit():
        raise InvalidLimit(f"{cap.env}={raw!r} is not valid: a whole number of {cap.unit} above 0 is expected "
                           f"(default {cap.default:,})")
    return value


@dataclass(frozen=True)
class FileLimits:
    file_mb: int = FILE_MB.default
    uncompressed_mb: int = UNCOMPRESSED_MB.default
    rows: int = ROWS_PER_FILE.default
    cells: int = WORKBOOK_CELLS.default

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FileLimits:
        env = os.environ if environ is None else environ
        return cls(*(_value(cap, env) for cap in CAPS))

    @property
    def file_bytes(self) -> int:
        return self.file_mb * MB

    @property
    def uncompressed_bytes(self) -> int:
        return self.uncompressed_mb * MB


def beyond(cap: Cap, value: int, what: str) -> str:
    """A rejection reason: what exceeds the cap, the cap's value and how to change it (never a delivered value)."""
    return f"over a file cap: {what}, beyond the cap of {value:,} {cap.unit} ({cap.env}; raise it in the " \
           "pipeline's environment if such files are expected)"


def _mb(nbytes: int) -> str:
    return f"{nbytes / MB:,.1f} MB" if nbytes < 10 * MB else f"{nbytes / MB:,.0f} MB"


def file_size_problem(path: Path, limits: FileLimits) -> str | None:
    size = path.stat().st_size
    if size > limits.file_bytes:
        return beyond(FILE_MB, limits.file_mb, f"the file is {_mb(size)}")
    return None


def rows_problem(rows: int, limits: FileLimits, *, exact: bool = True) -> str | None:
    """`exact=False`: the count stopped one row past the cap."""
    if rows > limits.rows:
        counted = f"{rows:,} rows" if exact else f"more than {limits.rows:,} rows"
        return beyond(ROWS_PER_FILE, limits.rows, f"the file holds {counted}")
    return None


def decoded_problem(nbytes: int, limits: FileLimits, what: str) -> str | None:
    if nbytes > limits.uncompressed_bytes:
        return beyond(UNCOMPRESSED_MB, limits.uncompressed_mb, f"{what} {_mb(nbytes)}")
    return None


def parquet_problem(source, limits: FileLimits) -> str | None:
    """Rows and decoded size from a Parquet footer (`source`: an open binary file); None when there is no
    footer to read (the reader then reports the file)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(source)
    except Exception:  # noqa: BLE001 - no readable footer: the reader's own error names it
        return None
    decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return rows_problem(meta.num_rows, limits) or decoded_problem(decoded, limits, "the file's data decodes to")


# --------------------------------------------------------------------------- workbooks (xlsx: a zip of XML parts)

_CHUNK = 1 << 20
_MAX_PIECE = 16 * MB
_PAD = b"<" + b" " * 31  # a chunk ends where a tag begins; fixed windows after a tag may run past its end
_SHARED_STRINGS = "xl/sharedstrings.xml"

_WS = np.zeros(256, bool)
_WS[[9, 10, 13, 32]] = True
_DELIM = _WS.copy()
_DELIM[[ord("/"), ord(">")]] = True
_ALPHA = np.zeros(256, bool)
_ALPHA[ord("A"):ord("Z") + 1] = True
_ALPHA[ord("a"):ord("z") + 1] = True
_DIGIT = np.zeros(256, bool)
_DIGIT[ord("0"):ord("9") + 1] = True
_END_DELIM = _WS.copy()
_END_DELIM[ord(">")] = True
_LT, _SLASH, _GT, _QUOTE, _EQ, _APOSTROPHE = (ord(ch) for ch in "</>\"='")

# Elements the fast paths read are written without a namespace prefix by every common writer; calamine matches
# local names, so a prefixed `<x:c>` is a cell too (read by the exact path).
_PREFIXED = re.compile(rb":(?:c|row|v|si|t|r|rPh)[\s/>]")
# XML as its tokens, one after the other, as quick-xml (calamine's parser) reads them: text, a comment, CDATA, a
# processing instruction, a declaration, or a tag that ends at the first '>' outside quotes (possessive: a tag
# that never closes costs linear time). Text counts only when a '<' follows it in the chunk, so the end of a match
# is where a chunk can be cut without cutting a token.
_TOKENS = re.compile(rb"""(?:[^<]++(?=<)|<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!(?!--|\[CDATA\[)[^>]*+>"""
                     rb"""|<(?:[^>"']++|"[^"]*+"|'[^']*+')*+>)*+""", re.S)
_TOKEN = re.compile(rb"""[^<]++|<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!(?!--|\[CDATA\[)[^>]*+>"""
                    rb"""|<(?P<close>/?)(?:[A-Za-z_][\w.\-]*:)?(?P<name>[A-Za-z_][\w.\-]*)"""
                    rb"""(?P<attrs>(?:[^>"']++|"[^"]*+"|'[^']*+')*+)>|<""", re.S)
# Every byte but the four that delimit markup: what is left of a chunk once they are kept.
_NOT_MARKUP = bytes(b for b in range(256) if b not in b"<>\"'")
_R_ATTR = re.compile(rb"""(?:^|\s)r\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REF = re.compile(rb"([A-Za-z]*)([0-9]*)")
_DIGITS = re.compile(rb"[0-9]{1,12}")


class _Stop(Exception):  # noqa: N818 - carries the reason out of the streamed pass
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _normal(name: str) -> str:
    return name.replace("\\", "/").lstrip("/").lower()


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n


@dataclass
class _Shape:
    """What a workbook reader lays out, summed over the parts read so far."""

    limits: FileLimits
    rows: int = 0  # finished sheets
    cells: int = 0  # finished sheets' grids + shared strings
    text: int = 0  # bytes of shared-string text the cells reference
    sheet_rows: int = 0  # the sheet being read: last used row (1-based) and column
    sheet_cols: int = 0

    def finish_sheet(self) -> None:
        self.rows += self.sheet_rows
        self.cells += self.sheet_rows * self.sheet_cols
        self.sheet_rows = self.sheet_cols = 0

    def check(self) -> None:
        rows = self.rows + self.sheet_rows
        cells = self.cells + self.sheet_rows * self.sheet_cols
        if rows > self.limits.rows:
            raise _Stop(beyond(ROWS_PER_FILE, self.limits.rows,
                               f"the workbook's sheets reach more than {self.limits.rows:,} rows"))
        if cells > self.limits.cells:
            raise _Stop(beyond(WORKBOOK_CELLS, self.limits.cells,
                               f"the workbook lays out more than {self.limits.cells:,} cells (rows × columns of "
                               "its sheets' used ranges, and its shared strings)"))
        if self.text > self.limits.uncompressed_bytes:
            raise _Stop(beyond(UNCOMPRESSED_MB, self.limits.uncompressed_mb,
                               f"the workbook's cells expand to more than {self.limits.uncompressed_mb:,} MB of "
                               "shared-string text"))


def _chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, used: list[int]) -> Iterator[bytes]:
    """A part's bytes, decompressed through a stream that stops one byte past both the declared size and the
    remaining budget (`used[0]`: bytes so far)."""
    limited = copy.copy(info)
    limited.file_size = min(info.file_size, budget - used[0]) + 1
    del limited.CRC  # the stream stops early on purpose; a checksum over part of a part would not match
    size = 0
    try:
        with zf.open(limited) as fh:
            while chunk := fh.read(_CHUNK):
                size += len(chunk)
                used[0] += len(chunk)
                if size > info.file_size:
                    raise _Stop("not a readable Excel workbook: a part of the zip holds more than its directory "
                                "declares (a corrupt or forged archive): deliver it again")
                if used[0] > budget:
                    raise _Stop(beyond(UNCOMPRESSED_MB, budget // MB,
                                       f"the workbook unzips to more than {_mb(budget)}"))
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
        raise _Stop("not a readable Excel workbook: a part of the zip cannot be decompressed "
                    f"({type(exc).__name__}): deliver it again") from None


def _xml_chunks(chunks: Iterator[bytes]) -> Iterator[tuple[bytes, bool]]:
    """XML in pieces that each end where a token begins (no tag, comment or value spans two pieces), with whether
    the piece is plain: every '<' opens a tag that closes at its first '>', with only double-quoted attributes
    between (what every spreadsheet program writes). In a plain piece every '<' is where quick-xml sees a tag: the
    array readings rely on it. A piece that is not plain is cut by the tokens themselves (and read token by token);
    one token longer than _MAX_PIECE (none a spreadsheet program writes: a cell holds at most 32,767 characters) is
    beyond what is measured."""
    carry = b""
    for chunk in chunks:
        buffer = carry + chunk
        if b"<!DOCTYPE" in buffer:
            raise _Stop("not a readable Excel workbook: a part declares a document type, which no spreadsheet "
                        "program writes: deliver it again")
        marks = buffer.translate(None, _NOT_MARKUP).replace(b'""', b"")
        last = marks.rfind(b"<")
        plain = marks.count(b"<", 0, max(last, 0)) == marks.count(b"<>", 0, max(last, 0))
        cut = buffer.rfind(b"<") if plain else _TOKENS.match(buffer).end()
        if cut > 0:
            yield buffer[:cut], plain
            buffer = buffer[cut:]
        if len(buffer) > _MAX_PIECE:
            raise _Stop("not a readable Excel workbook: a part holds a single element or text longer than "
                        f"{_MAX_PIECE // MB} MB, which no spreadsheet program writes: deliver it again")
        carry = buffer
    if carry:
        marks = carry.translate(None, _NOT_MARKUP).replace(b'""', b"")
        yield carry, marks.count(b"<") == marks.count(b"<>")


def _is_xml(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether a part is XML (what it holds decides, not its name); a part that is XML but not UTF-8 is refused."""
    first = copy.copy(info)
    del first.CRC  # only the first bytes are read
    try:
        with zf.open(first) as fh:
            head = fh.read(4096)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
        raise _Stop("not a readable Excel workbook: a part of the zip cannot be decompressed "
                    f"({type(exc).__name__}): deliver it again") from None
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (text.startswith(b"<") and b"\x00" in head):
        raise _Stop("not a readable Excel workbook: a part is XML that is not UTF-8: save the workbook again from "
                    "the spreadsheet program")
    return text.startswith(b"<")


def _windows(a: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    return a[starts[:, None] + np.arange(width)]


_LETTER_VALUE = np.zeros(256, np.int64)
_LETTER_VALUE[ord("A"):ord("Z") + 1] = np.arange(1, 27)
_LETTER_VALUE[ord("a"):ord("z") + 1] = np.arange(1, 27)
_DIGIT_VALUE = np.zeros(256, np.int64)
_DIGIT_VALUE[ord("0"):ord("9") + 1] = np.arange(10)


def _leading(window: np.ndarray, mask: np.ndarray, values: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `window`: how many leading bytes are in `mask`, and the number they write in `base`."""
    run = np.logical_and.accumulate(mask[window], axis=1)
    count = run.sum(axis=1)
    width = window.shape[1]
    powers = base ** np.arange(width, -1, -1, dtype=np.int64)  # base^width … base^0
    value = ((values[window] * run) @ powers[1:]) // powers[::-1][width - count]
    return count, value


def _refs(a: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cell references (`A1`, letters then digits, closed by '"') starting at `at`: (valid, column, row), both
    1-based. Not valid: no digits, more than 3 letters or 7 digits (beyond any grid a cap allows), no closing quote."""
    window = _windows(a, at, 12)
    n_letters, columns = _leading(window[:, :4], _ALPHA, _LETTER_VALUE, 26)
    rest = window[np.arange(len(window))[:, None], n_letters[:, None] + np.arange(8)]
    n_digits, rows = _leading(rest, _DIGIT, _DIGIT_VALUE, 10)
    closed = rest[np.arange(len(rest)), np.minimum(n_digits, 7)] == _QUOTE
    return (n_letters <= 3) & (n_digits >= 1) & (n_digits <= 7) & closed, columns, rows


def _text_of_values(a: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> int:
    """Bytes of the shared strings that the values starting at `starts` name by index, counting every value that
    is a whole number below the table's size (a superset of the cells of type `s`: an upper bound)."""
    if not len(starts) or not len(lengths):
        return 0
    n_digits, index = _leading(_windows(a, starts, 11), _DIGIT, _DIGIT_VALUE, 10)
    after = a[starts + np.minimum(n_digits, 10)]
    refs = index[(n_digits >= 1) & (n_digits <= 10) & (after == _LT) & (index < len(lengths))]
    return int(lengths[refs].sum())


class _Lexed:
    """The tags of one chunk, found with array operations on the positions of every '<' (and, when asked, of every
    '>' and double quote: a '>' after an odd number of quotes within a tag is inside a quoted value)."""

    def __init__(self, buf: bytes):
        self.n = len(buf)
        self.a = np.frombuffer(buf + _PAD, np.uint8)
        self.body = self.a[: self.n]
        self.lt = np.flatnonzero(self.body == _LT)
        self.first, self.second = self.a[self.lt + 1], self.a[self.lt + 2]
        self.has_apostrophe = b"'" in buf
        self._gt: np.ndarray | None = None
        self._quotes: np.ndarray | None = None

    def starts(self, name: bytes) -> np.ndarray:
        """Positions of the start tags `<name` (no prefix)."""
        if len(name) == 1:
            return self.lt[(self.first == name[0]) & _DELIM[self.second]]
        lt = self.lt[(self.first == name[0]) & (self.second == name[1])]
        keep = _DELIM[self.a[lt + 1 + len(name)]]
        for k in range(2, len(name)):
            keep &= self.a[lt + 1 + k] == name[k]
        return lt[keep]

    def ends(self, name: bytes) -> np.ndarray:
        lt = self.lt[(self.first == _SLASH) & (self.second == name[0])]
        keep = _END_DELIM[self.a[lt + 2 + len(name)]]
        for k in range(1, len(name)):
            keep &= self.a[lt + 2 + k] == name[k]
        return lt[keep]

    def quotes_between(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        if self._quotes is None:
            self._quotes = np.flatnonzero(self.body == _QUOTE)
        return np.searchsorted(self._quotes, stops) - np.searchsorted(self._quotes, starts)

    def tag_ends(self, starts: np.ndarray) -> np.ndarray | None:
        """The '>' closing each start tag; None when a tag holds a quoted '>' or a single quote (or never closes)."""
        if self._gt is None:
            self._gt = np.flatnonzero(self.body == _GT)
        at = np.searchsorted(self._gt, starts)
        if (at >= len(self._gt)).any():
            return None
        ends = self._gt[at]
        if (self.quotes_between(starts, ends) % 2).any():
            return None
        if self.has_apostrophe and len(starts):
            marks = np.flatnonzero(self.body == _APOSTROPHE)
            owner = np.searchsorted(starts, marks, side="right") - 1
            if ((owner >= 0) & (marks < ends[np.maximum(owner, 0)])).any():
                return None
        return ends


class _ExplicitScan:
    """The fast path: a sheet where every cell is written `<c r="A1"…` (Excel, LibreOffice, openpyxl, xlsxwriter).
    Each cell's place is its reference, so rows need not be followed. `feed` returns False for a chunk written
    otherwise (a cell without a reference first, a namespace prefix, an unusual reference)."""

    def __init__(self, shape: _Shape, lengths: np.ndarray):
        self.shape, self.lengths = shape, lengths

    def feed(self, buf: bytes, plain: bool) -> bool:
        if not plain or _PREFIXED.search(buf):
            return False
        lex = _Lexed(buf)
        a = lex.a
        cells = lex.starts(b"c")
        if len(cells):
            if not ((a[cells + 2] == ord(" ")) & (a[cells + 3] == ord("r")) & (a[cells + 4] == _EQ)
                    & (a[cells + 5] == _QUOTE)).all():
                return False
            valid, columns, rows = _refs(a, cells + 6)
            if not (valid & (columns > 0) & (rows > 0)).all():
                return False
            self.shape.sheet_rows = max(self.shape.sheet_rows, int(rows.max()))
            self.shape.sheet_cols = max(self.shape.sheet_cols, int(columns.max()))
        return _values_text(lex, self.shape, self.lengths)


def _values_text(lex: _Lexed, shape: _Shape, lengths: np.ndarray) -> bool:
    """Adds the shared-string text of a chunk's `<v>` values; False for a `<v …>` with attributes."""
    values = lex.starts(b"v")
    if (lex.a[values + 2] != _GT).any():
        return False
    shape.text += _text_of_values(lex.a, values + 3, lengths)
    return True


class _SheetScan:
    """Cell positions as calamine (fastexcel's reader) assigns them, with array operations, for sheets whose cells
    do not all carry a reference: a row's `r` sets the current row and a row's end moves to the next; a cell's `r`
    places it and sets the current column, a cell without one takes the next column of the current row. `feed`
    returns False for a chunk it does not read (namespace prefixes, a single quote or a quoted '>' in a tag,
    spaces around an attribute's '=', an unusual `r`): the exact path then reads the part."""

    def __init__(self, shape: _Shape, lengths: np.ndarray):
        self.shape, self.lengths = shape, lengths
        self.row = self.col = 0  # calamine's current row and column (0-based) after the chunks so far

    def feed(self, buf: bytes, plain: bool) -> bool:
        if not plain or _PREFIXED.search(buf):
            return False
        lex = _Lexed(buf)
        cells, rows, row_ends = lex.starts(b"c"), lex.starts(b"row"), lex.ends(b"row")
        tags = np.concatenate((cells, rows))
        order = np.argsort(tags, kind="stable")
        tags = tags[order]
        ends = lex.tag_ends(tags)
        if ends is None:
            return False
        found = self._r_values(lex, tags, ends)
        if found is None:
            return False
        has_r, columns, row_numbers = found
        is_cell = order < len(cells)
        if (has_r & (row_numbers == 0) | has_r & is_cell & (columns == 0)).any():
            return False  # calamine rejects these; the exact path measures them
        closed_row = (~is_cell) & (lex.a[ends - 1] == _SLASH)  # <row …/>: a start and an end
        extra = len(row_ends) + int(closed_row.sum())
        # Events in document order: 0 row start, 1 row end, 2 cell.
        positions = np.concatenate((tags, row_ends, ends[closed_row]))
        sort = np.argsort(positions, kind="stable")
        kinds = np.concatenate((np.where(is_cell, 2, 0), np.ones(extra, np.int64)))[sort]
        explicit = np.concatenate((has_r, np.zeros(extra, bool)))[sort]
        col_of = np.concatenate((columns - 1, np.zeros(extra, np.int64)))[sort]
        row_of = np.concatenate((row_numbers - 1, np.zeros(extra, np.int64)))[sort]
        self._place(kinds, explicit, col_of, row_of)
        return _values_text(lex, self.shape, self.lengths)

    @staticmethod
    def _r_values(lex: _Lexed, starts: np.ndarray, ends: np.ndarray):
        """Per tag: whether it has an `r` attribute, and its column and row (1-based); None when an attribute of
        these tags is written in a way the arrays do not read, or an `r` is not letters then digits."""
        n = len(starts)
        a = lex.a
        if not n:
            return np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0, np.int64)
        eq = np.flatnonzero(lex.body == _EQ)
        owner = np.searchsorted(starts, eq, side="right") - 1
        inside = (owner >= 0) & (eq < ends[np.maximum(owner, 0)])
        eq, owner = eq[inside], owner[inside]
        real = lex.quotes_between(starts[owner], eq) % 2 == 0  # an '=' outside every quoted value
        eq, owner = eq[real], owner[real]
        if (_WS[a[eq - 1]] | (a[eq + 1] != _QUOTE)).any():
            return None
        is_r = (a[eq - 1] == ord("r")) & _WS[a[eq - 2]]
        eq, owner = eq[is_r], owner[is_r]
        if (np.bincount(owner, minlength=n) > 1).any():
            return None
        valid, letters, digits = _refs(a, eq + 2)
        if not valid.all():
            return None
        has = np.zeros(n, bool)
        columns = np.zeros(n, np.int64)
        rows = np.zeros(n, np.int64)
        has[owner], columns[owner], rows[owner] = True, letters, digits
        return has, columns, rows

    def _place(self, kinds: np.ndarray, explicit: np.ndarray, col_of: np.ndarray, row_of: np.ndarray) -> None:
        n = len(kinds)
        if not n:
            return
        index = np.arange(n)
        is_end, is_cell = kinds == 1, kinds == 2
        ends_before = np.cumsum(is_end) - is_end
        cells_before = np.cumsum(is_cell) - is_cell
        # Row: the last row start with an `r` (or the carried row) plus the row ends since.
        sets_row = (kinds == 0) & explicit
        anchor = np.where(sets_row, index, -1)
        np.maximum.accumulate(anchor, out=anchor)
        row_base = np.where(anchor >= 0, (row_of - ends_before)[np.maximum(anchor, 0)], self.row)
        row = row_base + ends_before
        # Column: the last cell with an `r` or row end before the event (or the carried column) plus the cells since.
        sets_col = (is_cell & explicit) | is_end
        base_at = np.where(is_end, 0, col_of) - cells_before
        last = np.where(sets_col, index, -1)
        np.maximum.accumulate(last, out=last)
        before = np.concatenate(([-1], last[:-1]))  # anchors strictly before each event
        col = np.where(before >= 0, base_at[np.maximum(before, 0)], self.col) + cells_before
        cell_row = np.where(explicit, row_of, row)[is_cell]
        cell_col = np.where(explicit, col_of, col)[is_cell]
        if len(cell_row):
            self.shape.sheet_rows = max(self.shape.sheet_rows, int(cell_row.max()) + 1)
            self.shape.sheet_cols = max(self.shape.sheet_cols, int(cell_col.max()) + 1)
        self.row = int(row_base[-1]) + int(is_end.sum())
        self.col = int(base_at[last[-1]] if last[-1] >= 0 else self.col) + int(is_cell.sum())


class _ExactSheet:
    """Cell positions as calamine assigns them, token by token (any prefix, quoting, explicit or implicit
    positions): a row's `r` sets the current row, a row's end moves to the next; a cell's `r` places it and sets
    the current column, a cell without one takes the next column of the current row."""

    def __init__(self, shape: _Shape, lengths: np.ndarray):
        self.shape, self.lengths = shape, lengths
        self.row = self.col = 0

    def feed(self, buf: bytes, plain: bool) -> None:
        shape, lengths, n_strings = self.shape, self.lengths, len(self.lengths)
        row, col = self.row, self.col
        max_row, max_col = shape.sheet_rows, shape.sheet_cols
        value = False  # the token before is a <v> start tag: this one is its text
        for m in _TOKEN.finditer(buf):
            name = m.group("name")
            if name is None:
                if value and n_strings and m.group(0)[:1] != b"<":
                    digits = _DIGITS.fullmatch(m.group(0))
                    if digits is not None and int(digits.group(0)) < n_strings:
                        shape.text += int(lengths[int(digits.group(0))])
                value = False
                continue
            close, attrs = m.group("close"), m.group("attrs")
            empty = attrs.endswith(b"/")
            value = name == b"v" and not close and not empty
            if name == b"row":
                if not close:
                    r = _R_ATTR.search(attrs)
                    if r is not None:
                        digits = _REF.fullmatch(r.group(1) if r.group(1) is not None else r.group(2))
                        if digits is not None and digits.group(2):
                            row = int(digits.group(2)) - 1
                if close or empty:
                    row += 1
                    col = 0
            elif name == b"c" and not close:
                r = _R_ATTR.search(attrs)
                ref = None if r is None else _REF.fullmatch(r.group(1) if r.group(1) is not None else r.group(2))
                if ref is not None and ref.group(1) and ref.group(2):
                    at_row, at_col = int(ref.group(2)), _column_number(ref.group(1))
                else:
                    at_row, at_col = row + 1, col + 1
                col = at_col
                max_row, max_col = max(max_row, at_row), max(max_col, at_col)
        self.row, self.col = row, col
        shape.sheet_rows, shape.sheet_cols = max_row, max_col


def _owned(positions: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions that lie inside one of the elements [starts, stops), and the index of that element."""
    if not len(starts):
        return positions[:0], positions[:0]
    owner = np.searchsorted(starts, positions, side="right") - 1
    inside = (owner >= 0) & (positions < stops[np.maximum(owner, 0)])
    return positions[inside], owner[inside]


def _by_index(every: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Per shared-string index, the longest string it can name. calamine numbers the table either by every `<si>`
    or by those that hold a text (versions differ): each index is charged the longer of the two."""
    longest = every.copy()
    longest[: len(kept)] = np.maximum(longest[: len(kept)], kept)
    return longest


def _shared_strings_fast(chunks: Iterator[tuple[bytes, bool]], shape: _Shape) -> np.ndarray | None:
    """The shared-string table with array operations: per index, the byte length of the longest `<si>` it can
    name (a byte length bounds the text). None when the table is written otherwise (prefixes, an `<si/>`, a
    phonetic run before the text): the exact reading takes it."""
    every: list[np.ndarray] = []
    kept_lengths: list[np.ndarray] = []
    count = 0
    pending: int | None = None  # where an <si> that the previous chunk left open starts
    pending_kept = False
    offset = 0
    for buf, plain in chunks:
        if not plain or _PREFIXED.search(buf):
            return None
        lex = _Lexed(buf)
        opens, closes = lex.starts(b"si"), lex.ends(b"si")
        ends = lex.tag_ends(opens)
        if ends is None or (lex.a[ends - 1] == _SLASH).any():
            return None
        texts = np.concatenate((lex.starts(b"t"), lex.starts(b"r")))
        phonetic = lex.starts(b"rPh")
        starts = opens + offset
        if pending is not None:
            starts = np.concatenate(([pending], starts))
        stops = closes + offset
        unclosed = len(starts) - len(stops)
        if unclosed not in (0, 1) or not (starts[: len(stops)] < stops).all() \
                or not (stops[:-1] < starts[1: len(stops)]).all():
            return None  # not one <si> after the other
        # Which strings hold a text (or rich run), and whether a phonetic run comes first in any of them.
        closing = np.concatenate((stops, np.full(unclosed, np.iinfo(np.int64).max)))
        texts, text_owner = _owned(texts + offset, starts, closing)
        phonetic, phonetic_owner = _owned(phonetic + offset, starts, closing)
        kept = np.zeros(len(starts), bool)
        kept[text_owner] = True
        if pending is not None:
            kept[0] |= pending_kept
        first_phonetic = np.full(len(starts), np.iinfo(np.int64).max)
        np.minimum.at(first_phonetic, phonetic_owner, phonetic)
        first_text = np.full(len(starts), np.iinfo(np.int64).max)
        np.minimum.at(first_text, text_owner, texts)
        if (first_phonetic < first_text).any():
            return None
        done = len(stops)
        closed = stops - starts[:done]
        every.append(closed)
        kept_lengths.append(closed[kept[:done]])
        count += done
        pending, pending_kept = (int(starts[-1]), bool(kept[-1])) if len(starts) > done else (None, False)
        offset += len(buf)
        shape.cells = count
        shape.check()
    if not every:
        return np.zeros(0, np.int64)
    return _by_index(np.concatenate(every), np.concatenate(kept_lengths))


def _shared_strings_exact(chunks: Iterator[tuple[bytes, bool]], shape: _Shape) -> np.ndarray:
    """The same table token by token. An `<si>` holds a text once a `<t>` outside a phonetic run or a rich-text
    `<r>` opens in it (calamine's `read_string`); its length is the bytes from `<si` to `</si>`."""
    every: list[int] = []
    lengths: list[int] = []
    start: int | None = None
    rich = phonetic = kept = False
    offset = 0
    for buf, _ in chunks:
        for m in _TOKEN.finditer(buf):
            name = m.group("name")
            if name not in (b"si", b"t", b"r", b"rPh"):
                continue
            close, empty = m.group("close"), m.group("attrs").endswith(b"/")
            if name == b"si" and not close:
                start, rich, phonetic, kept = offset + m.start(), False, False, False
                if not empty:
                    continue
            if start is None:
                continue
            if name == b"r" and not close:
                rich = kept = True
            elif name == b"rPh":
                phonetic = not close and not empty
            elif name == b"t" and not close and not phonetic:
                kept = True
            if name == b"si" and (close or empty):
                every.append(offset + m.end() - start)
                if kept or rich:
                    lengths.append(every[-1])
                start = None
        offset += len(buf)
        shape.cells = len(every)
        shape.check()
    return _by_index(np.asarray(every, np.int64), np.asarray(lengths, np.int64))


def workbook_problem(path: Path, limits: FileLimits) -> str | None:
    """Why a workbook is beyond a cap (or cannot be measured safely), before its reader parses any part of it; None
    when it fits, or when it is no zip at all (the workbook reader then reports it)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    with zf:
        infos = zf.infolist()
        names = [_normal(i.filename) for i in infos]
        if len(set(names)) < len(names):
            return "not a readable Excel workbook: two parts of the zip have the same name (a forged archive)"
        declared = sum(i.file_size for i in infos)
        if declared > limits.uncompressed_bytes:
            return beyond(UNCOMPRESSED_MB, limits.uncompressed_mb,
                          f"the workbook unzips to {_mb(declared)} (the sizes its zip directory declares)")
        shape = _Shape(limits)
        used = [0]
        lengths = np.zeros(0, np.int64)
        # The shared strings first: a cell's text is looked up in them.
        order = sorted(range(len(infos)), key=lambda i: names[i] != _SHARED_STRINGS)
        try:
            for i in order:
                if names[i] == _SHARED_STRINGS:
                    start = used[0]
                    found = _shared_strings_fast(_xml_chunks(_chunks(zf, infos[i], limits.uncompressed_bytes, used)),
                                                 shape)
                    if found is None:
                        used[0] = start
                        found = _shared_strings_exact(
                            _xml_chunks(_chunks(zf, infos[i], limits.uncompressed_bytes, used)), shape)
                    lengths = found
                else:
                    _measure_part(zf, infos[i], shape, lengths, used)
        except _Stop as stop:
            return stop.reason
    return None


def _measure_part(zf, info, shape: _Shape, lengths: np.ndarray, used: list[int]) -> None:
    """Every XML part is measured as a sheet, whatever its name (the workbook's relationships, not a name, make a
    part a sheet; a part that is none has no cells and adds nothing); other parts are only decompressed, so their
    size is known. A sheet is measured by the fastest reading that takes every chunk of it: references only,
    then positions with arrays, then token by token; each starts the part again from its beginning."""
    if not _is_xml(zf, info):
        for _ in _chunks(zf, info, shape.limits.uncompressed_bytes, used):
            pass
        return
    start_used, start_text = used[0], shape.text
    for scanner in (_ExplicitScan, _SheetScan, _ExactSheet):
        used[0] = start_used
        shape.text, shape.sheet_rows, shape.sheet_cols = start_text, 0, 0
        scan = scanner(shape, lengths)
        chunks = _xml_chunks(_chunks(zf, info, shape.limits.uncompressed_bytes, used))
        for buf, plain in chunks:
            if scan.feed(buf, plain) is False:
                chunks.close()
                break
            shape.check()
        else:
            shape.finish_sheet()
            return
    raise AssertionError("the exact reading takes every chunk")
