"""The README's "Use with TRL, verifiers, OpenEnv, SkyRL-Gym and verl" snippets run as written.

Each ``python`` block of that section runs in a fresh interpreter in an empty folder; a snippet
that stops working (an adapter's API changed, a framework release broke it) fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "README.md"
SECTION = "## Use with TRL, verifiers, OpenEnv, SkyRL-Gym and verl"
FRAMEWORKS = ("TRL", "verifiers", "OpenEnv", "SkyRL-Gym", "verl")


def _snippets() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    snippets: dict[str, str] = {}
    for part in re.split(r"\n### ", section)[1:]:
        heading = part.splitlines()[0].strip()
        blocks = re.findall(r"```python\n(.*?)```", part, re.DOTALL)
        for index, block in enumerate(blocks):
            snippets[heading if index == 0 else f"{heading} #{index + 1}"] = block
    return snippets


SNIPPETS = _snippets()


def test_every_framework_has_a_snippet() -> None:
    for framework in FRAMEWORKS:
        assert any(heading.startswith(framework) for heading in SNIPPETS), framework


@pytest.mark.parametrize("heading", sorted(SNIPPETS))
def test_snippet_runs(heading: str, tmp_path: Path) -> None:
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SNIPPETS[heading]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{heading}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
