"""config.py: layers (defaults < file < environment < flags), validation with clear errors, relative paths."""

from __future__ import annotations

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
    path = write(tmp_path, 'title = "From file"\nintro = "file intro"\n[paths]\nout = "build"\n')
    config = load_config(
        path,
        environ={"DIGEST_TITLE": "From env", "DIGEST_BASE_URL": "https://news.example.org/d"},
        overrides={"title": "From flag", "intro": None},
    )
    assert config.title == "From flag"
    assert config.intro == "file intro"  # a flag not given (None) never overrides the file
    assert config.base_url == "https://news.example.org/d/"
    assert config.paths.out == tmp_path / "build"  # relative to the config file's folder


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
    assert load_config(cwd=tmp_path, environ={"DIGEST_CATEGORY_LIMIT": "3"}).category_limit == 3
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
