r"""Divide-Fuse-Conquer: group specialists fused into one model progressively, group by group.

**Source.** Zhang et al., "Divide-Fuse-Conquer: Eliciting 'Aha Moments' in Multi-Scenario Games"
(arXiv:2505.16401, 2025). The paper's own text could not be read here; this driver follows its
abstract and two public reviews of its method section (themoonlight.io, in English and Chinese):

* **Divide**: the games are split into heuristic groups, in the paper by their initial state
  (random or fixed) and by whether the base model's win rate on them is zero or not;
* **Fuse**: for the groups ``G_1 .. G_K`` in order, the model ``pi_k`` trained on ``G_k`` is
  averaged with the model of the groups before it, ``theta(pi^(k)) = 1/2 theta(pi^(k-1)) + 1/2
  theta(pi_k)``, starting from ``pi^(1) = pi_1``;
* **Conquer**: the fused model is trained on every game of the groups fused so far; fuse and
  conquer repeat until all groups are in.

What those sources leave open is a choice here, and configurable: specialist ``k`` starts from
the previous stage's model (``specialist_start = "previous"``; ``"base"`` trains each one from
the base model); the measured groups go in the order ``fixed/winnable``, ``random/winnable``,
``fixed/unwinnable``, ``random/unwinnable`` (games the base already wins first, so that RL gets
some reward; ``group_order``); the fusion weights are ``fuse_weights = [1/2, 1/2]`` (previous
model, new specialist; normalised to sum to 1).

**The driver.** With ``theta_0`` the base model and ``a, b = fuse_weights``::

    for k, G_k in enumerate(groups, 1):
        s_k     = train(start=theta_(k-1) (or the base), tasks=G_k, steps=specialist_steps)
        f_k     = s_k                                  if k == 1 and not fuse_base  (the paper)
                  (a * theta_(k-1) + b * s_k) / (a + b)   otherwise              (one merge)
        theta_k = train(start=f_k, tasks=G_1 + .. + G_k, steps=conquer_steps)
    final = theta_K

Stage 1 has nothing to fuse, so (as in the paper) its fused model is its specialist and it has no
conquer stage; ``fuse_base = true`` fuses ``s_1`` with the base instead and conquers ``G_1``.
``conquer_steps = 0`` makes ``theta_k = f_k``. Each fuse step is a shard-by-shard
:func:`~arenagym.trainers.merging.merge_checkpoints` of two models (``fuse = "linear"``; a
task-vector method such as ``"ties"`` uses ``base_model`` as its base, ``"slerp"`` interpolates
by ``b / (a + b)``).

**Groups.** Either ``[[groups]]`` lists them (fused in the listed order), or ``[[games]]`` lists
the games with their initial state (``start = "random"`` or ``"fixed"``) and the driver measures
the groups: it first plays the base model on every game (against each of ``eval_opponents`` in
two-player TextArena games, in both seats as the seed draws them) and puts a game in
``<start>/winnable`` when the base won any episode (``stop_reason`` ``won`` or ``solved``), else
in ``<start>/unwinnable``. A group that comes out empty is skipped with a logged note.

**Report.** The base, every specialist, fused and conquered model (``eval_models``) and the
final one are evaluated on every game: ``eval_episodes`` seeded episodes (env seeds
``eval_seed + i``) per opponent, giving the win rate and the mean clean reward per game.
``report.json`` and ``report.md`` (:func:`render_report`) hold the groups with each game's
measured base win rate, the stages, and the win rates per stage, model and group.

The file (``arenagym dfc FILE``, or the name of a bundled config: ``arenagym dfc dfc18`` reads
``trainers/presets/dfc/dfc18.toml``, all 18 TextArena games)::

    base_model = "models/base"          # theta_0
    train = "grpo"                      # a preset or a training-config TOML (its [[tasks]] ignored)
    overrides = ["optim.lr=1e-6"]       # --set style overrides of the training config
    output_dir = "runs/dfc"
    specialist_steps = 100
    conquer_steps = 100
    specialist_start = "previous"       # or "base"
    fuse = "linear"                     # the merge method of each fuse step
    fuse_weights = [0.5, 0.5]           # (previous model, new specialist)
    fuse_base = false                   # true: stage 1 fuses s_1 with the base and conquers
    group_order = ["fixed/winnable", "random/winnable", "fixed/unwinnable", "random/unwinnable"]
    eval_episodes = 32                  # per game and opponent
    eval_seed = 10000
    eval_max_tokens = 256               # per turn
    eval_max_turns = 100                # optional; default: the env decides
    eval_max_total_tokens = 2048        # optional completion tokens per episode
    eval_temperature = 0.0
    eval_models = ["specialist", "fused", "conquer"]

    [[eval_opponents]]                  # two-player TextArena games only
    agent = "arenagym.envs.textarena.opponents:RandomLegalOpponent"
    kwargs = { seed = 0 }

    [[games]]                           # or [[groups]] name = "..." tasks = [{ env_id = ... }]
    env_id = "TextArena/TicTacToe-v0"
    start = "fixed"

Example:
    >>> config = DFCConfig.from_dict({"base_model": "m", "games": [
    ...     {"env_id": "Math-v0", "start": "fixed"},
    ...     {"env_id": "Math-v0", "kwargs": {"difficulty": 2}, "start": "random"}]})
    >>> groups, notes = divide_by_win_rate(config.games, {
    ...     "Math-v0": {"win_rate": 0.0}, 'Math-v0{"difficulty": 2}': {"win_rate": 0.5}})
    >>> [(g.name, [task_label(t) for t in g.tasks]) for g in groups]
    [('random/winnable', ['Math-v0{"difficulty": 2}']), ('fixed/unwinnable', ['Math-v0'])]
    >>> len(notes)  # fixed/winnable and random/unwinnable came out empty
    2
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from arenagym.trainers.config import ConfigError, TaskConfig, TrainConfig, load_config
from arenagym.trainers.runs import import_config_modules

__all__ = [
    "DEFAULT_GROUP_ORDER",
    "DFCConfig",
    "DFCGame",
    "DFCGroup",
    "DFCOpponent",
    "Evaluator",
    "Scores",
    "TrainFn",
    "dfc_config_names",
    "divide_by_win_rate",
    "episode_kwargs",
    "evaluate_model",
    "fuse_models",
    "render_report",
    "run_dfc",
    "score_episodes",
    "task_label",
]

logger = logging.getLogger(__name__)

STARTS: tuple[str, ...] = ("fixed", "random")
DEFAULT_GROUP_ORDER: tuple[str, ...] = (
    "fixed/winnable",
    "random/winnable",
    "fixed/unwinnable",
    "random/unwinnable",
)
#: The stop reasons that count as a win (TextArena: ``won`` in two-player, ``solved`` in solo games).
WIN_STOP_REASONS = frozenset({"won", "solved"})
EVAL_KINDS: tuple[str, ...] = ("specialist", "fused", "conquer")
CONFIGS_PACKAGE = "arenagym.trainers"
CONFIGS_DIR = ("presets", "dfc")

#: Per task label: ``{"reward": mean clean reward, "win_rate": share of wins}``.
Scores = dict[str, dict[str, float]]
#: ``evaluate(model_name, model_dir, tasks) -> Scores``.
Evaluator = Callable[[str, Path, list[TaskConfig]], Scores]
#: ``train(start_model_dir, tasks, steps, output_dir) -> trained_model_dir``.
TrainFn = Callable[[Path, list[TaskConfig], int, Path], Path]

_RENAMED = {"final_steps": "conquer_steps (a conquer stage now follows every fuse)"}


@dataclass
class DFCGroup:
    """A named group of tasks (one specialist); ``start`` is set for measured groups."""

    name: str
    tasks: list[TaskConfig]
    start: str | None = None


@dataclass
class DFCGame:
    """A game to be grouped by the driver: its task and its initial state (random or fixed)."""

    task: TaskConfig
    start: str


@dataclass
class DFCOpponent:
    """An opponent of the evaluation of two-player TextArena games (an agent spec)."""

    agent: str
    kwargs: dict[str, Any] = field(default_factory=dict)


_SCALARS: dict[str, tuple[type, ...]] = {
    "base_model": (str,),
    "train": (str,),
    "output_dir": (str,),
    "specialist_steps": (int,),
    "conquer_steps": (int,),
    "specialist_start": (str,),
    "fuse": (str,),
    "fuse_base": (bool,),
    "eval_episodes": (int,),
    "eval_seed": (int,),
    "eval_max_tokens": (int,),
    "eval_max_turns": (int,),
    "eval_max_total_tokens": (int,),
    "eval_temperature": (int, float),
}


@dataclass
class DFCConfig:
    """The driver's settings (see the module docstring)."""

    base_model: str
    groups: list[DFCGroup] = field(default_factory=list)
    games: list[DFCGame] = field(default_factory=list)
    group_order: list[str] = field(default_factory=lambda: list(DEFAULT_GROUP_ORDER))
    train: str = "grpo"
    overrides: list[str] = field(default_factory=list)
    output_dir: str = "runs/dfc"
    specialist_steps: int = 100
    conquer_steps: int = 100
    specialist_start: str = "previous"
    fuse: str = "linear"
    fuse_weights: list[float] = field(default_factory=lambda: [0.5, 0.5])
    fuse_base: bool = False
    eval_episodes: int = 32
    eval_seed: int = 10_000
    eval_max_tokens: int = 256
    eval_max_turns: int | None = None
    eval_max_total_tokens: int | None = None
    eval_temperature: float = 0.0
    eval_opponents: list[DFCOpponent] = field(default_factory=list)
    eval_models: list[str] = field(default_factory=lambda: list(EVAL_KINDS))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dfc config>") -> DFCConfig:
        """Validate and build; every error names ``source`` and the field."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            hints = "".join(f"; {k} is now {_RENAMED[k]}" for k in sorted(unknown) if k in _RENAMED)
            raise ConfigError(
                f"{source}: unknown key(s) {sorted(unknown)}{hints}; known: {sorted(known)}"
            )
        if "base_model" not in data:
            raise ConfigError(f"{source}: base_model is required")
        for key, types in _SCALARS.items():
            if key in data and not _is_a(data[key], types):
                kind = " or ".join(t.__name__ for t in types)
                raise ConfigError(f"{source}: {key} must be {kind}, got {data[key]!r}")
        values: dict[str, Any] = {k: v for k, v in data.items() if k in _SCALARS}
        if "eval_temperature" in values:
            values["eval_temperature"] = float(values["eval_temperature"])
        for key in ("overrides", "group_order", "eval_models"):
            if key in data:
                values[key] = _strings(data[key], f"{source}: {key}")
        if "fuse_weights" in data:
            values["fuse_weights"] = _fuse_weights(data["fuse_weights"], source)
        values["eval_opponents"] = _opponents(data.get("eval_opponents", []), source)
        has_groups, has_games = "groups" in data, "games" in data
        if has_groups == has_games:
            raise ConfigError(
                f"{source}: give either [[groups]] (fused in the listed order) or [[games]] "
                "(grouped by start x the base model's measured win rate)"
                + (", not both" if has_groups else "")
            )
        if has_groups:
            values["groups"] = _groups(data["groups"], source)
        else:
            values["games"] = _games(data["games"], source)
        config = cls(**values)
        config._validate(source)
        return config

    def _validate(self, source: str) -> None:
        from arenagym.trainers.merging import METHODS

        if self.fuse not in METHODS:
            hint = (
                " ('progressive' is gone: DFC always fuses progressively now; fuse names the "
                "merge method of each step)"
                if self.fuse == "progressive"
                else ""
            )
            raise ConfigError(f"{source}: fuse must be one of {', '.join(METHODS)}{hint}")
        if self.specialist_start not in ("previous", "base"):
            raise ConfigError(
                f"{source}: specialist_start must be 'previous' or 'base', "
                f"got {self.specialist_start!r}"
            )
        if sorted(self.group_order) != sorted(DEFAULT_GROUP_ORDER):
            raise ConfigError(
                f"{source}: group_order must list each of {', '.join(DEFAULT_GROUP_ORDER)} "
                f"once, got {self.group_order}"
            )
        bad_kinds = [k for k in self.eval_models if k not in EVAL_KINDS]
        if bad_kinds:
            raise ConfigError(
                f"{source}: eval_models: unknown {bad_kinds}; use any of {', '.join(EVAL_KINDS)}"
            )
        for key in ("specialist_steps", "conquer_steps"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{source}: {key} must be >= 0, got {getattr(self, key)}")
        for key in ("eval_episodes", "eval_max_tokens", "eval_max_turns", "eval_max_total_tokens"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{source}: {key} must be >= 1, got {value}")
        if self.eval_temperature < 0:
            raise ConfigError(f"{source}: eval_temperature must be >= 0")

    @classmethod
    def load(cls, name_or_path: str | Path) -> DFCConfig:
        """Read a DFC TOML file, or a bundled config by name (:func:`dfc_config_names`)."""
        path = Path(name_or_path)
        name = str(name_or_path)
        if not path.is_file() and path.suffix != ".toml" and name in dfc_config_names():
            resource = resources.files(CONFIGS_PACKAGE).joinpath(*CONFIGS_DIR, f"{name}.toml")
            text, source = resource.read_text(encoding="utf-8"), str(resource)
        elif not path.is_file():
            bundled = ", ".join(dfc_config_names()) or "none"
            raise ConfigError(f"{path}: no such DFC config file (bundled configs: {bundled})")
        else:
            text, source = path.read_text(encoding="utf-8"), str(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{source}: not valid TOML ({error})") from None
        return cls.from_dict(data, source)

    @property
    def all_tasks(self) -> list[TaskConfig]:
        """Every task, in the order of the file (groups, then their tasks; or games)."""
        if self.games:
            return [game.task for game in self.games]
        return [task for group in self.groups for task in group.tasks]


# --------------------------------------------------------------------------- config parsing


def _is_a(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return list(value)


def _fuse_weights(value: Any, source: str) -> list[float]:
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(_is_a(v, (int, float)) and v >= 0 for v in value)
        and sum(value) > 0
    )
    if not ok:
        raise ConfigError(
            f"{source}: fuse_weights must be two numbers >= 0 with a positive sum "
            f"(previous model, new specialist), got {value!r}"
        )
    return [float(v) for v in value]


def _opponents(value: Any, source: str) -> list[DFCOpponent]:
    if not isinstance(value, list):
        raise ConfigError(f"{source}: [[eval_opponents]] must be a list of tables")
    out = []
    for i, item in enumerate(value):
        where = f"{source}: eval_opponents[{i}]"
        if not isinstance(item, dict) or set(item) - {"agent", "kwargs"}:
            raise ConfigError(f"{where} must be a table with agent (and kwargs), got {item!r}")
        if not isinstance(item.get("agent"), str) or not item["agent"]:
            raise ConfigError(f"{where}.agent must be an agent spec such as 'pkg.module:Class'")
        kwargs = item.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise ConfigError(f"{where}.kwargs must be a table")
        out.append(DFCOpponent(item["agent"], dict(kwargs)))
    return out


def _task(item: dict[str, Any], where: str) -> TaskConfig:
    return TrainConfig.from_dict({"tasks": [item]}, where).tasks[0]


def _groups(raw: Any, source: str) -> list[DFCGroup]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: [[groups]] must list at least one group")
    groups: list[DFCGroup] = []
    seen: dict[str, str] = {}
    for i, group in enumerate(raw):
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            raise ConfigError(f"{source}: groups[{i}] needs a name")
        extra = set(group) - {"name", "tasks"}
        if extra:
            raise ConfigError(f"{source}: groups[{i}]: unknown key(s) {sorted(extra)}")
        tasks = group.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise ConfigError(f"{source}: groups[{i}] ({group['name']}) needs tasks")
        parsed = TrainConfig.from_dict({"tasks": tasks}, f"{source}: groups[{i}]").tasks
        for j, task in enumerate(parsed):
            label = task_label(task)
            if label in seen:
                raise ConfigError(
                    f"{source}: groups[{i}].tasks[{j}] ({label}) is already in {seen[label]}"
                )
            seen[label] = f"groups[{i}]"
        groups.append(DFCGroup(group["name"], parsed))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: group names must be unique, got {names}")
    return groups


def _games(raw: Any, source: str) -> list[DFCGame]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: [[games]] must list at least one game")
    games: list[DFCGame] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        where = f"{source}: games[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table (env_id, start, kwargs, weight)")
        start = item.get("start")
        if start not in STARTS:
            raise ConfigError(f"{where}.start must be 'random' or 'fixed', got {start!r}")
        task = _task({k: v for k, v in item.items() if k != "start"}, where)
        label = task_label(task)
        if label in seen:
            raise ConfigError(f"{where} ({label}) is listed twice (also games[{seen[label]}])")
        seen[label] = i
        games.append(DFCGame(task, str(start)))
    return games


def dfc_config_names() -> list[str]:
    """The bundled DFC configs (``trainers/presets/dfc/*.toml``), by name."""
    folder = resources.files(CONFIGS_PACKAGE).joinpath(*CONFIGS_DIR)
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def task_label(task: TaskConfig) -> str:
    """``env_id`` plus its kwargs as compact JSON (when there are any)."""
    return task.env_id + (json.dumps(task.kwargs, sort_keys=True) if task.kwargs else "")


# --------------------------------------------------------------------------- divide


def divide_by_win_rate(
    games: Sequence[DFCGame],
    base_scores: Scores,
    order: Sequence[str] = DEFAULT_GROUP_ORDER,
) -> tuple[list[DFCGroup], list[str]]:
    """The groups ``<start>/winnable`` (base win rate > 0) and ``<start>/unwinnable`` (= 0), in
    ``order``, without the empty ones; and a note for each group skipped as empty."""
    buckets: dict[str, list[TaskConfig]] = {name: [] for name in order}
    for game in games:
        label = task_label(game.task)
        if label not in base_scores:
            raise ValueError(f"no base-model score for {label}: cannot group it")
        rate = base_scores[label]["win_rate"]
        buckets[f"{game.start}/{'winnable' if rate > 0 else 'unwinnable'}"].append(game.task)
    groups: list[DFCGroup] = []
    notes: list[str] = []
    for name in order:
        if buckets[name]:
            groups.append(DFCGroup(name, buckets[name], start=name.split("/")[0]))
        else:
            start, kind = name.split("/")
            notes.append(
                f"group {name} is empty (no {start}-start game where the base model's win rate "
                f"is {'above zero' if kind == 'winnable' else 'zero'}): skipped"
            )
    return groups, notes


# --------------------------------------------------------------------------- evaluate


def _two_player_textarena(env_id: str) -> bool:
    from arenagym.envs.textarena.games import GAMES, gym_id

    return any(gym_id(name) == env_id and g.num_players == 2 for name, g in GAMES.items())


def episode_kwargs(task: TaskConfig, opponents: Sequence[DFCOpponent]) -> list[dict[str, Any]]:
    """The env kwargs of each evaluation variant of ``task``: one per opponent for a two-player
    TextArena game whose kwargs do not name an opponent, else the task's own kwargs."""
    if opponents and "opponent" not in task.kwargs and _two_player_textarena(task.env_id):
        return [
            {**task.kwargs, "opponent": o.agent, "opponent_kwargs": dict(o.kwargs)}
            for o in opponents
        ]
    return [dict(task.kwargs)]


def evaluate_model(
    model_dir: str | Path,
    tasks: list[TaskConfig],
    *,
    episodes: int,
    seed: int,
    max_tokens: int,
    temperature: float = 0.0,
    device: str = "cpu",
    opponents: Sequence[DFCOpponent] = (),
    max_turns: int | None = None,
    max_total_tokens: int | None = None,
) -> Scores:
    """Win rate and mean clean reward per task over ``episodes`` episodes (env seeds
    ``seed + i``) per opponent (:func:`episode_kwargs`); every episode runs in one batch."""
    from arenagym.agents.backends.hf import TransformersBackend
    from arenagym.agents.backends.interface import SamplingParams
    from arenagym.agents.rollout import EpisodeSpec, RolloutConfig, RolloutEngine

    backend = TransformersBackend(model_dir, device=device, dtype="float32")
    sampling = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
    engine = RolloutEngine(
        backend,
        RolloutConfig(
            sampling=sampling,
            max_turns=max_turns,
            max_total_tokens=max_total_tokens,
            max_wait_s=0.05,
        ),
    )
    labels: list[str] = []
    specs: list[EpisodeSpec] = []
    for task in tasks:
        for kwargs in episode_kwargs(task, opponents):
            for i in range(episodes):
                labels.append(task_label(task))
                specs.append(EpisodeSpec(task.env_id, kwargs, seed=seed + i))
    trajectories = engine.run(specs)
    del engine, backend
    return score_episodes(labels, [(t.stop_reason, t.clean_reward) for t in trajectories])


def score_episodes(labels: Sequence[str], outcomes: Sequence[tuple[str, float]]) -> Scores:
    """Per label: the share of ``(stop_reason, clean_reward)`` outcomes that are wins and their
    mean reward.

    Example:
        >>> score_episodes(["A", "A"], [("won", 1.0), ("lost", -1.0)])
        {'A': {'reward': 0.0, 'win_rate': 0.5}}
    """
    totals: dict[str, list[float]] = {}
    for label, (reason, reward) in zip(labels, outcomes, strict=True):
        entry = totals.setdefault(label, [0.0, 0.0, 0.0])
        entry[0] += reward
        entry[1] += reason in WIN_STOP_REASONS
        entry[2] += 1
    return {
        label: {"reward": reward / n, "win_rate": wins / n}
        for label, (reward, wins, n) in totals.items()
    }


# --------------------------------------------------------------------------- fuse and train


def fuse_models(
    previous: str | Path,
    specialist: str | Path,
    output: str | Path,
    *,
    weights: Sequence[float] = (0.5, 0.5),
    method: str = "linear",
    base: str | Path | None = None,
) -> Path:
    """One fuse step: ``(a * previous + b * specialist) / (a + b)`` for ``weights = (a, b)``,
    tensor by tensor (``method = "linear"``); task-vector methods use ``base``, ``"slerp"``
    interpolates by ``b / (a + b)``."""
    from arenagym.trainers.merging import NEEDS_BASE, MergeSpec, merge_checkpoints

    a, b = (float(w) for w in weights)
    if method == "slerp":
        spec = MergeSpec("slerp", t=b / (a + b))
    else:
        spec = MergeSpec(method, weights=(a, b))
    merge_checkpoints(
        spec, [previous, specialist], output, base=base if method in NEEDS_BASE else None
    )
    return Path(output)


#: What a DFC run writes into its output directory (and ``overwrite`` deletes).
RUN_FILES = ("stages", "report.json", "report.md")


def _clear_previous_run(out: Path, overwrite: bool) -> None:
    """Refuse (or, with ``overwrite``, delete) an earlier DFC run's files in ``out``."""
    found = [out / name for name in RUN_FILES if (out / name).exists()]
    if not found:
        return
    if not overwrite:
        raise ValueError(
            f"{out} already holds a DFC run ({', '.join(p.name for p in found)}); "
            "pass --overwrite to delete it and start again, or choose another --output"
        )
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    logger.warning("DFC: --overwrite: deleted %s", ", ".join(str(p) for p in found))


def _default_trainer(base: TrainConfig) -> TrainFn:
    def train(model: Path, tasks: list[TaskConfig], steps: int, output: Path) -> Path:
        from arenagym.trainers.trainer import Trainer

        run = TrainConfig.from_dict(base.to_dict())
        run.model.path = str(model)
        run.tasks = [TaskConfig(t.env_id, dict(t.kwargs), t.weight) for t in tasks]
        run.run.steps = steps
        run.run.output_dir = str(output / "run")
        run.run.checkpoint_every = 0
        trainer = Trainer(run)
        trainer.train()
        final = output / "model"
        trainer.model.save_pretrained(final, safe_serialization=True)
        trainer.tokenizer.save_pretrained(final)
        return final

    return train


def _default_evaluator(config: DFCConfig, device: str) -> Evaluator:
    def evaluate(name: str, model: Path, tasks: list[TaskConfig]) -> Scores:
        logger.info("DFC: evaluating %s (%s) on %d task(s)", name, model, len(tasks))
        return evaluate_model(
            model,
            tasks,
            episodes=config.eval_episodes,
            seed=config.eval_seed,
            max_tokens=config.eval_max_tokens,
            temperature=config.eval_temperature,
            device=device,
            opponents=config.eval_opponents,
            max_turns=config.eval_max_turns,
            max_total_tokens=config.eval_max_total_tokens,
        )

    return evaluate


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "group"


# --------------------------------------------------------------------------- the driver


def run_dfc(
    config: DFCConfig,
    *,
    evaluate: Evaluator | None = None,
    train: TrainFn | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Divide (measuring the base model's win rates when the config lists games), then fuse and
    conquer group by group; writes ``report.json`` and ``report.md`` and returns the report.

    ``evaluate`` and ``train`` replace the built-in evaluation and training (tests, or another
    training loop); by default they are :func:`evaluate_model` and the
    :class:`~arenagym.trainers.trainer.Trainer` with ``config.train``.

    An output directory that holds an earlier DFC run (``stages/``, ``report.json`` or
    ``report.md``) is refused with a ``ValueError`` unless ``overwrite``, which deletes exactly
    those; nothing else in the directory is touched.
    """
    out = Path(config.output_dir)
    _clear_previous_run(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    base = Path(config.base_model)
    if train is None or evaluate is None:
        base_train = load_config(config.train, config.overrides or None)
        import_config_modules(base_train)
        train = train or _default_trainer(base_train)
        evaluate = evaluate or _default_evaluator(config, _device(base_train.model.device))
    all_tasks = config.all_tasks
    scores: dict[str, Scores] = {}
    models: dict[str, str] = {}
    evaluated: dict[Path, str] = {}

    def score(name: str, model: Path) -> None:
        assert evaluate is not None
        if model in evaluated:  # e.g. specialist_steps = 0: the specialist is its start
            scores[name] = scores[evaluated[model]]
        else:
            scores[name] = evaluate(name, model, all_tasks)
            evaluated[model] = name
        models[name] = str(model)

    score("base", base)
    notes: list[str] = []
    if config.games:
        groups, notes = divide_by_win_rate(config.games, scores["base"], config.group_order)
        for note in notes:
            logger.warning("DFC: %s", note)
    else:
        groups = config.groups

    previous = base
    conquered: list[TaskConfig] = []
    stages: list[dict[str, Any]] = []
    final = "base"
    for k, group in enumerate(groups, 1):
        stage_dir = out / "stages" / f"{k}-{_slug(group.name)}"
        start = previous if config.specialist_start == "previous" else base
        logger.info("DFC stage %d (%s): specialist from %s", k, group.name, start)
        specialist = (
            train(start, list(group.tasks), config.specialist_steps, stage_dir / "specialist")
            if config.specialist_steps > 0
            else start
        )
        conquered += group.tasks
        stage: dict[str, Any] = {
            "stage": k,
            "group": group.name,
            "specialist": {
                "start": str(start),
                "tasks": [task_label(t) for t in group.tasks],
                "steps": config.specialist_steps,
                "model": str(specialist),
            },
            "fused": None,
            "conquer": None,
        }
        names = {"specialist": f"specialist {k}"}
        if k == 1 and not config.fuse_base:
            model = specialist
        else:
            fused = fuse_models(
                previous,
                specialist,
                stage_dir / "fused",
                weights=config.fuse_weights,
                method=config.fuse,
                base=base,
            )
            stage["fused"] = {
                "models": [str(previous), str(specialist)],
                "method": config.fuse,
                "weights": list(config.fuse_weights),
                "model": str(fused),
            }
            names["fused"] = f"fused {k}"
            model = fused
            if config.conquer_steps > 0:
                model = train(fused, list(conquered), config.conquer_steps, stage_dir / "conquer")
                stage["conquer"] = {
                    "start": str(fused),
                    "tasks": [task_label(t) for t in conquered],
                    "steps": config.conquer_steps,
                    "model": str(model),
                }
                names["conquer"] = f"conquer {k}"
        stage["model"] = str(model)
        last_kind = list(names)[-1]
        for kind, name in names.items():
            if kind in config.eval_models or (k == len(groups) and kind == last_kind):
                score(name, Path(stage[kind]["model"]))
        stage["models"] = {kind: name for kind, name in names.items() if name in scores}
        final = names[last_kind]
        stages.append(stage)
        previous = model

    base_scores = scores["base"]
    report = {
        "method": {
            "specialist_start": config.specialist_start,
            "fuse": config.fuse,
            "fuse_weights": list(config.fuse_weights),
            "fuse_base": config.fuse_base,
            "specialist_steps": config.specialist_steps,
            "conquer_steps": config.conquer_steps,
        },
        "grouping": "base win rate" if config.games else "given",
        "groups": [
            {
                "name": g.name,
                "start": g.start,
                "tasks": [task_label(t) for t in g.tasks],
                "base_win_rate": {
                    task_label(t): base_scores[task_label(t)]["win_rate"] for t in g.tasks
                },
            }
            for g in groups
        ],
        "notes": notes,
        "stages": stages,
        "models": models,
        "final": final,
        "final_model": models[final],
        "scores": scores,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_report(report), encoding="utf-8")
    return report


# --------------------------------------------------------------------------- report


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def render_report(report: dict[str, Any]) -> str:
    """The report as Markdown: the groups (each game with its measured base win rate), the win
    rate of every evaluated model per group, and every game's win rate per model.

    Example:
        >>> report = {
        ...     "groups": [{"name": "fixed/winnable", "start": "fixed", "tasks": ["A"],
        ...                 "base_win_rate": {"A": 0.25}}],
        ...     "notes": ["group random/winnable is empty: skipped"],
        ...     "stages": [{"stage": 1, "group": "fixed/winnable",
        ...                 "models": {"specialist": "specialist 1"}}],
        ...     "final": "specialist 1",
        ...     "scores": {"base": {"A": {"win_rate": 0.25, "reward": -0.5}},
        ...                "specialist 1": {"A": {"win_rate": 0.5, "reward": 0.0}}}}
        >>> print(render_report(report), end="")
        ## Groups
        <BLANKLINE>
        | stage | group | game | start | base win rate |
        | ---: | --- | --- | --- | ---: |
        | 1 | fixed/winnable | A | fixed | 0.250 |
        <BLANKLINE>
        - group random/winnable is empty: skipped
        <BLANKLINE>
        ## Win rate by stage and group
        <BLANKLINE>
        | stage | model | fixed/winnable | all |
        | ---: | --- | ---: | ---: |
        | 0 | base | 0.250 | 0.250 |
        | 1 | specialist 1 (final) | 0.500 | 0.500 |
        <BLANKLINE>
        ## Every game (win rate)
        <BLANKLINE>
        | game | group | base | specialist 1 |
        | --- | --- | ---: | ---: |
        | A | fixed/winnable | 0.250 | 0.500 |
        | mean reward | | -0.500 | 0.000 |
    """
    scores: dict[str, Scores] = report["scores"]
    groups: list[dict[str, Any]] = report["groups"]
    stage_of = {"base": 0}
    for stage in report.get("stages", []):
        for name in stage.get("models", {}).values():
            stage_of[name] = stage["stage"]
    group_of = {label: g["name"] for g in groups for label in g["tasks"]}
    lines = [
        "## Groups",
        "",
        "| stage | group | game | start | base win rate |",
        "| ---: | --- | --- | --- | ---: |",
    ]
    for k, group in enumerate(groups, 1):
        for label in group["tasks"]:
            rate = group["base_win_rate"].get(label, scores["base"][label]["win_rate"])
            lines.append(
                f"| {k} | {group['name']} | {label} | {group.get('start') or '-'} | {rate:.3f} |"
            )
    if report.get("notes"):
        lines += [""] + [f"- {note}" for note in report["notes"]]
    names = list(scores)
    lines += [
        "",
        "## Win rate by stage and group",
        "",
        "| stage | model | " + " | ".join(g["name"] for g in groups) + " | all |",
        "| ---: | --- |" + " ---: |" * (len(groups) + 1),
    ]
    for name in names:
        per_group = [
            _mean([scores[name][label]["win_rate"] for label in g["tasks"]]) for g in groups
        ]
        overall = _mean([s["win_rate"] for s in scores[name].values()])
        shown = f"{name} (final)" if name == report.get("final") else name
        lines.append(
            f"| {stage_of.get(name, '')} | {shown} | "
            + " | ".join(f"{v:.3f}" for v in [*per_group, overall])
            + " |"
        )
    lines += [
        "",
        "## Every game (win rate)",
        "",
        "| game | group | " + " | ".join(names) + " |",
        "| --- | --- |" + " ---: |" * len(names),
    ]
    for label in scores["base"]:
        lines.append(
            f"| {label} | {group_of.get(label, '-')} | "
            + " | ".join(f"{scores[n][label]['win_rate']:.3f}" for n in names)
            + " |"
        )
    rewards = [_mean([s["reward"] for s in scores[n].values()]) for n in names]
    lines.append("| mean reward | | " + " | ".join(f"{v:.3f}" for v in rewards) + " |")
    return "\n".join(lines) + "\n"
