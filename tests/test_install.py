"""The wheel, installed into a fresh virtual environment, works from another folder: init, then build."""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import BUILT, REPO


def test_wheel_installs_and_builds_a_new_workspace(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = wheels.glob("newsletter_digest-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"digest/templates/digest.mjml.j2", "digest/templates/digest.txt.j2"} <= set(names)
    assert {
        "digest/skeleton/digest.toml",
        "digest/skeleton/welcome.md",
        "digest/preview.html",
        "digest/site.html.j2",
    } <= set(names)
    assert {f"digest/locale/{lang}/LC_MESSAGES/digest.mo" for lang in ("en", "fr", "es")} <= set(names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # Offline: the dependencies come from this environment's site-packages (a plain path, so the editable
    # install of the checkout there is not seen); digest itself comes from the wheel.
    new_site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    Path(new_site, "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)

    home = tmp_path / "elsewhere"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    digest = str(venv / "bin" / "digest")
    where = subprocess.run(
        [py, "-c", "import digest; print(digest.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=home,
        env=env,
    )
    assert where.stdout.startswith(str(venv))
    # "digest" on PyPI is another project: ours is installed as newsletter-digest.
    dist = subprocess.run(
        [py, "-c", "import importlib.metadata as m; print(m.distribution('newsletter-digest').entry_points)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=home,
        env=env,
    )
    assert "digest.__main__:run" in dist.stdout
    init = subprocess.run([digest, "init", "news"], cwd=home, env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    assert (home / "news" / "templates" / "digest.mjml.j2").read_text() == (
        REPO / "templates" / "digest.mjml.j2"
    ).read_text()
    build = subprocess.run(
        [digest, "build", "--last", "30d"], cwd=home / "news", env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    assert build.stderr.startswith("1 item in 1 category -> out/")
    (folder,) = [p for p in (home / "news" / "out").iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.iterdir()) == BUILT
    # The packaged templates stand behind a workspace without its own.
    for template in (home / "news" / "templates").iterdir():
        template.unlink()
    again = subprocess.run(
        [digest, "-q", "build", "--last", "30d"], cwd=home / "news", env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr


def test_every_install_hint_names_our_distribution() -> None:
    """`pip install digest` would install another project from PyPI; every hint must say newsletter-digest."""
    hints = []
    for path in [
        *REPO.glob("*.md"),
        *REPO.glob("docs/*.md"),
        *REPO.glob("digest/**/*.py"),
        *REPO.glob(".github/**/*.yml"),
    ]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"pip install\b[^\n]*?['\"\s]digest(\[|['\"\s]|$)", line):
                hints.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert hints == []
