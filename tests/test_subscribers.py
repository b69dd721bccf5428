"""subscribers.csv: validation (syntax only), duplicates, line numbers, streaming."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import SubscriberError
from digest.subscribers import check_list, check_subscribers, iter_subscribers, require_clean, valid_address


def write(tmp_path: Path, text: str, *, name: str = "list.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_good_rows_stream_in_order_with_every_column(tmp_path: Path) -> None:
    path = write(tmp_path, "Email,Name,City\nann@example.org,Ann Lee,Lyon\nbob@example.org,,Rome\n")
    found = check_subscribers(path)
    assert (found.count, found.duplicates, found.bad_rows) == (2, 0, 0)
    assert found.columns == ("email", "name", "city")  # as the fields are keyed (the greeting uses them)
    rows = list(iter_subscribers(path, found))
    assert [(s.email, s.name, s.fields["city"], s.line) for s in rows] == [
        ("ann@example.org", "Ann Lee", "Lyon", 2),
        ("bob@example.org", "", "Rome", 3),
    ]
    assert rows == list(iter_subscribers(path))  # the fast pass gives what a validating pass gives


def test_duplicates_are_merged_case_insensitively_the_first_row_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path, "email,name\nAnn@Example.org,Ann\nann@example.ORG,Other\n ann@example.org ,Third\n"
    )
    found = check_subscribers(path)
    assert (found.count, found.duplicates) == (1, 2)
    (only,) = iter_subscribers(path, found)
    assert (only.email, only.name, only.key) == ("Ann@example.org", "Ann", "ann@example.org")


def test_every_bad_row_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,name\n"
        "ok@example.org,Ok\n"
        "no-at-sign,Bob\n"
        "two@@example.org,Two\n"
        '"multi@example.org","Multi\nline"\n'  # a quoted field spanning two lines: the row starts on line 5
        "extra@example.org,Extra,field\n"
        "\n"  # blank lines are skipped
        "tab@example.org,Bad\x01name\n"
        "ünï@example.org,Unicode local part\n"
        "last@example.org,Last\n",
    )
    found = check_subscribers(path)
    assert found.count == 2 and found.bad_rows == 6
    assert [p.split(": ", 1)[0] for p in found.problems] == [f"{path}:{n}" for n in (3, 4, 5, 7, 9, 10)]
    assert found.problems[3] == f"{path}:7: 3 fields, the header has 2"
    assert found.problems[2] == f"{path}:5: line breaks are not allowed in an email address or a name"
    assert found.problems[4] == f"{path}:9: control characters are not allowed in a name"
    with pytest.raises(SubscriberError) as err:
        require_clean(found)
    assert str(err.value).startswith("6 bad rows in the subscriber list:\n")
    assert str(err.value).endswith("Fix them, or pass --skip-invalid to send to the good rows only.")
    assert [s.email for s in iter_subscribers(path, found)] == ["ok@example.org", "last@example.org"]


def test_many_bad_rows_are_counted_past_the_listed_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "email\n" + "bad\n" * 120)
    found = check_subscribers(path)
    with pytest.raises(SubscriberError) as err:
        require_clean(found)
    assert "120 bad rows" in str(err.value) and "... and 70 more" in str(err.value)


def test_an_international_domain_is_sent_as_ascii(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nanna@bücher.example\n")
    (row,) = iter_subscribers(path, check_subscribers(path))
    assert row.email == "anna@xn--bcher-kva.example"


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffemail,name\nann@example.org,Ann\n")
    assert check_subscribers(path).count == 1
    assert check_subscribers(path).columns == ("email", "name")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "{path}: the file is empty (it needs a header row with an 'email' column)"),
        (
            "mail,name\nann@example.org,Ann\n",
            "{path}:1: no 'email' column in the header row (found: mail, name)",
        ),
        ("email,name,Email\n", "{path}:1: column 'email' appears twice in the header row"),
    ],
)
def test_a_bad_header_is_an_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SubscriberError) as err:
        check_subscribers(path)
    assert str(err.value) == message.format(path=path)


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nann@example.org,Ann\nbob@example.org,Bébé\n", encoding="latin-1")
    with pytest.raises(SubscriberError) as err:
        check_subscribers(path)
    assert str(err.value) == (
        f"{path}:3: not UTF-8 text (byte 0xe9 at offset 48); save the list as CSV UTF-8 (reading stopped here)"
    )


@pytest.mark.parametrize(("bad_line", "bom"), [(1, False), (2, True), (1501, False), (1501, True)])
def test_a_bad_byte_is_named_on_its_own_line_however_far_the_decoder_read_ahead(
    tmp_path: Path, bad_line: int, bom: bool
) -> None:
    """The text reader decodes the file in chunks, ahead of the CSV reader: the line is the byte's own."""
    rows = ["email,name"] + [f"person{n}@example.org,Person {n}" for n in range(2, 2001)]
    rows[bad_line - 1] = rows[bad_line - 1].replace("Person", "P\xe9rson").replace("name", "n\xe9me")
    data = ("\ufeff".encode() if bom else b"") + "\n".join(rows).encode("latin-1") + b"\n"
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    with pytest.raises(SubscriberError) as err:
        check_subscribers(path)
    assert str(err.value).startswith(f"{path}:{bad_line}: not UTF-8 text (byte 0xe9 at offset ")
    offset = int(str(err.value).split("at offset ")[1].split(")")[0])
    assert data[offset] == 0xE9 and data.count(b"\n", 0, offset) == bad_line - 1


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SubscriberError) as err:
        check_subscribers(tmp_path / "nope.csv")
    assert str(err.value) == f"{tmp_path / 'nope.csv'}: cannot read: No such file or directory"


def test_a_list_changed_after_the_check_is_noticed(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nann@example.org\n")
    found = check_subscribers(path)
    path.write_text("email\nann@example.org\nnot-an-address\n")
    os.utime(path, ns=(1, 1))
    with pytest.raises(SubscriberError) as err:
        list(iter_subscribers(path, found))
    assert str(err.value) == f"{path}: the list changed while it was being read; run the command again"


# ---- the fast path of the address check agrees with email-validator ----

_ATOM = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
_PIECES = st.sampled_from(
    [
        *_ATOM,
        ".",
        "..",
        "@",
        "-",
        "xn--",
        "a" * 64,
        "b" * 63,
        ".local",
        ".test",
        ".onion",
        ".COM",
        ".org",
        "é",
        " ",
        '"',
    ]
)


def _reference(raw: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        valid = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return valid.ascii_email or valid.normalized


def _ours(raw: str) -> str | None:
    try:
        return valid_address(raw)
    except ValueError:
        return None


@settings(max_examples=3000, deadline=None)
@given(
    local=st.lists(_PIECES, min_size=1, max_size=12).map("".join),
    domain=st.lists(_PIECES, min_size=1, max_size=12).map("".join),
)
def test_the_address_check_gives_what_email_validator_gives(local: str, domain: str) -> None:
    raw = f"{local}@{domain}"
    assert _ours(raw) == _reference(raw), raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ann.Lee+news@Example.ORG", "Ann.Lee+news@example.org"),
        ("x@sub.example.co.uk", "x@sub.example.co.uk"),
        ("x@localhost.local", None),  # a special-use domain
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),  # an IDNA label: email-validator decides
        ("x@xn--zz.example", None),
        # Over 64 characters: left to email-validator, which (2.x) accepts it as SMTP servers mostly do
        ("a" * 65 + "@example.org", "a" * 65 + "@example.org"),
        ("x..y@example.org", None),
        ("x@example", None),  # no dot in the domain
    ],
)
def test_the_address_check_on_known_cases(raw: str, expected: str | None) -> None:
    assert _ours(raw) == expected == _reference(raw)


@pytest.mark.parametrize("sep", [";", "\t"])
@pytest.mark.parametrize("bom", [False, True])
def test_a_list_saved_with_semicolons_or_tabs_is_read(tmp_path: Path, sep: str, bom: bool) -> None:
    """A spreadsheet in French or German saves "CSV" with ";" (the comma is their decimal point)."""
    rows = [
        ["Email", "Name", "City"],
        ["ann@example.org", "Ann, Jr.", "Lyon"],
        ["bob@example.org", "Bob", "Köln"],
    ]
    text = "".join(sep.join(r) + "\n" for r in rows)
    path = tmp_path / "list.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    found = check_subscribers(path)
    assert found.count == 2 and not found.problems
    assert found.columns == ("email", "name", "city")  # what a greeting may use
    people = list(iter_subscribers(path, found))
    assert [(p.email, p.name, p.fields["city"]) for p in people] == [
        ("ann@example.org", "Ann, Jr.", "Lyon"),
        ("bob@example.org", "Bob", "Köln"),
    ]


def test_a_row_with_one_field_too_few_says_field_once(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nann@example.org,Ann\njust-one-field\n")
    assert check_subscribers(path).problems == (f"{path}:3: 1 field, the header has 2",)


def test_a_quoted_header_separated_by_semicolons_is_read_and_its_columns_greet(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text('"email";"first"\n"ann@example.org";"Ann"\n', encoding="utf-8")
    found = check_list(path, uses={"first"}, skip_invalid=False)
    assert found.columns == ("email", "first") and found.count == 1
