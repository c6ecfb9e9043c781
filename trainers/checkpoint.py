"""Checkpoints a run can resume from exactly, written atomically.

A checkpoint is a directory ``checkpoints/step-000010/`` holding:

- the policy in Hugging Face format (``config.json``, ``model.safetensors``, tokenizer files), so
  it loads with ``AutoModelForCausalLM.from_pretrained`` and can be evaluated or merged as is;
- ``optimizer.pt`` and ``scheduler.pt`` (``state_dict``s), ``rng.pt`` (the torch, CUDA, NumPy
  and ``random`` states), ``trainer_state.json`` (step, entropy-control state, the config).

It is written to ``step-000010.tmp`` and renamed when complete, so a run killed while saving
leaves the previous checkpoint as the latest; :func:`latest_checkpoint` ignores ``.tmp``
directories. Only the newest ``keep`` checkpoints are kept.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("step-000002", "step-000010", "step-000011.tmp"):
    ...     (root / name).mkdir()
    ...     _ = (root / name / "trainer_state.json").write_text("{}")
    >>> latest_checkpoint(root).name
    'step-000010'
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["checkpoint_name", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

STATE_FILE = "trainer_state.json"


def checkpoint_name(step: int) -> str:
    """``step-000010`` for step 10 (sorts by step)."""
    return f"step-{step:06d}"


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint under ``root``, or ``None``."""
    root = Path(root)
    if not root.is_dir():
        return None
    done = [
        p
        for p in root.iterdir()
        if p.is_dir()
        and p.name.startswith("step-")
        and not p.name.endswith(".tmp")
        and (p / STATE_FILE).is_file()
    ]
    return max(done, key=lambda p: p.name) if done else None


def save_checkpoint(
    root: str | Path,
    step: int,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically; keep the newest ``keep`` (0: all)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    partial = root / (checkpoint_name(step) + ".tmp")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    model.save_pretrained(partial, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(partial)
    torch.save(optimizer.state_dict(), partial / "optimizer.pt")
    torch.save(scheduler.state_dict(), partial / "scheduler.pt")
    rng = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "random": random.getstate(),
    }
    torch.save(rng, partial / "rng.pt")
    (partial / STATE_FILE).write_text(
        json.dumps({"step": step, **state}, indent=2, default=repr), encoding="utf-8"
    )
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    if keep > 0:
        old = sorted(
            (
                p
                for p in root.iterdir()
                if p.is_dir() and p.name.startswith("step-") and not p.name.endswith(".tmp")
            ),
            key=lambda p: p.name,
        )
        for stale in old[:-keep]:
            shutil.rmtree(stale, ignore_errors=True)
    return final


def load_checkpoint(
    path: str | Path, model: Any, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG states from ``path``; returns its state."""
    from safetensors.torch import load_file

    path = Path(path)
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{path}: no *.safetensors weights in the checkpoint")
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(str(file)))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ValueError(
            f"{path}: checkpoint does not match the model (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]})"
        )
    device = next(model.parameters()).device
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rng = torch.load(path / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["random"])
    return json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
