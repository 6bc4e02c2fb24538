"""`miaodai --help` and `miaodai model --help` work on an install without the model extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Run the command in a fresh interpreter where importing any modelling library fails, as without the extra.
BLOCKED = ("numpy", "pandas", "sklearn", "optbinning", "lightgbm", "matplotlib", "scipy")
PROGRAM = f"""
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Blocker())
from miaodai.cli import app
sys.argv = ["miaodai", *sys.argv[1:]]
app()
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("args", [("--help",), ("model", "--help"), ("model", "train", "--help"),
                                  ("model", "synth", "--help")])
def test_help_needs_no_modelling_library(args: tuple[str, ...]) -> None:
    result = _run(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_training_without_the_extra_says_how_to_install_it(tmp_path) -> None:
    result = _run("model", "train", "--data", "x.csv", "--target", "bad", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "uv sync --extra model" in result.stderr and "Traceback" not in result.stderr
