"""The README's Python quick start, run as written (where torch is importable)."""

import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_the_readme_quick_start_runs(capsys):
    pytest.importorskip("torch")
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## From Python.*?```python\n(.*?)```", readme, re.S).group(1)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(block, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out.splitlines()
    assert float(printed[0]) < 1e-5, printed[0]
    assert "fuse-gates" in "\n".join(printed)
