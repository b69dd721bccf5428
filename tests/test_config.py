"""config.py: layers (defaults < file < environment < flags), validation with clear errors, relative paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from digest.config import load_config
from digest.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(cwd=tmp_path, environ={})
    assert config.paths.config_file is None
    assert (config.title, config.timezone, config.paths.items) == ("News digest", "UTC", tmp_path / "items")


def test_layers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'title = "From file"\nintro = "file intro"\n[paths]\nout = "build"\n[send]\nrate = "10/s"\nconnections = 2\n',
    )
    config = load_config(
        path,
        environ={"DIGEST_TITLE": "From env", "DIGEST_BASE_URL": "https://news.example.org/d"},
        flags={"send.rate": "3600/h", "send.connections": None},
    )
    assert config.title == "From env"  # the environment over the file
    assert config.intro == "file intro"
    assert config.base_url == "https://news.example.org/d/"
    assert config.paths.out == tmp_path / "build"  # relative to the config file's folder
    assert config.send.rate == 1.0  # a flag over the file
    assert config.send.connections == 2  # a flag not given (None) never overrides the file


def test_a_flag_path_is_relative_to_the_current_folder(tmp_path: Path) -> None:
    write(tmp_path, "[paths]\nout = 'build'\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = load_config(tmp_path / "digest.toml", cwd=elsewhere, environ={}, flags={"paths.out": Path("o")})
    assert config.paths.out == elsewhere.resolve() / "o"  # typed in the shell: from where it was typed


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"send.rate": "abc"}, "--rate: 'abc': use messages per second, minute or hour, e.g. 10/s or 3000/h"),
        ({"send.connections": 0}, "--connections: expected a whole number from 1 to 64"),
    ],
)
def test_bad_flags_name_the_flag(tmp_path: Path, flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path, environ={}, flags=flags)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "per_second"), [("10", 10.0), ("10/s", 10.0), ("600/m", 10.0), ("3600/h", 1.0), ("0", 0.0)]
)
def test_rates(tmp_path: Path, text: str, per_second: float) -> None:
    assert load_config(cwd=tmp_path, environ={"DIGEST_SEND_RATE": text}).send.rate == per_second


def test_settings_are_grouped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[email]\nfrom = "News <n@example.org>"\nreply_to = "t@example.org"\n'
        '[smtp]\nhost = "relay.example.org"\nport = 2525\n[categories]\norder = ["A"]\nlimit = 4\n',
    )
    config = load_config(path, environ={})
    assert (config.smtp.host, config.smtp.port, config.smtp.security) == (
        "relay.example.org",
        2525,
        "starttls",
    )
    assert (config.categories.order, config.categories.limit) == (("A",), 4)
    assert config.sender.addr_spec == "n@example.org"
    assert config.reply_to is not None and config.reply_to.addr_spec == "t@example.org"


def test_secrets_come_from_the_environment_and_never_print(tmp_path: Path) -> None:
    env = {"DIGEST_SMTP_PASSWORD": "hunter2-password", "DIGEST_UNSUBSCRIBE_SECRET": "s" * 40}
    config = load_config(cwd=tmp_path, environ=env)
    assert config.secrets.smtp_password == "hunter2-password"
    assert config.secrets.unsubscribe_secret == "s" * 40
    for shown in (repr(config), str(config), repr(config.secrets), f"{config.secrets}"):
        assert "hunter2" not in shown and "s" * 40 not in shown
    assert "smtp_password=<set>" in repr(config.secrets)


@pytest.mark.parametrize("key", ["[smtp]\npassword", "[send]\nunsubscribe_secret", "[smtp]\nsecret"])
def test_secrets_in_the_file_are_refused(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, f'{key} = "x"\n')
    with pytest.raises(ConfigError, match="secrets are never read from the config file; set the environment"):
        load_config(path, environ={})


def test_a_non_ascii_smtp_password_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DIGEST_SMTP_PASSWORD: has a non-ASCII or control character"):
        load_config(cwd=tmp_path, environ={"DIGEST_SMTP_PASSWORD": "pässwörd"})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://e.org/u?e={email}", "must contain {token}"),
        ("http://e.org/u?e={email}&t={token}", "must be an https:// URL"),
        ("https://e.org/u?e={email}&t={token}&x={who}", "unknown field {who}"),
    ],
)
def test_unsubscribe_url_template(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(cwd=tmp_path, environ={"DIGEST_UNSUBSCRIBE_URL": url})


def test_nearest_config_upwards(tmp_path: Path) -> None:
    write(tmp_path, 'title = "Top"\n')
    (tmp_path / "a" / "b").mkdir(parents=True)
    config = load_config(cwd=tmp_path / "a" / "b", environ={})
    assert (config.title, config.paths.root) == ("Top", tmp_path.resolve())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('titel = "x"\n', "unknown setting 'titel' (did you mean 'title'?)"),
        ('[email]\nform = "a@b.org"\n', "unknown setting 'email.form' (did you mean 'email.from'?)"),
        (
            'timezone = "Mars/Olympus"\n',
            "timezone: unknown time zone 'Mars/Olympus' (use an IANA name like 'Europe/Geneva' or 'UTC')",
        ),
        (
            'language = "xx_YY"\n',
            "language: unknown language 'xx_YY' (use a code like 'en', 'fr' or 'pt_BR')",
        ),
        ('base_url = "example.org"\n', "base_url: must be an absolute http(s) URL, got 'example.org'"),
        ('[email]\nfrom = "not an address"\n', "email.from: not a single email address: 'not an address'"),
        (
            '[email]\nfrom = "a@b.org, c@d.org"\n',
            "email.from: not a single email address: 'a@b.org, c@d.org'",
        ),
        ('subject = "two\\nlines"\n', "subject: must be a single line (no line breaks)"),
        ("[categories]\nlimit = -1\n", "categories.limit: expected a whole number >= 0 (0 means no limit)"),
        ('[categories]\norder = ["A", "A"]\n', "categories.order: category listed twice: A"),
        ("title = 3\n", "title: expected a string, got int"),
        (
            "[email]\nfit_budget = 200\n",
            "email.fit_budget: expected a whole number of kilobytes from 10 to 101 (Gmail clips at 102)",
        ),
        (
            "[send]\nwindow = 0\n",
            "send.window: expected a whole number of messages from 1 to 32 "
            "(more unread replies could fill the socket buffer and stall the connection)",
        ),
        (
            "[send]\nwindow = 33\n",
            "send.window: expected a whole number of messages from 1 to 32 "
            "(more unread replies could fill the socket buffer and stall the connection)",
        ),
        (
            '[languages.xx_YY]\ntitle = "T"\n',
            "languages: [languages.xx_YY]: unknown language 'xx_YY' (use a code like 'en', 'fr' or 'pt_BR')",
        ),
        (
            '[languages."de_DE@euro"]\ntitle = "T"\n',
            "languages: [languages.de_DE@euro]: unknown language 'de_DE@euro' (use a code like 'en', 'fr' or 'pt_BR')",
        ),
        (
            '[languages.fr]\ntitel = "T"\n',
            "languages: [languages.fr]: unknown key 'titel'; keys are title, intro, subject, preheader, "
            "greeting, greeting_fallback, order, from_name",
        ),
        ('[languages.fr]\ntitle = "  "\n', "languages: [languages.fr]: title: must not be empty"),
        (
            "[languages.fr]\norder = 3\n",
            "languages: [languages.fr]: order: expected a list of category names",
        ),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == f"{path}: {message}"


def test_toml_syntax_error_has_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'title = "ok"\nintro = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == f"{path}: Invalid value (at line 2, column 9)"


def test_numbers_from_the_environment(tmp_path: Path) -> None:
    assert load_config(cwd=tmp_path, environ={"DIGEST_CATEGORY_LIMIT": "3"}).categories.limit == 3
    with pytest.raises(ConfigError, match=r"DIGEST_CATEGORY_LIMIT .*expected a whole number >= 0"):
        load_config(cwd=tmp_path, environ={"DIGEST_CATEGORY_LIMIT": "-1"})


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path, environ={"DIGEST_TIMEZONE": "Nowhere"})
    assert str(info.value).startswith(
        "environment variable DIGEST_TIMEZONE (setting timezone): unknown time zone"
    )


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_a_list_id_is_at_most_255_characters(tmp_path: Path) -> None:
    ok = "a" * 243 + ".example.org"
    assert load_config(cwd=tmp_path, environ={"DIGEST_LIST_ID": ok}).send.list_id == ok
    with pytest.raises(ConfigError, match="is 256 characters long; a List-Id has at most 255"):
        load_config(cwd=tmp_path, environ={"DIGEST_LIST_ID": "a" + ok})


def test_a_token_only_unsubscribe_url_is_enough(tmp_path: Path) -> None:
    url = "https://example.org/unsubscribe?u={token}"
    assert load_config(cwd=tmp_path, environ={"DIGEST_UNSUBSCRIBE_URL": url}).send.unsubscribe_url == url


def test_languages_borrow_the_top_level_texts_but_never_the_intro(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'title = "News"\nintro = "Hello all"\nsubject = "{{ title }}"\nlanguage = "en"\n'
        '[languages.fr]\ntitle = "Nouvelles"\n[languages.pt-br]\nintro = "Olá"\n',
    )
    config = load_config(path, environ={})
    assert [t.code for t in config.languages] == ["fr", "pt_BR"]
    fr = config.texts("fr")
    assert (fr.title, fr.intro, fr.subject) == ("Nouvelles", "", "{{ title }}")
    pt = config.texts("pt_BR")
    assert (pt.title, pt.intro) == ("News", "Olá")
    en = config.texts("en")
    assert (en.title, en.intro) == ("News", "Hello all")
    es = config.texts("es")  # no table: the top-level texts, without the intro
    assert (es.title, es.intro) == ("News", "")


def test_fit_and_window_settings(tmp_path: Path) -> None:
    path = write(tmp_path, "[email]\nfit = true\nfit_budget = 60\n[send]\nwindow = 4\n")
    config = load_config(path, environ={})
    assert (config.email.fit, config.email.fit_budget, config.send.window) == (True, 60, 4)
    (tmp_path / "bare").mkdir()
    assert load_config(write(tmp_path / "bare", ""), environ={}).send.window == 10
