"""Shared fixtures for the trainer tests: tiny models built once per session, tiny envs.

- ``tiny_model_dir`` (from ``tests/conftest.py``): the tiny random Qwen2 chat model (seed 0).
  Tests that train load it into memory or write elsewhere; never into it.
- ``tiny_model_dir_b`` -> another tiny model of the same architecture (seed 1), for merging.
- ``testkit_dir`` -> the folder of ``arenagym_trainers_testkit`` (for a subprocess's
  ``PYTHONPATH``); importing this conftest registers ``TrainerTest-Chars-v0``.

Everything runs offline (``tests/conftest.py`` sets ``HF_HUB_OFFLINE`` before any import).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTKIT_DIR = Path(__file__).resolve().parent
if str(TESTKIT_DIR) not in sys.path:
    sys.path.insert(0, str(TESTKIT_DIR))

import arenagym_trainers_testkit  # noqa: E402,F401  (registers TrainerTest-Chars-v0)


@pytest.fixture(scope="session")
def testkit_dir() -> Path:
    """The folder holding ``arenagym_trainers_testkit`` (put it on a subprocess's path)."""
    return TESTKIT_DIR


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model: same architecture, other weights (seed 1)."""
    pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
    from arenagym.agents.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model-b"), seed=1)
