"""Runs that never lose or mix data: output folders, resuming, task lists, failed steps.

**Output folders.** A run's own files in its output folder are the checkpoints
(``checkpoints/step-*``, including a ``.tmp`` one being written), ``metrics.jsonl``, the
TensorBoard event files (``tensorboard/events.out.tfevents.*``) and the offline pass-rate
filter's ``pass_rate_filter.json``: :func:`run_files`. Training
into a folder that holds them needs ``resume`` (continue that run) or ``overwrite`` (delete
exactly those files first, :func:`delete_run`); without either, :func:`check_output_dir` refuses
and names the folder, what is in it, and both flags. Nothing else in the folder is ever touched.

**Resuming.** A resumed run must share the run-defining fields (:data:`RUN_DEFINING`) with the
config saved in the checkpoint: the model directory, the whole ``[algorithm]`` section (the
objective), the task list (env ids, kwargs, weights: the data), the reward (source, model,
normalisation, the dual self-reward's options), the ``[data]`` filter and ``run.seed`` (task
draws and sampling continue from it). :func:`resume_differences` lists what differs;
everything else (steps, learning-rate schedule, batch sizes, budgets, device, checkpoint
cadence, logging) may change between the two parts of a run. Note that the optimizer and
scheduler states come from the checkpoint, so a new ``optim.lr`` does not take effect on
resume.

**Task lists.** :func:`import_config_modules` imports the config's ``imports`` (packages that
register their own env ids) and :func:`validate_tasks` checks every ``[[tasks]]`` entry before
the first step: its env id is registered (close matches are suggested) and the env builds with
its kwargs (each distinct entry is built once and closed). Both name modules the one way
:mod:`arenagym.envs.core.loading` does.

**Failed steps.** :func:`check_episodes` raises :class:`EpisodesFailedError` when every episode of
a step ended in ``env_error``: the env is broken, and training on would only skip updates.

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (out / "metrics.jsonl").write_text('{"step": 1}\\n')
    >>> _ = (out / "notes.txt").write_text("mine")
    >>> check_output_dir(out, resume=False, overwrite=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    arenagym.trainers.runs.RunConflictError: ... holds a run (metrics.jsonl with 1 step); ...
    >>> [p.name for p in delete_run(out)], sorted(p.name for p in out.iterdir())
    (['metrics.jsonl'], ['notes.txt'])
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arenagym.trainers.config import TrainConfig

__all__ = [
    "RUN_DEFINING",
    "EpisodesFailedError",
    "RunConflictError",
    "check_episodes",
    "check_output_dir",
    "check_resume",
    "delete_run",
    "describe_run",
    "import_config_modules",
    "resume_differences",
    "run_files",
    "validate_tasks",
]

CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
PASS_RATES = "pass_rate_filter.json"  # the offline pass-rate filter's measurement
_CHECKPOINT = re.compile(r"step-\d+(\.tmp)?")
_EVENTS = "events.out.tfevents."

#: The config fields a resumed run must share with its checkpoint (``algorithm``: every key).
RUN_DEFINING: tuple[str, ...] = (
    "model.path",
    "algorithm",
    "tasks",
    "reward.source",
    "reward.model",
    "reward.normalize",
    "reward.dual_normalize",
    "reward.dual_group_standardize",
    "reward.dual_mix",
    "data",
    "run.seed",
)


class RunConflictError(ValueError):
    """The output folder holds another run, or a resumed run differs from its checkpoint."""


class EpisodesFailedError(RuntimeError):
    """Every episode of a step failed; ``traceback`` is the first failure's traceback."""

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.traceback = traceback


# --------------------------------------------------------------------------- output folders


def run_files(output_dir: str | Path) -> list[Path]:
    """The files and checkpoint folders of the run in ``output_dir`` (empty: no run there).

    An empty ``metrics.jsonl`` (a run stopped before its first step) holds no run.
    """
    out = Path(output_dir)
    found: list[Path] = []
    checkpoints = out / CHECKPOINTS
    if checkpoints.is_dir():
        found += sorted(
            p for p in checkpoints.iterdir() if p.is_dir() and _CHECKPOINT.fullmatch(p.name)
        )
    metrics = out / METRICS
    if metrics.is_file() and _metric_steps(metrics):
        found.append(metrics)
    tensorboard = out / TENSORBOARD
    if tensorboard.is_dir():
        found += sorted(
            p for p in tensorboard.iterdir() if p.is_file() and p.name.startswith(_EVENTS)
        )
    if (out / PASS_RATES).is_file():
        found.append(out / PASS_RATES)
    return found


def describe_run(output_dir: str | Path, files: Sequence[Path] | None = None) -> str:
    """What a run left in ``output_dir``, in a few words (for messages).

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp())
        >>> for step in (4, 6):
        ...     (out / "checkpoints" / f"step-00000{step}").mkdir(parents=True)
        >>> describe_run(out)
        'checkpoints step-000004, step-000006'
    """
    out = Path(output_dir)
    files = run_files(out) if files is None else files
    checkpoints = [p.name for p in files if p.parent.name == CHECKPOINTS]
    parts = []
    if checkpoints:
        shown = checkpoints if len(checkpoints) <= 3 else [checkpoints[0], "...", checkpoints[-1]]
        parts.append(f"{CHECKPOINTS} {', '.join(shown)}")
    if out / METRICS in files:
        steps = _metric_steps(out / METRICS)
        parts.append(f"{METRICS} with {steps} step{'s' if steps != 1 else ''}")
    events = sum(p.parent.name == TENSORBOARD for p in files)
    if events:
        parts.append(f"{TENSORBOARD}/ with {events} event file{'s' if events != 1 else ''}")
    if out / PASS_RATES in files:
        parts.append(PASS_RATES)
    return ", ".join(parts)


def check_output_dir(
    output_dir: str | Path,
    *,
    resume: bool,
    overwrite: bool,
    flags: tuple[str, str] = ("resume=True", "overwrite=True"),
) -> list[Path]:
    """The run files in ``output_dir``; :class:`RunConflictError` if there are some and neither
    ``resume`` nor ``overwrite`` is set. ``flags`` names the two options in the message."""
    resume_flag, overwrite_flag = flags
    if resume and overwrite:
        raise ValueError(f"{resume_flag} and {overwrite_flag} exclude each other: pick one")
    files = run_files(output_dir)
    if files and not (resume or overwrite):
        raise RunConflictError(
            f"{output_dir} holds a run ({describe_run(output_dir, files)}); pass {resume_flag} "
            f"to continue it, or {overwrite_flag} to delete those files and start a new run "
            "(nothing else in the folder is touched), or choose another output folder"
        )
    return files


def delete_run(output_dir: str | Path) -> list[Path]:
    """Delete the run files of ``output_dir`` (:func:`run_files`) and nothing else; the
    ``checkpoints/`` and ``tensorboard/`` folders go too when that leaves them empty. Returns
    what was deleted."""
    out = Path(output_dir)
    files = run_files(out)
    metrics = out / METRICS
    if metrics.is_file() and metrics not in files:  # an empty one: not a run, but the run's file
        files.append(metrics)
    for path in files:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    for folder in (out / CHECKPOINTS, out / TENSORBOARD):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return files


def _metric_steps(path: Path) -> int:
    """How many training steps ``metrics.jsonl`` records: its lines, less the step-0 line an
    evaluation before the first step writes (a line that is not JSON still counts as a step)."""
    steps = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # a broken line is still a step
                record = None
            steps += not (isinstance(record, dict) and record.get("step") == 0)
    return steps


# --------------------------------------------------------------------------- resuming


def resume_differences(saved: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``field: checkpoint X vs new Y`` for each run-defining field (:data:`RUN_DEFINING`)
    where the saved config and the new one (both ``TrainConfig.to_dict()``) differ. A field
    the saved config lacks (written by an older version) is not compared.

    Example:
        >>> saved = {"algorithm": {"name": "grpo", "clip_low": 0.2}, "run": {"seed": 0}}
        >>> resume_differences(saved, {"algorithm": {"name": "rloo", "clip_low": 0.2},
        ...                            "run": {"seed": 0}})
        ["algorithm.name: checkpoint 'grpo' vs new 'rloo'"]
    """
    saved, new = _plain(saved), _plain(new)
    out = []
    for name in RUN_DEFINING:
        section, _, key = name.partition(".")
        if section not in saved:
            continue
        old_value, new_value = saved[section], new.get(section)
        if section == "tasks":
            if _task_labels(old_value) != _task_labels(new_value):
                out.append(
                    f"tasks: checkpoint [{', '.join(_task_labels(old_value))}] "
                    f"vs new [{', '.join(_task_labels(new_value))}]"
                )
            continue
        if not isinstance(old_value, dict):
            continue
        new_section = new_value if isinstance(new_value, dict) else {}
        keys = [key] if key else list(old_value)
        for item in keys:
            if item not in old_value:
                continue
            a, b = old_value[item], new_section.get(item)
            if name == "model.path" and a and b and _same_path(str(a), str(b)):
                continue
            if a != b:
                out.append(f"{section}.{item}: checkpoint {a!r} vs new {b!r}")
    return out


def check_resume(
    checkpoint: str | Path,
    new: Mapping[str, Any],
    overwrite_flag: str = "overwrite=True",
) -> None:
    """:class:`RunConflictError` listing the differences if the config ``new`` (a
    ``to_dict()``) may not continue ``checkpoint`` (see :func:`resume_differences`)."""
    from arenagym.trainers.checkpoint import STATE_FILE

    checkpoint = Path(checkpoint)
    try:
        state = json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:  # unreadable, bad, too deep JSON
        raise RunConflictError(
            f"{checkpoint}: cannot read {STATE_FILE} ({type(error).__name__}: {error})"
        ) from None
    saved = state.get("config") if isinstance(state, dict) else None
    if not isinstance(saved, dict):
        return
    differences = resume_differences(saved, new)
    if differences:
        raise RunConflictError(
            f"cannot resume {checkpoint}: it was trained with another run-defining config "
            f"({'; '.join(differences)}); resume with the checkpoint's values, or train into "
            f"another output folder, or pass {overwrite_flag} to replace that run"
        )


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-normalised (tuples -> lists, ...), as a checkpoint stores it."""
    return json.loads(json.dumps(dict(data), default=repr))


def _same_path(a: str, b: str) -> bool:
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


def _task_labels(tasks: Any) -> list[str]:
    if not isinstance(tasks, list):
        return [repr(tasks)]
    labels = []
    for task in tasks:
        if not isinstance(task, dict):
            labels.append(repr(task))
            continue
        label = str(task.get("env_id"))
        if task.get("kwargs"):
            label += " " + json.dumps(task["kwargs"], sort_keys=True)
        if task.get("weight", 1.0) != 1.0:
            label += f" x{task['weight']}"
        labels.append(label)
    return labels


# --------------------------------------------------------------------------- task lists


def import_config_modules(config: TrainConfig) -> None:
    """Import the modules of ``config.imports`` (packages that register their own env ids);
    raise :class:`~arenagym.trainers.config.ConfigError` naming ``config.source`` and the module
    that does not import.

    Example:
        >>> from arenagym.trainers.config import TrainConfig
        >>> import_config_modules(TrainConfig(imports=["json"]))
        >>> import_config_modules(TrainConfig(imports=["no_such_module_xyz"], source="run.toml"))
        Traceback (most recent call last):
        ...
        arenagym.trainers.config.ConfigError: run.toml: import 'no_such_module_xyz': cannot import it (No module named 'no_such_module_xyz')
    """
    from arenagym.envs.core.loading import LoadError, import_modules
    from arenagym.trainers.config import ConfigError

    try:
        import_modules(config.imports, what="import")
    except LoadError as error:
        raise ConfigError(f"{config.source}: {error}") from None


def validate_tasks(tasks: Sequence[Any], source: str = "config") -> None:
    """Raise :class:`~arenagym.trainers.config.ConfigError` naming ``source`` and the entry
    (``tasks[i]``) for an env id that is not registered (with close matches) or an env that
    does not build with its kwargs. Each distinct entry is built once and closed.

    Example:
        >>> from arenagym.trainers.config import TaskConfig
        >>> validate_tasks([TaskConfig("Math-v0")], "run.toml")
        >>> validate_tasks([TaskConfig("Mth-v0")], "run.toml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        arenagym.trainers.config.ConfigError: run.toml: tasks[0]: env_id 'Mth-v0' ...
        (did you mean 'Math-v0'?...)...
    """
    import gymnasium as gym

    import arenagym.envs  # noqa: F401  (registers every arenagym env id)
    from arenagym.envs.core.loading import LoadError, import_modules
    from arenagym.trainers.config import ConfigError

    built: set[str] = set()
    for index, task in enumerate(tasks):
        where = f"{source}: tasks[{index}]"
        env_id, kwargs = str(task.env_id), dict(task.kwargs)
        key = json.dumps([env_id, kwargs], sort_keys=True, default=repr)
        if key in built:
            continue
        module, _, name = env_id.rpartition(":")
        if module:  # gym.make's "module:Name-v0": the module registers the id
            try:
                import_modules([module], what="module")
            except LoadError as error:
                raise ConfigError(f"{where}: env_id {env_id!r}: {error}") from None
        try:
            spec = gym.spec(name)
        except gym.error.Error:
            raise ConfigError(
                f"{where}: env_id {env_id!r} is not a registered env{_suggest(name, gym)}; "
                "`arenagym list` shows every id (a package that registers its own ids goes in "
                "the config's imports = [...])"
            ) from None
        try:
            env = gym.make(env_id, **kwargs)
        except Exception as error:  # any failure to build is the entry's fault
            raise ConfigError(
                f"{where}: {env_id} does not build with kwargs {kwargs}: "
                f"{type(error).__name__}: {_first_line(error)}{_accepted(spec, kwargs)}"
            ) from None
        with contextlib.suppress(Exception):  # closing a fresh env is not the config's problem
            env.close()
        built.add(key)


def _suggest(name: str, gym: Any) -> str:
    ids = list(gym.registry)
    by_lower = {i.lower(): i for i in ids}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=2, cutoff=0.75)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?)"


def _accepted(spec: Any, kwargs: Mapping[str, Any]) -> str:
    """``; accepted kwargs: a, b`` (with a close match for unknown ones) where knowable."""
    try:
        from gymnasium.envs.registration import load_env_creator

        creator = spec.entry_point
        if isinstance(creator, str):
            creator = load_env_creator(creator)
        parameters = inspect.signature(creator).parameters.values()
    except Exception:
        return ""
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return ""
    names = [
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name != "self"
    ]
    hints = []
    for key in kwargs:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    unknown = f"; unknown: {', '.join(hints)}" if hints else ""
    return f"{unknown}; accepted kwargs: {', '.join(names) or 'none'}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


# --------------------------------------------------------------------------- failed steps


def check_episodes(trajectories: Sequence[Any], step: int) -> None:
    """:class:`EpisodesFailedError` with the first error if every trajectory of the step
    (``step``: 1-based, as logged) ended in ``env_error``."""
    if not trajectories or any(t.stop_reason != "env_error" for t in trajectories):
        return
    first = trajectories[0]
    raise EpisodesFailedError(
        f"step {step}: all {len(trajectories)} episodes ended in env_error, so there is nothing "
        f"to train on; first error ({first.env_id}, kwargs {first.env_kwargs}, seed "
        f"{first.seed}): {_first_line_of(first.error) or 'no error recorded'}",
        traceback=str(first.info.get("traceback", "")),
    )


def _first_line_of(text: str | None) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""
