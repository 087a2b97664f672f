"""``pip install ./sdk`` (what the README tells a user to run) gives an SDK that imports.

The development venv installs the SDK in editable mode, which hides a package list in
``sdk/pyproject.toml`` that misses a subpackage; here the SDK is built into a real wheel,
installed into an empty folder and imported by an interpreter without site-packages.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "sdk"


def test_wheel_holds_every_module_and_imports(tmp_path: Path) -> None:
    src = tmp_path / "sdk"
    # A copy, so the build leaves no build/ or egg-info in the checkout.
    shutil.copytree(
        SDK, src, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("driftline-*.whl")

    sources = {p.relative_to(SDK).as_posix() for p in (SDK / "driftline").rglob("*.py")}
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert sources - in_wheel == set()
    assert "driftline/py.typed" in in_wheel

    target = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        check=True,
    )
    code = (
        f"import sys; sys.path.insert(0, {str(target)!r}); import driftline; "
        "assert driftline.__file__.startswith(sys.path[0]), driftline.__file__; "
        "print(driftline.wrap_openai.__module__)"
    )
    # -S: no site-packages, so the venv's editable SDK cannot stand in for the wheel.
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("driftline.integrations")
