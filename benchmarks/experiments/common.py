"""Shared pieces of the experiment scripts: arguments, seeds, run folders, statistics over seeds,
Markdown + JSON tables and PNG curves with error bands.

Every experiment script takes the same core arguments (:func:`add_common_arguments`):
``--preset`` (``smoke`` / ``cpu`` / ``gpu``), ``--out DIR``, ``--seeds``, ``--model``,
``--device`` and ``--overwrite``. A curve is measured once per seed; :func:`aggregate` turns the
per-seed curves into mean, standard deviation and a 95% confidence interval (Student's t) per
x value, :func:`plot_curves` draws the mean with a shaded ±1 std band, and :func:`write_table`
writes the same rows as ``NAME.md`` and ``NAME.json``.

Example:
    >>> parse_seeds("0,1,2"), parse_seeds("3-5"), parse_seeds("7")
    ([0, 1, 2], [3, 4, 5], [7])
    >>> s = summarize([0.2, 0.4])
    >>> round(s.mean, 3), round(s.std, 3), s.n
    (0.3, 0.141, 2)
    >>> format_stat(s)
    '0.300 ± 0.141'
    >>> stats = aggregate({0: [(0, 0.0), (5, 0.5)], 1: [(0, 0.2), (5, 0.7)]})
    >>> [(x, round(s.mean, 2)) for x, s in stats]
    [(0, 0.1), (5, 0.6)]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PRESETS",
    "Stat",
    "add_common_arguments",
    "aggregate",
    "check_fresh_runs",
    "format_stat",
    "matplotlib_pyplot",
    "parse_seeds",
    "plot_curves",
    "summarize",
    "t_critical_95",
    "write_json",
    "write_table",
]

#: The presets every experiment script offers.
PRESETS: tuple[str, ...] = ("smoke", "cpu", "gpu")

#: Two-sided 95% Student's t critical values by degrees of freedom (1..30); 1.96 beyond.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_critical_95(dof: int) -> float:
    """The two-sided 95% t critical value for ``dof`` degrees of freedom (``nan`` for 0)."""
    if dof <= 0:
        return math.nan
    return _T95[dof - 1] if dof <= len(_T95) else 1.96


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"``, ``"0-3"`` (inclusive) or a mix (``"0-2,7"``): distinct ints, in order.

    Raises ``argparse.ArgumentTypeError`` (argparse reports it as a usage error).
    """
    seeds: list[int] = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            values = range(int(low), int(high) + 1) if dash and low else [int(part)]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--seeds {text!r}: expected integers like 0,1,2 or a range like 0-2"
            ) from None
        if dash and low and int(high) < int(low):
            raise argparse.ArgumentTypeError(f"--seeds {text!r}: range {part} is empty")
        for value in values:
            if value < 0:
                raise argparse.ArgumentTypeError(f"--seeds {text!r}: seeds must be >= 0")
            if value not in seeds:
                seeds.append(value)
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: give at least one seed, e.g. 0,1")
    return seeds


def add_common_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """``--preset``, ``--out``, ``--seeds``, ``--model``, ``--device``, ``--overwrite``."""
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="cpu",
        help="smoke: seconds, plumbing only; cpu: the whole experiment on 2 CPU cores; "
        "gpu: the real model on a GPU (default: cpu)",
    )
    parser.add_argument(
        "--out", default=default_out, help=f"output folder (default: {default_out})"
    )
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        default=None,
        help="seeds of every curve, e.g. 0,1 or 0-2 (default: the preset's)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="the policy: a model directory or registry name (e.g. smollm2-135m-instruct), or a "
        "size the script builds on the spot where it offers one (default: the preset's)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, or auto (default: the preset's)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace training runs that an earlier invocation left in --out",
    )


def check_fresh_runs(run_dirs: Sequence[Path], overwrite: bool) -> str | None:
    """An error message when some of ``run_dirs`` already hold a training run and not
    ``overwrite`` (``None``: all fresh, or overwrite allowed)."""
    from arenagym.trainers.runs import run_files

    used = [str(d) for d in run_dirs if run_files(d)]
    if used and not overwrite:
        shown = ", ".join(used[:3]) + (f" and {len(used) - 3} more" if len(used) > 3 else "")
        return (
            f"{shown}: training runs of an earlier invocation; pass --overwrite to replace "
            "them, or choose another --out"
        )
    return None


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (0 for one value), 95% CI half-width (t; ``nan`` for one
    value) and count of a set of per-seed values."""

    mean: float
    std: float
    ci95: float
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready (``nan`` becomes ``None``)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def summarize(values: Sequence[float]) -> Stat:
    """The :class:`Stat` of ``values`` (``nan`` mean for none)."""
    data = [float(v) for v in values]
    if not data:
        return Stat(math.nan, math.nan, math.nan, 0)
    mean = statistics.fmean(data)
    std = statistics.stdev(data) if len(data) > 1 else 0.0
    ci = t_critical_95(len(data) - 1) * std / math.sqrt(len(data)) if len(data) > 1 else math.nan
    return Stat(mean, std, ci, len(data))


def format_stat(stat: Stat, digits: int = 3) -> str:
    """``"mean ± std"`` (just the mean for one value; ``"n/a"`` for none)."""
    if stat.n == 0 or math.isnan(stat.mean):
        return "n/a"
    if stat.n == 1:
        return f"{stat.mean:.{digits}f}"
    return f"{stat.mean:.{digits}f} ± {stat.std:.{digits}f}"


def aggregate(
    curves: Mapping[int, Sequence[tuple[float, float | None]]],
) -> list[tuple[float, Stat]]:
    """Per-seed curves ``{seed: [(x, y), ...]}`` -> ``[(x, Stat over seeds), ...]`` by x.

    Points with ``y is None`` (not measured) are left out of that x's statistics.
    """
    by_x: dict[float, list[float]] = {}
    for points in curves.values():
        for x, y in points:
            if y is not None and not (isinstance(y, float) and math.isnan(y)):
                by_x.setdefault(x, []).append(float(y))
    return [(x, summarize(values)) for x, values in sorted(by_x.items())]


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (``nan`` becomes ``null``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(data), indent=2) + "\n", encoding="utf-8")
    return path


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Stat):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_table(
    out_dir: Path,
    name: str,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "",
    notes: Sequence[str] = (),
    meta: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``rows`` as ``out_dir/NAME.md`` (a Markdown table under ``title``, then ``notes``)
    and ``out_dir/NAME.json`` (``{"title", "columns", "rows", "notes", "meta"}``).

    A cell that is a :class:`Stat` is shown as :func:`format_stat` in Markdown and stored as its
    dict in JSON; other floats are shown with 3 decimals. Returns both paths.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = [(i, c) for i, row in enumerate(rows) for c in columns if c not in row]
    if missing:
        raise ValueError(f"table {name}: row {missing[0][0]} has no column {missing[0][1]!r}")
    lines = [f"# {title}", ""] if title else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append(
        "| "
        + " | ".join(
            "---" if all(isinstance(r[c], str) for r in rows) and rows else "---:" for c in columns
        )
        + " |"
    )
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    if notes:
        lines.append("")
        lines.extend(notes)
    md = out_dir / f"{name}.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    js = write_json(
        out_dir / f"{name}.json",
        {
            "title": title,
            "columns": list(columns),
            "rows": [{c: row[c] for c in columns} for row in rows],
            "notes": list(notes),
            "meta": dict(meta or {}),
        },
    )
    return md, js


def _cell(value: Any) -> str:
    if isinstance(value, Stat):
        return format_stat(value)
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value).replace("|", "\\|")


def matplotlib_pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; ``SystemExit`` naming the install when absent."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "the experiment scripts plot with matplotlib, which is not installed: "
            "pip install 'arenagym[plots]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    path: Path,
    curves: Mapping[str, Mapping[int, Sequence[tuple[float, float | None]]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    ylim: tuple[float, float] | None = None,
    hline: tuple[float, str] | None = None,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """One PNG: for each label, the mean over seeds vs x with a shaded ±1 std band.

    ``curves`` is ``{label: {seed: [(x, y), ...]}}``; the legend says how many seeds each curve
    has. ``hline=(y, label)`` adds a dashed reference line; ``styles[label]`` are extra
    ``Axes.plot`` keyword arguments for that curve (e.g. ``{"color": "C0", "linestyle": "--"}``).
    """
    plt = matplotlib_pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    try:
        for label, per_seed in curves.items():
            stats = aggregate(per_seed)
            if not stats:
                continue
            xs = [x for x, _ in stats]
            means = [s.mean for _, s in stats]
            spread = [s.std for _, s in stats]
            seeds = max(s.n for _, s in stats)
            style = {"marker": "o", "markersize": 3, **(styles or {}).get(label, {})}
            (line,) = axis.plot(xs, means, label=f"{label} (n={seeds})", **style)
            if seeds > 1:
                axis.fill_between(
                    xs,
                    [m - d for m, d in zip(means, spread, strict=True)],
                    [m + d for m, d in zip(means, spread, strict=True)],
                    color=line.get_color(),
                    alpha=0.2,
                    linewidth=0,
                )
        if hline is not None:
            axis.axhline(hline[0], color="grey", linestyle="--", linewidth=1, label=hline[1])
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        if ylim is not None:
            axis.set_ylim(*ylim)
        if title:
            axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)
    return path


# ------------------------------------------------------------------ argument types


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value
