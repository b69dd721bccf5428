"""The suppression list's CSV: an ESP's export read in (every bad row reported as `file:line: why`), and
the whole list written out (email, reason, date, source, evidence). The list itself is digest/suppress.py."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from digest.errors import SuppressionError
from digest.fsutil import atomic_write
from digest.suppress import Suppressions, check_reason, normalise

MAX_LISTED = 50  # bad rows listed in one error; the rest are counted
CSV_COLUMNS = ("email", "reason", "date", "source", "evidence")


@dataclass(frozen=True)
class Imported:
    """What an import did: rows read, addresses newly suppressed, bad rows skipped (with --skip-invalid)."""

    rows: int
    added: int
    problems: tuple[str, ...]


def _date(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    if text.replace(".", "", 1).isdigit():  # Unix time, as some ESPs export it
        return datetime.fromtimestamp(float(text), UTC)
    try:
        at = datetime.fromisoformat(text.replace(" UTC", "+00:00"))
    except ValueError:
        try:
            at = parsedate_to_datetime(text)  # RFC 2822, as in mail headers
        except (TypeError, ValueError):
            raise ValueError(f"date {text!r} is not ISO 8601, RFC 2822 or Unix time") from None
    # An export without an offset is taken as UTC: the ESPs that write such dates mean UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def read_csv(
    path: Path, *, reason: str = "manual"
) -> tuple[list[tuple[str, str, datetime | None, str]], list[str]]:
    """The rows of a CSV with an `email` column (optional `reason`, `date`, others kept as evidence), and
    every bad row as `file:line: why`."""
    check_reason(reason)
    rows: list[tuple[str, str, datetime | None, str]] = []
    problems: list[str] = []
    line = 1
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            header = [c.strip().lower() for c in next(reader, [])]
            if "email" not in header:
                raise SuppressionError(f"{path}:1: no 'email' column in the header row")
            line = reader.line_num
            for row in reader:
                start, line = line + 1, reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    problems.append(f"{path}:{start}: {len(row)} fields, the header has {len(header)}")
                    continue
                cells = dict(zip(header, row, strict=True))
                try:
                    address = normalise(cells["email"])
                    why = check_reason(cells.get("reason", "").strip().lower() or reason)
                    at = _date(cells.get("date", ""))
                except (SuppressionError, ValueError, OverflowError) as err:
                    problems.append(f"{path}:{start}: {err}")
                    continue
                extra = [f"{k}={v.strip()}" for k, v in cells.items() if k not in ("email", "reason", "date")]
                evidence = "; ".join(x for x in extra if not x.endswith("="))
                rows.append((address, why, at, evidence))
    except (csv.Error, UnicodeDecodeError) as err:
        raise SuppressionError(f"{path}:{line + 1}: not valid CSV UTF-8: {err}") from None
    except OSError as err:
        raise SuppressionError(f"{path}: cannot read: {err.strerror}") from err
    return rows, problems


def import_csv(
    store: Suppressions, path: Path, *, reason: str = "manual", skip_invalid: bool = False
) -> Imported:
    """Suppress every row of a CSV export; with bad rows, nothing unless `skip_invalid`."""
    rows, problems = read_csv(path, reason=reason)
    if problems and not skip_invalid:
        listed = problems[:MAX_LISTED]
        more = [f"... and {len(problems) - len(listed)} more"] if len(problems) > len(listed) else []
        n = len(problems)
        raise SuppressionError(
            "\n".join(
                [
                    f"{n} bad row{'s' if n != 1 else ''} in {path}; nothing imported:",
                    *listed,
                    *more,
                    "Fix them, or pass --skip-invalid to import the good rows only.",
                ]
            )
        )
    added = store.add_many(rows, source=f"import:{path.name}")
    return Imported(len(rows), added, tuple(problems))


def export_csv(store: Suppressions, path: Path) -> int:
    """Write every entry to a CSV (email, reason, date, source, evidence) at once; how many."""
    entries = store.entries()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow([e.address, e.reason, e.at.isoformat(), e.source, e.evidence])
    try:
        atomic_write(path, buffer.getvalue().encode("utf-8"), mode=0o600)  # addresses: private
    except OSError as err:
        raise SuppressionError(f"{path}: cannot write: {err.strerror}") from err
    return len(entries)
