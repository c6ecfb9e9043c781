"""Fixtures shared by every test folder.

- ``tiny_model_dir`` -> ``pathlib.Path``: a tiny random Qwen2 chat model in Hugging Face format
  (:func:`arenagym.agents.tiny_model.build_tiny_model`, seed 0), under ``tmp_path_factory``,
  built once per pytest(-xdist) worker in about a second after the imports. Never write into it.

Everything runs offline: ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` are set before any import.
Tests that need the ``hf`` extra skip cleanly when it is not installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 chat model directory (Hugging Face format), built once per worker."""
    pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
    pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
    from arenagym.agents.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0)
