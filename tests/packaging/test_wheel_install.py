"""The built wheel works outside the checkout: ``din prepare`` finds its specs and suites.

The editable install resolves every file through the source tree, so a
forgotten ``package-data`` entry (the dataset specs, the configs, the Great
Expectations suites in ``expectations/``) only shows up once the wheel is
installed somewhere else. These tests build the wheel from the working tree's
files (tracked plus untracked-but-not-ignored, so work not yet committed is
covered), install it into a fresh venv and prepare Magazine_Subscriptions from
another directory.

The fresh venv gets its dependencies (torch, polars, great_expectations ...)
from the running environment through a ``.pth`` line that names its
site-packages: a folder added that way is not itself a site dir, so the
editable install's own ``.pth`` hook in it never runs and ``din_model`` can
only come from the wheel. Nothing is downloaded (``--no-index``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``args``; on failure the assertion shows its output. Returns stdout."""
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _working_tree_files() -> list[str]:
    """Files git would commit: tracked ones plus untracked ones not ignored."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs a git checkout to list the source files")
    listing = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT
    )
    return [name for name in listing.split("\0") if name and (REPO_ROOT / name).is_file()]


def _clean_env() -> dict[str, str]:
    """The environment minus anything that could point imports or suites back at the repo."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DIN_EXPECTATIONS_DIR"}
    }
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built (offline, no build isolation) from a copy of the working tree."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    for name in _working_tree_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    dist = root / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "-w", dist, source],
        cwd=root,
    )  # fmt: skip
    (built,) = dist.glob("din_pipeline-*.whl")
    return built


def test_wheel_carries_every_data_file(wheel: Path) -> None:
    """Each YAML/JSON file of an installed package is in the wheel (not only the .py files)."""
    data = {
        name
        for name in _working_tree_files()
        if name.split("/")[0] in {"din_model", "expectations", "flows", "tasks", "bench"}
        and name.endswith((".yaml", ".yml", ".json"))
    }
    assert {f"expectations/{s}.json" for s in ("samples", "canonical_interactions")} <= data
    assert any(name.startswith("din_model/data/specs/") for name in data)
    with zipfile.ZipFile(wheel) as archive:
        missing = data - set(archive.namelist())
    assert not missing, f"not package data: {sorted(missing)}"


def _fresh_venv(root: Path, wheel: Path) -> Path:
    """A venv holding only the wheel, with the running environment's packages behind it."""
    venv = root / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    python = venv / "bin" / "python"
    # install before the .pth exists, so pip sees an empty venv and never touches the
    # running environment's (editable) din-pipeline
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         "--ignore-installed", "--disable-pip-version-check", "-q", wheel],
        cwd=root,
    )  # fmt: skip
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = Path(_run([python, "-c", purelib], cwd=root).strip())
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    ours |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    (site_packages / "_running_env_deps.pth").write_text(
        "".join(f"{p}\n" for p in sorted(ours) if Path(p).is_dir())
    )
    return venv


@pytest.mark.slow
def test_installed_wheel_prepares_magazine_outside_the_repo(
    wheel: Path, amazon_magazine: Path, tmp_path: Path
) -> None:
    venv = _fresh_venv(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env()

    where = _run(
        [venv / "bin" / "python", "-c",
         "import din_model, expectations, flows, great_expectations\n"
         "from din_model.validation.suites import expectations_dir\n"
         "print(din_model.__file__, expectations.__file__, flows.__file__, expectations_dir())"],
        cwd=elsewhere,
        env=env,
    ).split()  # fmt: skip
    for path in where:
        assert Path(path).resolve().is_relative_to(venv.resolve()), where
        assert not Path(path).resolve().is_relative_to(REPO_ROOT), where

    out = elsewhere / "prep"
    _run(
        [venv / "bin" / "din", "prepare", "--dataset", "amazon", "--source", amazon_magazine,
         "--out", out],
        cwd=elsewhere,
        env=env,
    )  # fmt: skip
    validation = json.loads((out / "validation.json").read_text())
    assert validation["canonical"]["success"] and validation["samples"]["success"]
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["validation_success"] is True
    assert report["samples"] == {"train": 2_516, "valid": 696, "test": 696}
