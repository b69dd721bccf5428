"""subscribers.csv -> Subscriber rows: validated (syntax only, no DNS), de-duplicated case-insensitively.

The list is read twice and never held: `check_subscribers` reads the whole file and reports every bad row
(before anything is sent), `iter_subscribers` streams the good, first-seen rows for the send. Only the set
of lower-cased addresses is kept in memory, for the de-duplication.
"""

from __future__ import annotations

import codecs
import csv
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from digest.errors import ConfigError, SubscriberError
from digest.words import plural

MAX_LISTED = 50  # bad rows listed in one error; the rest are counted


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One recipient: the normalised address, the name (maybe empty), every column, the CSV line."""

    email: str
    name: str
    fields: dict[str, str] = field(hash=False, compare=False)
    line: int = 0

    @property
    def key(self) -> str:
        """The address lower-cased: how duplicates are recognised and the journal knows the recipient."""
        return self.email.lower()


@dataclass(frozen=True)
class SubscriberList:
    """What the checking pass found."""

    path: Path
    count: int  # unique good addresses
    duplicates: int
    problems: tuple[str, ...]
    bad_rows: int
    # For the later passes, which then need not validate again: the addresses the validator rewrote
    # (raw -> normalised), and the file's signature, so that a list changed in between is noticed.
    fixes: dict[str, str] = field(default_factory=dict, repr=False)
    signature: tuple[int, ...] = ()
    bad_lines: frozenset[int] = frozenset()
    columns: tuple[str, ...] = ()  # the header row, lower-cased, as the rows' fields are keyed
    notes: tuple[str, ...] = ()  # rows that are sent, but maybe not as meant (a `lang` that is no language)


def _open(path: Path) -> TextIO:
    try:
        # utf-8-sig: a byte-order mark (as spreadsheet programs write) is not part of the first column name.
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as err:
        raise SubscriberError([f"{path}: cannot read: {err.strerror}"]) from err


def _signature(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _rows(path: Path, checked: SubscriberList | None = None) -> Iterator[tuple[int, Subscriber | str]]:
    """(line, Subscriber) for each data row, or (line, "why it is bad"); a file-level fault raises.

    With `checked` (what the checking pass found) the addresses are not validated again.
    """
    if checked is not None and _signature(path) != checked.signature:
        raise SubscriberError([f"{path}: the list changed while it was being read; run the command again"])
    with _open(path) as f:
        reader = csv.reader(f, strict=True, delimiter=_delimiter(f))
        try:
            header = next(reader, None)
        except UnicodeDecodeError:
            raise SubscriberError([_undecodable(path)]) from None
        except csv.Error as err:
            raise SubscriberError([f"{path}:1: {_why(err)}"]) from err
        if header is None:
            raise SubscriberError(
                [f"{path}: the file is empty (it needs a header row with an 'email' column)"]
            )
        columns = [c.strip().lower() for c in header]
        if "email" not in columns:
            raise SubscriberError(
                [f"{path}:1: no 'email' column in the header row (found: {', '.join(header) or 'nothing'})"]
            )
        dupes = sorted({c for c in columns if c and columns.count(c) > 1})
        if dupes:
            raise SubscriberError([f"{path}:1: column {dupes[0]!r} appears twice in the header row"])
        email_at = columns.index("email")
        name_at = columns.index("name") if "name" in columns else -1
        line = reader.line_num
        while True:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise SubscriberError([_undecodable(path)]) from None
            except csv.Error as err:
                raise SubscriberError([f"{path}:{start}: {_why(err)} (reading stopped here)"]) from err
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(columns):
                yield start, f"{plural(len(row), 'field')}, the header has {len(columns)}"
                continue
            raw = row[email_at].strip()
            name = row[name_at].strip() if name_at >= 0 else ""
            if any(c in raw or c in name for c in "\r\n\x00"):
                yield start, "line breaks are not allowed in an email address or a name"
                continue
            if any(ord(c) < 32 for c in name):
                yield start, "control characters are not allowed in a name"
                continue
            if not raw:
                yield start, "the email is empty"
                continue
            if checked is not None:
                if start in checked.bad_lines:
                    yield start, "not a valid email address"
                    continue
                email = checked.fixes.get(raw, raw)
                fields = {c: v for c, v in zip(columns, row, strict=True) if c}
                yield start, Subscriber(email=email, name=name, fields=fields, line=start)
                continue
            try:
                email = valid_address(raw)
            except ValueError as err:
                yield start, str(err)
                continue
            fields = {c: v for c, v in zip(columns, row, strict=True) if c}
            yield start, Subscriber(email=email, name=name, fields=fields, line=start)


# A dot-atom local part, a host name of letters, digits and inner hyphens, a top-level domain of letters.
_SIMPLE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def valid_address(raw: str) -> str:
    """The address as a list keeps it (normalised), or ValueError saying why it is not one.

    Syntax only, no DNS. Non-ASCII local parts (SMTPUTF8) are refused: not every relay has it. The one
    address check of the list, the suppression list and `--test`."""
    # Imported here: it costs 20 ms, and commands that read no list (build, list) need none of it.
    from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

    # The common address, plain ASCII, is checked here: email-validator takes ~100 µs an address, which is
    # most of a large list's check. Only what it would accept unchanged (but for the domain's case) takes
    # this path; anything else (quotes, IDNA labels, special-use domains, lengths) goes to it.
    if len(raw) <= 254 and _SIMPLE.fullmatch(raw):
        local, _, domain = raw.rpartition("@")
        domain = domain.lower()
        labels = domain.split(".")
        if (
            len(local) <= 64
            and not any(label[2:4] == "--" for label in labels)
            and not any(domain == d or domain.endswith("." + d) for d in SPECIAL_USE_DOMAIN_NAMES)
        ):
            return f"{local}@{domain}"
    try:
        valid = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as err:
        raise ValueError(f"{raw!r} is not a valid email address: {err}") from None
    return valid.ascii_email or valid.normalized


def _delimiter(f: TextIO) -> str:
    """`,`, or what separates the header row's columns when that finds the email column and commas do not: a
    spreadsheet in a language that writes 3,5 saves "CSV" with `;` (Excel in French, German...), or tabs."""
    try:
        first = f.readline()
    except UnicodeDecodeError:
        first = ""  # the reader says where
    f.seek(0)
    for sep in (",", ";", "\t"):
        if "email" in (c.strip().strip('"').lower() for c in first.split(sep)):
            return sep
    return ","


def _why(err: csv.Error) -> str:
    return f"not valid CSV: {err}"


def _undecodable(path: Path) -> str:
    """`path:line: not UTF-8 text (byte ...)` for a list the decoder refused. The text reader decodes ahead
    of the CSV reader's lines, so the line is found in the bytes; only a failed read pays for this."""
    data = path.read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        at = bom + err.start
        line = data.count(b"\n", 0, at) + 1
        why = f"not UTF-8 text (byte 0x{data[at]:02x} at offset {at})"
        return f"{path}:{line}: {why}; save the list as CSV UTF-8 (reading stopped here)"
    return f"{path}: not UTF-8 text; save the list as CSV UTF-8"  # changed since: it decodes now


def check_subscribers(path: Path, *, max_listed: int = MAX_LISTED) -> SubscriberList:
    """Read the whole list once: count unique good addresses and collect every bad row."""
    seen: set[str] = set()
    problems: list[str] = []
    notes: list[str] = []
    fixes: dict[str, str] = {}
    bad = duplicates = 0
    bad_lines: set[int] = set()
    try:
        signature = _signature(path)
    except OSError as err:
        raise SubscriberError([f"{path}: cannot read: {err.strerror}"]) from err
    for line, row in _rows(path):
        if isinstance(row, str):
            bad += 1
            bad_lines.add(line)
            if len(problems) < max_listed:
                problems.append(f"{path}:{line}: {row}")
            continue
        lang = row.fields.get("lang", "").strip()
        if lang and not _known_language(lang) and len(notes) < max_listed:
            notes.append(
                f"{path}:{line}: lang {lang!r} is not a language code (like fr or pt-BR): "
                "this subscriber gets the digest's own language"
            )
        raw = row.fields["email"].strip()
        if raw != row.email:
            fixes[raw] = row.email
        if row.key in seen:
            duplicates += 1
        else:
            seen.add(row.key)
    if _signature(path) != signature:
        raise SubscriberError([f"{path}: the list changed while it was being read; run the command again"])
    return SubscriberList(
        path,
        len(seen),
        duplicates,
        tuple(problems),
        bad,
        fixes,
        signature,
        frozenset(bad_lines),
        _columns(path),
        tuple(notes),
    )


@functools.cache
def _known_language(tag: str) -> bool:
    from digest.config.values import language

    try:
        language(tag)
    except ValueError:
        return False
    return True


def _columns(path: Path) -> tuple[str, ...]:
    # The header was checked by the pass that just read the whole file.
    with _open(path) as f:
        header = next(csv.reader(f, strict=True, delimiter=_delimiter(f)), [])
    return tuple(c for c in (c.strip().lower() for c in header) if c)


def require_clean(found: SubscriberList) -> None:
    """Raise the SubscriberError that lists the bad rows, if there are any."""
    if found.bad_rows:
        raise SubscriberError(list(found.problems), more=found.bad_rows - len(found.problems), rows=True)


def iter_subscribers(path: Path, checked: SubscriberList | None = None) -> Iterator[Subscriber]:
    """Stream the good rows, each address once (the first row wins; later duplicates are merged into it).

    Pass what `check_subscribers` found to skip validating every address again (the slow part).
    """
    seen: set[str] = set()
    for _line, row in _rows(path, checked):
        if isinstance(row, Subscriber) and row.key not in seen:
            seen.add(row.key)
            yield row


def check_list(path: Path, *, uses: set[str], skip_invalid: bool) -> SubscriberList:
    """The checks of a send: every bad row reported (unless skipped), and each column the greeting `uses`
    present (a typo must not become "Hello,")."""
    listed = check_subscribers(path)
    # {name} is always known: a list without that column simply has no names (the fallback greeting).
    unknown = sorted(uses - {"name", *listed.columns})
    if unknown:
        raise ConfigError(
            f"[send] greeting uses {{{unknown[0]}}}, which is not a column of {listed.path} "
            f"(columns: {', '.join(listed.columns)})"
        )
    if not skip_invalid:
        require_clean(listed)
    return listed
