"""Per-step training metrics: one JSON object per line, and optionally TensorBoard.

Every step writes the fields listed in :data:`STEP_FIELDS` (and any extra ones) to
``metrics.jsonl``. On resume, lines of steps after the checkpoint are dropped first, so the file
never holds a step twice (and TensorBoard hides those steps' events: ``purge_step``). The
TensorBoard writer is used only when ``tensorboard`` is importable. Nothing is created before
the first record, so a run that stops before its first step leaves no files behind.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> with MetricsLogger(path) as log:
    ...     log.write({"step": 1, "reward_mean": 0.5})
    ...     log.write({"step": 2, "reward_mean": 0.75})
    >>> truncate_after(path, 1)
    1
    >>> [row["step"] for row in read_metrics(path)]
    [1]
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, TextIO

__all__ = ["STEP_FIELDS", "MetricsLogger", "read_metrics", "truncate_after"]

#: What every training step reports.
STEP_FIELDS: tuple[str, ...] = (
    "step",
    "reward_mean",
    "clean_reward_mean",
    "entropy",
    "entropy_coef",
    "kl",
    "clip_fraction",
    "response_length",
    "filtered_groups",
    "tokens_per_s",
)


class MetricsLogger:
    """Appends step records to a JSONL file (and TensorBoard, when asked and available).

    The files are opened at the first :meth:`write`. ``purge_step`` (a resumed run's first
    step) hides TensorBoard events of that step and later ones from an earlier attempt.
    """

    def __init__(
        self,
        path: str | Path,
        tensorboard_dir: str | Path | None = None,
        purge_step: int | None = None,
    ) -> None:
        self.path = Path(path)
        self._file: TextIO | None = None
        self._closed = False
        self._tensorboard_dir = tensorboard_dir
        self._purge_step = purge_step
        self._writer_class: Any = None
        self.tensorboard: Any = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as error:
                warnings.warn(
                    f"run.tensorboard is set but TensorBoard cannot be used ({error}); "
                    "metrics go to the JSONL file only (pip install 'arenagym[tensorboard]')",
                    stacklevel=2,
                )
            else:
                self._writer_class = SummaryWriter

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` (must have ``step``); NaN/inf become ``null``."""
        if self._closed:
            raise ValueError(f"{self.path}: the metrics logger is closed")
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()
        }
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (see close())
            if self._writer_class is not None:
                self.tensorboard = self._writer_class(
                    str(self._tensorboard_dir), purge_step=self._purge_step
                )
        self._file.write(json.dumps(clean, sort_keys=False) + "\n")
        self._file.flush()
        if self.tensorboard is not None:
            for key, value in clean.items():
                if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                    self.tensorboard.add_scalar(f"train/{key}", value, record["step"])
            self.tensorboard.flush()

    def close(self) -> None:
        """Close the files (idempotent)."""
        self._closed = True
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics file; a malformed line raises naming the file and line."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error})") from None
    return rows


def truncate_after(path: str | Path, step: int) -> int:
    """Drop the records of steps after ``step`` (and any torn last line); how many went."""
    path = Path(path)
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if int(row.get("step", 0)) <= step:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
    return dropped
