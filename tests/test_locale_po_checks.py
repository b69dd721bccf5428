"""What a workspace's .po may not hold, because the render would then fail or go wrong: a Plural-Forms rule
that divides by zero or names a form the catalog has not, a %(name)X whose conversion the value cannot take,
a greeting the config would refuse. Each is an error naming the file and line when the catalog is read, never
a traceback at render time nor a word that silently stays English."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import write_item
from smtpserver import MONTH

from digest.errors import TemplateError
from digest.i18n import LOCALE_DIR, catalog_path
from digest.po import read_po

Run = Callable[..., Result]

HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'


def plural_forms(rule: str) -> str:
    return HEADER + f'"Plural-Forms: {rule}\\n"\n'


def fails(text: str, lang: str = "fr") -> str:
    with pytest.raises(TemplateError) as err:
        read_po(text.encode(), where="x.po", lang=lang)
    return str(err.value)


# ---- Plural-Forms ----


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("nplurals=2; plural=n/0;", "divides by zero (n = 0)"),
        ("nplurals=2; plural=n%0;", "divides by zero (n = 0)"),
        ("nplurals=2; plural=n>1 ? 5 : 0;", "gives form 5 for n = 2, and there are forms 0 to 1 only"),
        ("nplurals=2; plural=n-1;", "gives form -1 for n = 0, and there are forms 0 to 1 only"),
        ("nplurals=2; plural=n==1000 ? 2 : 0;", "gives form 2 for n = 1000, and there are forms 0 to 1 only"),
        ("nplurals=3; plural=n==1000000 ? 3 : 0;", "gives form 3 for n = 1000000"),
        ("nplurals=1; plural=0*(1/(n-7));", "divides by zero (n = 7)"),
    ],
)
def test_a_plural_rule_that_cannot_pick_a_form_is_refused(rule: str, why: str) -> None:
    message = fails(plural_forms(rule) + '\nmsgid "a"\nmsgstr "b"\n')
    assert message.startswith(f"x.po:1: the Plural-Forms header {rule!r}: {why}"), message


@pytest.mark.parametrize(
    ("rule", "forms"),
    [
        ("nplurals=2; plural=(n > 1);", [0, 0, 1, 1]),
        ("nplurals=1; plural=0;", [0, 0, 0, 0]),
        # Polish: the heaviest common rule, every index in range
        (
            "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
            [2, 0, 1, 2],
        ),
        ("nplurals=2; plural=n==1000 ? 1 : 0;", [0, 0, 0, 0]),  # the largest form used is fine
    ],
)
def test_a_good_plural_rule_is_kept(rule: str, forms: list[int]) -> None:
    read = read_po(plural_forms(rule).encode(), where="x.po", lang="fr")
    assert [read.plural(n) for n in (0, 1, 2, 5)] == forms


# ---- %(name)X conversions ----


@pytest.mark.parametrize(
    ("msgid", "msgstr", "why"),
    [
        ("Read more: %(title)s", "Lire : %(title)d", "has %(title)d where its original has %(title)s"),
        ("Read more: %(title)s", "Lire : %(title)c", "has %(title)c where its original has %(title)s"),
        ("Read more: %(title)s", "Lire : %(title)5.2f", "has %(title)f where its original has %(title)s"),
        ("%(num)d more", "%(num)s de plus", "has %(num)s where its original has %(num)d"),
    ],
)
def test_a_placeholder_keeps_its_conversion(msgid: str, msgstr: str, why: str) -> None:
    message = fails(f'msgid "{msgid}"\nmsgstr "{msgstr}"\n')
    assert message == f"x.po:1: the translation of {msgid!r} {why} (keep the letter after the name)", message


def test_a_placeholder_may_change_its_flags_and_width_but_not_its_letter() -> None:
    read = read_po(
        b'msgid "%(num)d more in %(section)s"\nmsgstr "%(section)-10s : %(num)03d de plus"\n\n'
        b'msgid "%(num)d item"\nmsgid_plural "%(num)d items"\n'
        b'msgstr[0] "un"\nmsgstr[1] "%(num)d"\nmsgstr[2] "%(num)d"\n',
        where="x.po",
        lang="fr",
    )
    assert read.messages["%(num)d more in %(section)s"] == "%(section)-10s : %(num)03d de plus"
    plural = fails(
        'msgid "%(num)d item"\nmsgid_plural "%(num)d items"\n'
        'msgstr[0] "un"\nmsgstr[1] "%(num)s"\nmsgstr[2] "%(num)d"\n'
    )
    assert plural.startswith("x.po:1: the translation of '%(num)d item' has %(num)s where"), plural


# ---- greetings ({name}) ----


@pytest.mark.parametrize(
    ("msgstr", "why"),
    [
        ("Salut {name}, {", ": bad template 'Salut {name}, {': Single '{' encountered"),
        ("Salut {name}, }", ": bad template 'Salut {name}, }': Single '}' encountered"),
        ("Salut {name[0]},", ": 'Salut {name[0]},': use plain column names in braces, like {name}"),
        ("Salut {name.attr},", ": 'Salut {name.attr},': use plain column names in braces"),
        ("Salut {name!z},", ": 'Salut {name!z},': use plain column names in braces"),
        ("Salut {name!r},", ": 'Salut {name!r},': use plain column names in braces"),
        ("Salut {name:>9},", ": 'Salut {name:>9},': use plain column names in braces"),
        ("Salut {},", ": 'Salut {},': use plain column names in braces"),
        ("Salut {0},", ": 'Salut {0},': use plain column names in braces"),
        ("Salut {Name},", " has {Name}, its original has not"),
        ("Salut {nom},", " has {nom}, its original has not"),
    ],
)
def test_a_greeting_the_config_would_refuse_is_refused(msgstr: str, why: str) -> None:
    message = fails(f'msgid "Hello {{name}},"\nmsgstr "{msgstr}"\n')
    assert message.startswith(f"x.po:1: the translation of 'Hello {{name}},'{why}"), message


def test_a_greeting_may_write_a_literal_brace() -> None:
    read = read_po(b'msgid "Hello {name},"\nmsgstr "{{Salut}} {name} !"\n', where="x.po", lang="fr")
    assert read.messages["Hello {name},"].format(name="Ann") == "{Salut} Ann !"


# ---- through a build: an error, never a traceback ----


def french_workspace(ws: Path, body: str, header: str = HEADER) -> None:
    write_item(
        ws / "items",
        "fr.md",
        "---\ntitle: Une nouvelle\ndate: 2021-03-12\ncategory: News\nlang: fr\nurl: https://example.org/a\n"
        "summary: S.\n---\n",
    )
    path = catalog_path(ws / "locale", "fr")
    path.parent.mkdir(parents=True)
    path.write_text(header + "\n" + body, encoding="utf-8")


@pytest.mark.parametrize(
    ("header", "body", "error"),
    [
        (plural_forms("nplurals=2; plural=n/0;"), "", "1: the Plural-Forms header 'nplurals=2; plural=n/0;'"),
        (plural_forms("nplurals=2; plural=n%0;"), "", "1: the Plural-Forms header 'nplurals=2; plural=n%0;'"),
        (
            plural_forms("nplurals=2; plural=n>1 ? 5 : 0;"),
            "",
            "1: the Plural-Forms header 'nplurals=2; plural=n>1 ? 5 : 0;': gives form 5",
        ),
        (
            HEADER,
            '#, python-format\nmsgid "Read more: %(title)s"\nmsgstr "Lire : %(title)d"\n',
            "6: the translation of 'Read more: %(title)s' has %(title)d",
        ),
        (
            HEADER,
            '#, python-format\nmsgid "Read more: %(title)s"\nmsgstr "Lire : %(title)c"\n',
            "6: the translation of 'Read more: %(title)s' has %(title)c",
        ),
        (
            HEADER,
            'msgid "Hello {name},"\nmsgstr "Salut {name}, {"\n',
            "5: the translation of 'Hello {name},'",
        ),
        (
            HEADER,
            'msgid "Hello {name},"\nmsgstr "Salut {name[0]}"\n',
            "5: the translation of 'Hello {name},'",
        ),
        (HEADER, 'msgid "Hello {name},"\nmsgstr "Salut {name.a}"\n', "5: the translation of 'Hello {name},'"),
        (HEADER, 'msgid "Hello {name},"\nmsgstr "Salut {name!z}"\n', "5: the translation of 'Hello {name},'"),
        (
            HEADER,
            'msgid "Hello {name},"\nmsgstr "Salut {name:>9}"\n',
            "5: the translation of 'Hello {name},'",
        ),
    ],
)
def test_a_bad_catalog_stops_the_build_with_its_file_and_line(
    workspace: Path, run: Run, header: str, body: str, error: str
) -> None:
    french_workspace(workspace, body, header)
    result = run("build", *MONTH)  # catch_exceptions=False: a traceback fails the test as one
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: locale/fr/LC_MESSAGES/digest.po:{error}"), result.stderr
    assert "Traceback" not in result.stderr


# ---- the packaged catalogs pass every check ----


@pytest.mark.parametrize("lang", ["en", "fr", "es"])
def test_the_packaged_catalogs_pass_the_workspace_checks(lang: str) -> None:
    raw = (LOCALE_DIR / lang / "LC_MESSAGES" / "digest.po").read_bytes()
    assert read_po(raw, where="digest.po", lang=lang).messages


# ---- HTML: a translation goes into the HTML as it is (Jinja's gettext marks it safe) ----

ATTACK = (
    'Lire : <a href=\\"javascript:alert(1)\\">clic</a> <img src=\\"x\\" onerror=\\"alert(2)\\"/> %(title)s'
)


@pytest.mark.parametrize(
    ("msgid", "msgstr", "char"),
    [
        ("Read more: %(title)s", ATTACK, "<"),
        ("Unsubscribe", "Se d&eacute;sabonner", "&"),
        ("Unsubscribe", "<b>Se désabonner</b>", "<"),
        ("Terms & conditions", "Conditions <i>générales</i>", "<"),  # a tag in a text original's
        ("Q&A", "Q&amp;R", "&"),  # an entity: it would show as typed
        ("Read <b>more</b>", "Lire &amp; plus", "&"),  # its < allows no &
    ],
)
def test_a_translation_may_not_add_html(msgid: str, msgstr: str, char: str) -> None:
    message = fails(f'msgid "{msgid}"\nmsgstr "{msgstr}"\n')
    assert message == (
        f"x.po:1: the translation of {msgid!r} has {char!r}, its original has not: a translation may add no "
        "tag or entity, which would show as typed or go into the HTML (write the characters themselves: é, "
        "not &eacute;)"
    ), message


@pytest.mark.parametrize(
    ("msgid", "msgstr"),
    [
        ("Terms and conditions", "Termes & conditions"),  # a text original's translation is escaped
        ("Q&A", "Q&R"),  # a bare & is text, in the original and in its translation
        ("Fewer than %(n)d", "Moins de < %(n)d"),
        ("Read <b>more</b>", "Lire <b>plus</b>"),  # the original's own markup, translated
        ("Read&nbsp;more", "Lire&nbsp;la&nbsp;suite"),
    ],
)
def test_a_text_translation_may_have_a_bare_ampersand_or_angle(msgid: str, msgstr: str) -> None:
    read = read_po(f'msgid "{msgid}"\nmsgstr "{msgstr}"\n'.encode(), where="x.po", lang="fr")
    assert read.messages[msgid] == msgstr


def test_a_plural_translation_may_not_add_html() -> None:
    message = fails(
        'msgid "%(num)d item"\nmsgid_plural "%(num)d items"\n'
        'msgstr[0] "%(num)d billet"\nmsgstr[1] "%(num)d billets"\nmsgstr[2] "%(num)d <s>billets</s>"\n'
    )
    assert message.startswith("x.po:1: the translation of '%(num)d item' has '<', its original has not"), (
        message
    )


def test_html_its_original_has_may_stay() -> None:
    read = read_po(
        b'msgid "Terms & conditions"\nmsgstr "Conditions & termes"\n\n'
        b'msgid "Read <b>more</b>"\nmsgstr "Lire <b>la suite</b> >>"\n\n'
        b'msgid "Unsubscribe"\nmsgstr "Se d\xc3\xa9sabonner >"\n\n'
        b'#, fuzzy\nmsgid "Menu"\nmsgstr "<script>"\n',  # fuzzy: never used, so never checked
        where="x.po",
        lang="fr",
    )
    assert read.messages == {
        "Terms & conditions": "Conditions & termes",
        "Read <b>more</b>": "Lire <b>la suite</b> >>",
        "Unsubscribe": "Se désabonner >",
    }


def test_a_translation_with_html_stops_the_build(workspace: Path, run: Run) -> None:
    french_workspace(workspace, f'#, python-format\nmsgid "Read more: %(title)s"\nmsgstr "{ATTACK}"\n')
    result = run("build", *MONTH)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        "Error: locale/fr/LC_MESSAGES/digest.po:6: the translation of 'Read more: %(title)s' has '<', its "
        "original has not"
    ), result.stderr
    assert not (workspace / "out" / "2021-03" / "fr" / "digest.html").exists()
