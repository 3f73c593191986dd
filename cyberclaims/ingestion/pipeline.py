"""Ingest an insurer's landing folder: discover files, hash, read, map, load or reject.

Each file is one submission identified by its insurer and the SHA-256 of its bytes, so the same
content delivered twice under any name by one insurer loads once (and the same bytes from two
insurers are two submissions). A file name that is not UTF-8, or that holds characters a terminal obeys or
hides (controls, bidirectional overrides, zero-width marks), is rejected with the name shown escaped; a symbolic
link leading out of the insurer's folder is refused unread. A file seen again with the size, modification time and
inode change time it had when it was hashed is not read again. A file is processed whole inside one
transaction; a file that cannot be read is rejected with its error, and the rest of the
landing zone still loads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from polars.exceptions import PanicException

from cyberclaims.ingestion import warehouse
from cyberclaims.ingestion.config import InsurerConfig
from cyberclaims.ingestion.manifest import is_manifest, read_manifest
from cyberclaims.ingestion.mapping import LayoutMismatch, MappedBatch, map_frame
from cyberclaims.ingestion.pseudonymize import Pseudonymizer
from cyberclaims.ingestion.readers import UnreadableFile, read_sources, safe_reason
from cyberclaims.ingestion.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)


def content_hash(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def landing_files(landing_dir: Path, insurer_id: str) -> list[Path]:
    """Every delivered data file of an insurer, in delivery-name order (hidden partial uploads and
    manifests, which travel with their data file, excluded)."""
    folder = landing_dir / insurer_id
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and not is_manifest(p)
    )


@dataclass
class FileOutcome:
    source_file: str
    submission_id: str
    status: str  # loaded | rejected | already_loaded | already_rejected
    rows_delivered: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class IngestSummary:
    insurer_id: str
    outcomes: list[FileOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def rows_loaded(self) -> int:
        return sum(o.rows_loaded for o in self.outcomes)

    @property
    def rows_quarantined(self) -> int:
        return sum(o.rows_quarantined for o in self.outcomes)


def map_file(
    path: Path, cfg: InsurerConfig, record_types: list[str], taxonomy: Taxonomy, pseudonymizer: Pseudonymizer
) -> tuple[list[MappedBatch], list[str]]:
    batches, warnings = [], []
    for rt, frame in read_sources(path, cfg, record_types).items():
        batch = map_frame(frame, cfg, rt, taxonomy, pseudonymizer)
        batches.append(batch)
        warnings.extend(printable(w) for w in batch.warnings)  # they quote the file's headers
    return batches, warnings


# DuckDB errors that a file's own values cause while its rows are inserted.
_DATA_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.InvalidInputException,
                duckdb.ConstraintException, duckdb.TypeMismatchException)


def _reject(con, meta: warehouse.SubmissionMeta, record_types: list[str], exc: Exception) -> FileOutcome:
    error = describe_error(exc)
    if isinstance(exc, UnreadableFile | LayoutMismatch):
        log.info("%s: rejected: %s", meta.source_file, error)
    else:
        log.warning("%s: rejected: %s", meta.source_file, error, exc_info=True)
    warehouse.reject_submission(con, meta, record_types, error)
    return FileOutcome(meta.source_file, meta.submission_id, "rejected", error=error)


def describe_error(exc: BaseException) -> str:
    """The rejection reason of a file: the reader's own message, or an unexpected error named by its type."""
    if isinstance(exc, UnreadableFile | LayoutMismatch):
        return printable(str(exc))  # a layout mismatch names the file's headers
    # The exception's text may quote the file's values (a DuckDB cast error names the value): quoted parts are dropped.
    first = printable(safe_reason(exc, 300))
    return f"unexpected error while reading the file ({type(exc).__name__}{': ' + first if first else ''})"


# What a terminal obeys or hides instead of showing: controls (C0, DEL and C1, which start escape sequences),
# format characters (bidirectional overrides, isolates and marks that reorder what follows them, zero-width
# characters), line and paragraph separators, and lone surrogates.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _backslash_escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def is_hidden(ch: str) -> bool:
    return unicodedata.category(ch) in _HIDDEN


def printable(text: str, escape: Callable[[str], str] = _backslash_escape) -> str:
    """Text as an operator's terminal or a log may show it: each hidden character escaped (\\x1b, \\x9b, \\u202e).
    Every file name the pipeline records, logs or reports passes through it, and every message quoting a file."""
    if text.isprintable():  # no control, format or separator character (the common case)
        return text
    return "".join(escape(ch) if is_hidden(ch) else ch for ch in text)


def display_name(path: Path, landing_dir: Path) -> str:
    """The landing-relative name of a file as text: bytes that are not UTF-8 are shown escaped (\\xff), and so is
    every hidden character (\\u202e)."""
    raw = path.relative_to(landing_dir).as_posix()
    return printable(os.fsencode(raw).decode("utf-8", "backslashreplace"))


def _name_problem(path: Path, landing_dir: Path) -> str | None:
    raw = path.relative_to(landing_dir).as_posix()
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return "unreadable file name: the name is not valid UTF-8 (shown with its bytes escaped): deliver it again " \
               "under a UTF-8 name"
    if any(is_hidden(ch) for ch in raw):
        return ("unreadable file name: the name contains control or invisible formatting characters (shown escaped): "
                "deliver it again under a plain name")
    return None


def _outside_folder(path: Path, landing_dir: Path, insurer_id: str) -> str | None:
    """Why a landing file is refused unread: a symbolic link (of the file or a folder on its way) that leads out of
    the insurer's landing folder would read another insurer's file, or any file of the host."""
    folder = (landing_dir / insurer_id).resolve()
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # a dangling link, a loop
        return "refused: a symbolic link that leads nowhere (dangling or a loop): deliver the file itself"
    if not target.is_relative_to(folder):
        return "refused: a symbolic link that leads outside the insurer's landing folder: deliver the file itself"
    return None


def _refuse(con, cfg: InsurerConfig, relative: str, path: Path, reason: str) -> FileOutcome:
    """Record a landing file refused unread (never opened, never hashed): its id is derived from its name."""
    submission_id = hashlib.sha256(f"refused\n{cfg.insurer_id}\n{relative}".encode()).hexdigest()
    if warehouse.known_submission(con, submission_id) is not None:
        return FileOutcome(relative, submission_id, "already_rejected", error=reason)
    meta = warehouse.SubmissionMeta(submission_id, cfg.insurer_id, relative, path.lstat().st_size,
                                    cfg.mapping_version, datetime.now(UTC).replace(tzinfo=None))
    log.warning("%s: %s", relative, reason)
    warehouse.reject_submission(con, meta, [], reason)
    return FileOutcome(relative, submission_id, "rejected", error=reason)


def _seen_unchanged(con: duckdb.DuckDBPyConnection, cfg: InsurerConfig, relative: str, stat) -> str | None:
    """The submission of a landing file the warehouse has seen unchanged, unless it must be read again (rejected
    under an earlier version of the insurer's mapping)."""
    # The inode change time is the kernel's: a file rewritten in place and its mtime set back still has a new one.
    seen = warehouse.unchanged_file_submission(
        con, cfg.insurer_id, relative, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if seen is not None and (known := warehouse.known_submission(con, seen)) is not None and not (
        known[0] == "rejected" and warehouse.rejected_under_other_mapping(con, seen, cfg.mapping_version)
    ):
        return seen
    return None


@dataclass(frozen=True)
class KnownFiles:
    """What the warehouse knows of the landing zone, read in two queries, so the landing sensor decides without
    holding a connection (a reader would keep a run from opening the warehouse for writing)."""

    stats: dict[tuple[str, str], tuple[int, int, int | None, str]]  # (insurer, file) → size, mtime, ctime, submission
    submissions: dict[str, tuple[str, str, str]]  # submission_id → insurer, status, mapping version

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> KnownFiles:
        stats = {(i, f): (b, m, c, s) for i, f, b, m, c, s in con.execute(
            "SELECT insurer_id, source_file, file_bytes, mtime_ns, ctime_ns, submission_id FROM control.landing_file_stats"
        ).fetchall()}
        submissions = {s: (i, st, mv) for s, i, st, mv in con.execute(
            "SELECT submission_id, insurer_id, status, mapping_version FROM control.submissions").fetchall()}
        return cls(stats, submissions)

    def _holds(self, cfg: InsurerConfig, submission_id: str) -> bool:
        known = self.submissions.get(submission_id)
        # A file rejected under an earlier version of the insurer's mapping is read again under the current one.
        return known is not None and not (known[1] == "rejected" and known[2] != cfg.mapping_version)

    def is_known(self, cfg: InsurerConfig, landing_dir: Path, path: Path) -> bool:
        """Whether ingesting this landing file would load nothing new: seen unchanged (ingest_file's quick check),
        or its content already a submission of the insurer."""
        if _outside_folder(path, landing_dir, cfg.insurer_id) is not None:
            return False
        stat = path.stat()
        seen = self.stats.get((cfg.insurer_id, display_name(path, landing_dir)))
        if seen is not None and seen[:3] == (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns) and self._holds(cfg, seen[3]):
            return True
        digest = content_hash(path)
        first = self.submissions.get(digest)
        # The submission id of this content for this insurer (warehouse.submission_id_for).
        submission_id = digest if first is None or first[0] == cfg.insurer_id else hashlib.sha256(
            f"{cfg.insurer_id}\n{digest}".encode()).hexdigest()
        return self._holds(cfg, submission_id)


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    landing_dir: Path,
    cfg: InsurerConfig,
    pseudonymizer: Pseudonymizer,
    taxonomy: Taxonomy | None = None,
) -> FileOutcome:
    relative = display_name(path, landing_dir)
    outside = _outside_folder(path, landing_dir, cfg.insurer_id)
    if outside is not None:
        return _refuse(con, cfg, relative, path, outside)
    stat = path.stat()
    seen = _seen_unchanged(con, cfg, relative, stat)
    if seen is not None:
        return FileOutcome(relative, seen, f"already_{warehouse.known_submission(con, seen)[0]}")
    outcome = _ingest_content(con, path, landing_dir, stat.st_size, cfg, pseudonymizer, taxonomy or load_taxonomy())
    warehouse.remember_file_stats(
        con, cfg.insurer_id, relative, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, outcome.submission_id)
    return outcome


def _ingest_content(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    landing_dir: Path,
    file_bytes: int,
    cfg: InsurerConfig,
    pseudonymizer: Pseudonymizer,
    taxonomy: Taxonomy,
) -> FileOutcome:
    relative = display_name(path, landing_dir)
    meta = warehouse.SubmissionMeta(
        submission_id=warehouse.submission_id_for(con, cfg.insurer_id, content_hash(path)),
        insurer_id=cfg.insurer_id,
        source_file=relative,
        file_bytes=file_bytes,
        mapping_version=cfg.mapping_version,
        ingested_at=datetime.now(UTC).replace(tzinfo=None),
    )
    known = warehouse.known_submission(con, meta.submission_id)
    if known is not None and known[0] == "rejected" and warehouse.rejected_under_other_mapping(
        con, meta.submission_id, cfg.mapping_version
    ):
        # The insurer's mapping changed since this file was rejected: it is read again under the new one.
        log.info("%s: rejected under an earlier mapping, read again under %s", relative, cfg.mapping_version)
        warehouse.forget_rejection(con, meta.submission_id, f"mapping {cfg.mapping_version}", "ingestion")
        known = None
    if known is not None:
        status, first_file = known
        warehouse.record_file(con, meta, is_resubmission=first_file != relative)
        return FileOutcome(relative, meta.submission_id, f"already_{status}")

    name_problem = _name_problem(path, landing_dir)
    record_types = [] if name_problem else cfg.record_types_for_file(path.name)
    try:
        if name_problem:
            raise UnreadableFile(name_problem)
        if not record_types:
            raise UnreadableFile(
                "unknown layout: the file name matches none of the insurer's patterns ("
                + ", ".join(dict.fromkeys(rtc.file_pattern for rtc in cfg.record_types.values())) + ")"
            )
        batches, warnings = map_file(path, cfg, record_types, taxonomy, pseudonymizer)
        manifest = read_manifest(path, landing_dir, cfg, record_types)
    except (Exception, PanicException) as exc:  # noqa: BLE001 - whatever reading or mapping one file raises
        # (a panic of polars' Rust code included, which is no Exception) rejects that file
        return _reject(con, meta, record_types, exc)
    try:
        warehouse.write_submission(con, meta, batches, warnings, manifest)
    except _DATA_ERRORS as exc:
        # The file's values do not fit the warehouse (a number beyond its type, say): the file's fault. Any other
        # error while writing (disk full, a closed database) is the warehouse's: it propagates, the transaction
        # has rolled back, and the next run loads the file whole.
        return _reject(con, meta, record_types, exc)
    delivered = sum(b.delivered for b in batches)
    loaded = sum(b.good.height for b in batches)
    return FileOutcome(relative, meta.submission_id, "loaded", delivered, loaded, delivered - loaded, None, warnings)


def ingest_insurer(
    con: duckdb.DuckDBPyConnection,
    cfg: InsurerConfig,
    landing_dir: Path,
    pseudonymizer: Pseudonymizer,
    files: Iterable[Path] | None = None,
    progress: Callable[[FileOutcome], None] | None = None,
) -> IngestSummary:
    taxonomy = load_taxonomy()
    summary = IngestSummary(cfg.insurer_id)
    for path in files if files is not None else landing_files(landing_dir, cfg.insurer_id):
        outcome = ingest_file(con, path, landing_dir, cfg, pseudonymizer, taxonomy)
        summary.outcomes.append(outcome)
        if progress:
            progress(outcome)
    return summary
