"""Training reports: the curves of a run's ``metrics.jsonl`` as one HTML page and a PNG per metric.

``arenagym report RUN_DIR`` (:func:`write_report`) reads what a run wrote and writes
``RUN_DIR/report/``:

* **a training run** (a folder with ``metrics.jsonl``, as :class:`~arenagym.trainers.trainer.
  Trainer` writes it): one curve per metric the file holds, against the step: reward and clean
  reward, entropy, response length, KL, clip fraction, tokens/s, step time, and whatever else is
  there (an eval accuracy, the learning rate, ...). Every numeric field present in at least one
  line is a metric; a field whose value is an object of numbers (``stop_reasons``) is one chart
  with a line per key. Strings and booleans are not curves and are left out. ``report/`` then
  holds ``index.html`` and ``<metric>.png`` for each metric.
* **a DFC run** (a folder with the ``report.json`` of :func:`~arenagym.trainers.dfc.run_dfc`):
  the groups with their base win rates, the win rate of every evaluated model per stage and group
  (a table and a chart), every game's scores, and for each stage its training runs
  (``stages/<k>-<group>/specialist/run`` and ``.../conquer/run``) with their curves, whose PNGs go
  in ``report/stages/<k>-<group>/<specialist|conquer>/<metric>.png``.

The HTML page is self-contained: every chart is a PNG embedded as a ``data:`` URI and the styles
are inline, so it opens offline, attached to a mail or copied anywhere. ``report/`` is rewritten
as a whole each time (built beside it, then swapped in), so no chart of an earlier report stays.

Why matplotlib: it is already the project's plotting dependency (the ``plots`` and ``train``
extras; the experiment scripts draw with it), it renders offline with no browser or server, and
it writes both PNG and SVG from the same figure.

Bad input is a :class:`ReportError` that names the file, the line and the field: a folder that is
neither kind of run, a ``metrics.jsonl`` line that is not a JSON object, has no integer
``step``, repeats or goes back a step, or changes a field's kind (a number on one line, a
string on another); a ``report.json`` without the keys it should have.

Example:
    >>> import json, pathlib, tempfile
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> lines = [{"step": 1, "reward_mean": 0.1, "kl": None, "stop_reasons": {"solved": 2}},
    ...          {"step": 2, "reward_mean": 0.4, "kl": 0.02, "stop_reasons": {"solved": 3}}]
    >>> _ = (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\\n" for x in lines))
    >>> curves = read_curves(run / "metrics.jsonl")
    >>> [(c.name, c.steps, c.values) for c in curves if not c.series]
    [('reward_mean', [1, 2], [0.1, 0.4]), ('kl', [1, 2], [None, 0.02])]
    >>> index = write_report(run)
    >>> sorted(p.name for p in index.parent.iterdir())
    ['index.html', 'kl.png', 'reward_mean.png', 'stop_reasons.png']
    >>> _ = (run / "metrics.jsonl").write_text('{"step": 1}\\n{"step": "two"}\\n')
    >>> read_curves(run / "metrics.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    arenagym.trainers.report.ReportError: .../metrics.jsonl:2: field 'step': expected ...
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "KNOWN_METRICS",
    "Curve",
    "ReportError",
    "command",
    "read_curves",
    "read_dfc_report",
    "write_report",
]

#: Metrics the trainer writes, in the order the report shows them, with their titles. Any other
#: numeric field follows in the order it first appears in the file.
KNOWN_METRICS: dict[str, str] = {
    "reward_mean": "reward (mean over episodes)",
    "clean_reward_mean": "clean reward (mean over episodes)",
    "eval_accuracy": "accuracy on eval episodes",
    "eval_reward_mean": "reward on eval episodes",
    "entropy": "entropy (nats per token)",
    "entropy_coef": "entropy coefficient",
    "response_length": "response length (tokens)",
    "kl": "KL to the reference model",
    "clip_fraction": "clip fraction",
    "tokens_per_s": "generated tokens per second",
    "step_s": "step time (s)",
    "rollout_s": "rollout time (s)",
    "update_s": "update time (s)",
    "loss": "loss",
    "policy_loss": "policy loss",
    "grad_norm": "gradient norm",
    "lr": "learning rate",
}

REPORT_DIR = "report"
METRICS_FILE = "metrics.jsonl"
DFC_REPORT_FILE = "report.json"
#: The training runs of a DFC stage, in the order they run.
DFC_RUN_KINDS: tuple[str, ...] = ("specialist", "conquer")


class ReportError(ValueError):
    """The folder is not a run, or a file of it is malformed; the message names the file, the
    line and the field."""


@dataclass
class Curve:
    """One metric of a run against the step: ``values[i]`` at ``steps[i]`` (``None``: not
    reported at that step). ``series`` holds an object-valued metric's lines by key
    (``stop_reasons``: one per stop reason), each aligned with ``steps`` too."""

    name: str
    steps: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """What the chart is called: the known metric's title, else its name."""
        return KNOWN_METRICS.get(self.name, self.name)

    @property
    def points(self) -> int:
        """How many values the curve has (over every line, for an object-valued metric)."""
        lines = list(self.series.values()) if self.series else [self.values]
        return sum(v is not None for line in lines for v in line)


# --------------------------------------------------------------------------- reading


def _kind(value: Any) -> str | None:
    """``"number"``, ``"object"`` (of numbers), ``"text"``, ``"boolean"``, ``"other"`` (a list, a
    mixed object), or ``None`` for null. Only numbers and objects of numbers are curves."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict) and all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool))
        for v in value.values()
    ):
        return "object"
    return "other"


_KIND_WORDS = {
    "number": "a number",
    "object": "an object of numbers",
    "text": "a string",
    "boolean": "true or false",
    "other": "a list or an object of mixed values",
}


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def read_curves(path: str | Path) -> list[Curve]:
    """Every metric of a ``metrics.jsonl`` file as a :class:`Curve`, known metrics first
    (:data:`KNOWN_METRICS` order), then the others in the order they first appear.

    A malformed line raises :class:`ReportError` naming the file, the line and the field. NaN
    and infinite values (and ``null``) are gaps in the curve; a metric with no value at all
    (``kl`` of a run without a reference model, always ``null``) is still listed, as an empty
    curve, so that the report can say it was never measured.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read it ({error})") from None
    records: list[tuple[int, dict[str, Any]]] = []
    kinds: dict[str, tuple[str, int]] = {}  # field -> (kind, first line with a value)
    previous_step: tuple[int, int] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReportError(
                f"{where}: not valid JSON ({error.msg} at column {error.colno})"
            ) from None
        except (ValueError, RecursionError):  # too long a number, or nested too deeply
            raise ReportError(f"{where}: not valid JSON (too deeply nested or too long)") from None
        if not isinstance(record, dict):
            raise ReportError(f"{where}: expected a JSON object, got {type(record).__name__}")
        step = record.get("step")
        if "step" not in record:
            raise ReportError(f"{where}: field 'step' is missing")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ReportError(
                f"{where}: field 'step': expected an integer >= 0, got {json.dumps(step)}"
            )
        if previous_step is not None and step <= previous_step[0]:
            raise ReportError(
                f"{where}: field 'step': step {step} comes after step {previous_step[0]} (line "
                f"{previous_step[1]}); steps must increase (a resumed run drops later steps)"
            )
        previous_step = (step, number)
        for name, value in record.items():
            if name == "step":
                continue
            kind = _kind(value)
            if kind is None:
                continue
            if isinstance(value, float) and not math.isfinite(value):
                continue
            seen = kinds.setdefault(name, (kind, number))
            if seen[0] != kind:
                raise ReportError(
                    f"{where}: field {name!r}: expected {_KIND_WORDS[seen[0]]} as on line "
                    f"{seen[1]}, got {json.dumps(value)[:80]}"
                )
        records.append((step, record))
    if not records:
        raise ReportError(f"{path}: holds no steps (an empty metrics file)")
    # metrics that are always null are listed too (empty curves)
    for _, record in records:
        for name, value in record.items():
            if name != "step" and value is None and name not in kinds:
                kinds[name] = ("number", 0)
    names = [n for n in KNOWN_METRICS if n in kinds] + [n for n in kinds if n not in KNOWN_METRICS]
    curves = []
    for name in names:
        kind = kinds[name][0]
        if kind not in ("number", "object"):  # strings, booleans, lists: not curves
            continue
        curve = Curve(name, steps=[step for step, _ in records])
        if kind == "number":
            curve.values = [
                _number(r.get(name)) if _kind(r.get(name)) == "number" else None for _, r in records
            ]
        else:
            keys: list[str] = []
            for _, record in records:
                value = record.get(name)
                if isinstance(value, dict):
                    keys += [k for k in value if k not in keys]
            for key in sorted(keys):
                curve.series[key] = [
                    _number(r[name].get(key, 0)) if isinstance(r.get(name), dict) else None
                    for _, r in records
                ]
        curves.append(curve)
    return curves


def _require(mapping: Any, key: str, kinds: tuple[type, ...], where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ReportError(f"{where}: field {key!r} is missing")
    value = mapping[key]
    if not isinstance(value, kinds) or isinstance(value, bool):
        names = " or ".join(_JSON_NAMES.get(t, t.__name__) for t in kinds)
        raise ReportError(f"{where}: field {key!r}: expected {names}, got {json.dumps(value):.80}")
    return value


_JSON_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
}


def read_dfc_report(path: str | Path) -> dict[str, Any]:
    """The ``report.json`` of a DFC run, checked for what the report needs: ``groups``
    (``name``, ``tasks``), ``stages`` (``stage``, ``group``), ``scores`` (model -> game ->
    ``win_rate``, ``reward``); a missing or mistyped field raises :class:`ReportError` naming
    the file and the field."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    except (ValueError, RecursionError):  # too long a number, or nested too deeply
        raise ReportError(f"{path}: not valid JSON (too deeply nested or too long)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read it ({error})") from None
    if not isinstance(report, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(report).__name__}")
    for i, group in enumerate(_require(report, "groups", (list,), str(path))):
        where = f"{path}: groups[{i}]"
        _require(group, "name", (str,), where)
        _require(group, "tasks", (list,), where)
    for i, stage in enumerate(_require(report, "stages", (list,), str(path))):
        where = f"{path}: stages[{i}]"
        _require(stage, "stage", (int,), where)
        _require(stage, "group", (str,), where)
    scores = _require(report, "scores", (dict,), str(path))
    if "base" not in scores:
        raise ReportError(f"{path}: field 'scores': has no 'base' model")
    for model in scores:
        for label, score in _require(scores, model, (dict,), f"{path}: scores").items():
            where = f"{path}: scores[{model!r}][{label!r}]"
            _require(score, "win_rate", (int, float), where)
            _require(score, "reward", (int, float), where)
    return report


# --------------------------------------------------------------------------- plotting


class _Figures:
    """Makes matplotlib figures without pyplot: no global state, no backend switch, so the
    report can be drawn from any thread or inside a notebook without touching its plots."""

    def __init__(self, figure_class: Any) -> None:
        self._figure_class = figure_class

    def subplots(self, figsize: tuple[float, float]) -> tuple[Any, Any]:
        """A new figure and its one axes."""
        figure = self._figure_class(figsize=figsize)
        return figure, figure.subplots()

    def close(self, figure: Any) -> None:
        """Let go of ``figure`` (nothing to do without pyplot's registry)."""
        figure.clear()


def _pyplot() -> _Figures:
    """The figure factory, or a :class:`ReportError` that says what to install."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError(
            "the report draws its charts with matplotlib, which is not installed: "
            "pip install 'arenagym[plots]'"
        ) from None
    return _Figures(Figure)


def _file_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "metric"
    candidate, n = base, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate.lower())
    return candidate + ".png"


def _save(plt: Any, figure: Any, path: Path) -> str:
    """Write ``figure`` as a PNG to ``path``; the PNG as base64 for the page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    data = buffer.getvalue()
    path.write_bytes(data)
    return base64.b64encode(data).decode("ascii")


def _plot_curve(plt: Any, curve: Curve, path: Path, context: str = "") -> str:
    figure, axes = plt.subplots(figsize=(6.4, 3.6))
    lines = curve.series or {curve.name: curve.values}
    few = len(curve.steps) <= 40
    for label, values in lines.items():
        xs = [s for s, v in zip(curve.steps, values, strict=True) if v is not None]
        ys = [v for v in values if v is not None]
        axes.plot(xs, ys, marker="o" if few else None, markersize=3, linewidth=1.5, label=label)
    if curve.series:
        axes.legend(fontsize=8, loc="best")
    if not curve.points:
        axes.text(
            0.5,
            0.5,
            "no value at any step",
            ha="center",
            va="center",
            transform=axes.transAxes,
            color="gray",
        )
    axes.set_title(f"{context}{curve.title}", fontsize=11)
    axes.set_xlabel("step")
    axes.set_ylabel(curve.name)
    axes.grid(True, alpha=0.3)
    return _save(plt, figure, path)


# --------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figure img { max-width: 520px; width: 100%; border: 1px solid #eee; }
.note { color: #666; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(c)}</td>' if i >= numeric_from else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n{body}\n</body></html>\n"
    )


def _figure(anchor: str, title: str, png: str, file: str) -> str:
    return (
        f'<figure id="{_e(anchor)}" class="metric"><img alt="{_e(title)}" '
        f'src="data:image/png;base64,{png}"><figcaption>{_e(title)} '
        f"(<code>{_e(file)}</code>)</figcaption></figure>"
    )


def _run_section(
    plt: Any, metrics: Path, out: Path, relative_to: Path, anchor: str, context: str = ""
) -> str:
    """The curves of one training run: a summary table and a chart per metric, PNGs in ``out``."""
    curves = read_curves(metrics)
    out.mkdir(parents=True, exist_ok=True)
    rows, figures, taken = [], [], set()
    for curve in curves:
        file = _file_name(curve.name, taken)
        png = _plot_curve(plt, curve, out / file, context)
        rel = (out / file).relative_to(relative_to).as_posix()
        figures.append(_figure(f"{anchor}metric-{curve.name}", curve.title, png, rel))
        if curve.series:

            def at(index: int, series: dict[str, list[float | None]] = curve.series) -> str:
                return ", ".join(f"{k}: {_fmt(v[index])}" for k, v in series.items())

            rows.append((curve.name, at(0), at(-1), "", ""))
        else:
            present = [v for v in curve.values if v is not None]
            rows.append(
                (
                    curve.name,
                    _fmt(present[0] if present else None),
                    _fmt(present[-1] if present else None),
                    _fmt(min(present) if present else None),
                    _fmt(max(present) if present else None),
                )
            )
    steps = curves[0].steps if curves else []
    info = f"{len(steps)} step(s), {steps[0]}..{steps[-1]}" if steps else "no steps"
    return (
        f'<p class="note">{_e(metrics)}: {_e(info)}, {len(curves)} metric(s)</p>\n'
        + _table(("metric", "first", "last", "min", "max"), rows)
        + '\n<div class="grid">'
        + "\n".join(figures)
        + "</div>\n"
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _dfc_body(plt: Any, run_dir: Path, report: dict[str, Any], out: Path) -> str:
    scores: dict[str, dict[str, dict[str, float]]] = report["scores"]
    groups: list[dict[str, Any]] = report["groups"]
    stages: list[dict[str, Any]] = report["stages"]
    final = report.get("final")
    stage_of = {"base": 0}
    for stage in stages:
        for name in (stage.get("models") or {}).values():
            stage_of[name] = stage["stage"]
    models = list(scores)
    parts: list[str] = []
    method = report.get("method") or {}
    if method:
        parts.append(
            "<h2>Method</h2>"
            + _table(("setting", "value"), [(k, json.dumps(v)) for k, v in method.items()], 9)
        )
    # groups
    rows = []
    for k, group in enumerate(groups, 1):
        for label in group["tasks"]:
            rate = (group.get("base_win_rate") or {}).get(
                label, scores["base"].get(label, {}).get("win_rate")
            )
            rows.append((k, group["name"], label, group.get("start") or "-", _fmt(rate)))
    parts.append(
        "<h2>Groups</h2>"
        + _table(("stage", "group", "game", "start", "base win rate"), rows, 4)
        + "".join(f'<p class="note">{_e(n)}</p>' for n in report.get("notes") or [])
    )

    # win rate per model (stage) and group
    def group_rate(model: str, group: dict[str, Any]) -> float | None:
        return _mean([scores[model][t]["win_rate"] for t in group["tasks"] if t in scores[model]])

    rows = []
    for model in models:
        overall = _mean([s["win_rate"] for s in scores[model].values()])
        reward = _mean([s["reward"] for s in scores[model].values()])
        shown = f"{model} (final)" if model == final else model
        rows.append(
            (
                stage_of.get(model, ""),
                shown,
                *[_fmt(group_rate(model, g)) for g in groups],
                _fmt(overall),
                _fmt(reward),
            )
        )
    figure, axes = plt.subplots(figsize=(7.5, 3.8))
    xs = list(range(len(models)))
    for group in groups:
        ys = [group_rate(m, group) for m in models]
        axes.plot(
            [x for x, y in zip(xs, ys, strict=True) if y is not None],
            [y for y in ys if y is not None],
            marker="o",
            label=group["name"],
        )
    overall_line = [_mean([s["win_rate"] for s in scores[m].values()]) for m in models]
    axes.plot(
        xs,
        [y if y is not None else math.nan for y in overall_line],
        marker="s",
        color="black",
        linestyle="--",
        label="all",
    )
    axes.set_xticks(xs, models, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("win rate")
    axes.set_ylim(-0.05, 1.05)
    axes.set_title("win rate by stage and group")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    png = _save(plt, figure, out / "win_rate_by_stage.png")
    parts.append(
        "<h2>Win rate by stage and group</h2>"
        + _table(("stage", "model", *[g["name"] for g in groups], "all", "mean reward"), rows, 2)
        + _figure("dfc-win-rate", "win rate by stage and group", png, "win_rate_by_stage.png")
    )
    # every game
    labels = list(scores["base"])
    rows = [
        (label, *[_fmt(scores[m].get(label, {}).get("win_rate")) for m in models])
        for label in labels
    ]
    parts.append("<h2>Every game (win rate)</h2>" + _table(("game", *models), rows))
    # stages
    for stage in stages:
        k = stage["stage"]
        found = sorted((run_dir / "stages").glob(f"{k}-*"))
        stage_dir = found[0] if found else run_dir / "stages" / str(k)
        section = [f'<h2 id="stage-{k}">Stage {k}: {_e(stage["group"])}</h2>']
        facts = []
        for kind in ("specialist", "fused", "conquer"):
            entry = stage.get(kind)
            if isinstance(entry, dict):
                what = ", ".join(
                    f"{key}={json.dumps(entry[key])}"
                    for key in ("steps", "tasks", "method", "weights")
                    if key in entry
                )
                facts.append((kind, what))
        if facts:
            section.append(_table(("part", "what"), facts, 9))
        stage_models = [m for m in (stage.get("models") or {}).values() if m in scores]
        if stage_models:
            rows = [
                (
                    m,
                    *[_fmt(group_rate(m, g)) for g in groups],
                    _fmt(_mean([s["win_rate"] for s in scores[m].values()])),
                )
                for m in stage_models
            ]
            section.append(
                "<h3>Scores</h3>" + _table(("model", *[g["name"] for g in groups], "all"), rows)
            )
        for kind in DFC_RUN_KINDS:
            metrics = stage_dir / kind / "run" / METRICS_FILE
            if not isinstance(stage.get(kind), dict):
                continue
            section.append(f"<h3>{_e(kind.capitalize())} training run</h3>")
            if metrics.is_file():
                section.append(
                    _run_section(
                        plt,
                        metrics,
                        out / "stages" / stage_dir.name / kind,
                        out,
                        f"stage-{k}-{kind}-",
                        f"stage {k} {kind}: ",
                    )
                )
            else:
                section.append(
                    f'<p class="note">no {_e(metrics.relative_to(run_dir))}: this training '
                    "run wrote no metrics (0 steps, or a trainer other than arenagym's)</p>"
                )
        parts.append("\n".join(section))
    return "\n".join(parts)


# --------------------------------------------------------------------------- writing


def write_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the report of the run in ``run_dir`` (a training run or a DFC run) into ``output``
    (default ``run_dir/report``), replacing what was there; the path of its ``index.html``.

    Raises :class:`ReportError` when ``run_dir`` is not a run or a file of it is malformed; then
    nothing is written.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such directory")
    out = Path(output) if output is not None else run_dir / REPORT_DIR
    metrics = run_dir / METRICS_FILE
    dfc = run_dir / DFC_REPORT_FILE
    if not metrics.is_file() and not dfc.is_file():
        raise ReportError(
            f"{run_dir}: not a run: no {METRICS_FILE} (a training run) and no "
            f"{DFC_REPORT_FILE} (a DFC run)"
            + (
                "; its stages/ hold a DFC run that has not finished: report one stage's "
                "training run (stages/<k>-<group>/specialist/run)"
                if (run_dir / "stages").is_dir()
                else ""
            )
        )
    plt = _pyplot()
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        if dfc.is_file():
            report = read_dfc_report(dfc)
            body = _dfc_body(plt, run_dir, report, staging)
            title = f"DFC run {run_dir.resolve().name}"
        else:
            body = _run_section(plt, metrics, staging, staging, "")
            title = f"Training run {run_dir.resolve().name}"
        (staging / "index.html").write_text(_page(title, body), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out / "index.html"


def command(args: argparse.Namespace) -> int:
    """``arenagym report RUN_DIR [-o DIR]``: write the report and print where it is."""
    index = write_report(args.run_dir, args.output)
    pngs = sum(1 for _ in index.parent.rglob("*.png"))
    print(f"wrote {index} ({pngs} chart(s), also as PNG files in {index.parent})")
    return 0
