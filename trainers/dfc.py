"""Divide-Fuse-Conquer: one specialist per group of tasks, fused, then trained on everything.

The driver reads a TOML file::

    base_model = "models/base"          # every specialist starts here
    train = "grpo"                      # a preset or a training-config TOML (its [[tasks]] ignored)
    overrides = ["optim.lr=1e-6"]       # --set style overrides of the training config
    output_dir = "runs/dfc"
    specialist_steps = 100
    final_steps = 100
    fuse = "progressive"                # or any merge method: linear, ties, task_arithmetic ...
    eval_episodes = 32
    eval_seed = 10000
    eval_max_tokens = 256
    eval_temperature = 0.0

    [[groups]]
    name = "rules"
    tasks = [{ env_id = "Math-v0", kwargs = { difficulty = 1 } }]

    [[groups]]
    name = "puzzles"
    tasks = [{ env_id = "Math-v0", kwargs = { difficulty = 3 } }]

**Divide**: a specialist is trained from ``base_model`` on each group's tasks. **Fuse**:
``"progressive"`` averages the specialists one at a time (a running mean ``f_k = f_{k-1} +
(s_k - f_{k-1}) / k``, each step a shard-by-shard merge, so memory holds one specialist at a
time; the result is their uniform average); any other merge method is applied to all
specialists at once (with ``base_model`` as the base for task-vector methods). **Conquer**: the
fused model is trained on every group's tasks. Every task is then evaluated (mean clean reward
over ``eval_episodes`` seeded episodes) for the base, each specialist, the fused and the final
model; ``report.json`` and ``report.md`` hold the table.

Example:
    >>> config = DFCConfig.from_dict({"base_model": "m", "groups": [
    ...     {"name": "a", "tasks": [{"env_id": "Math-v0"}]},
    ...     {"name": "b", "tasks": [{"env_id": "Math-v0", "kwargs": {"difficulty": 2}}]}]})
    >>> [g.name for g in config.groups], task_label(config.groups[1].tasks[0])
    (['a', 'b'], 'Math-v0{"difficulty": 2}')
"""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arenagym.trainers.config import ConfigError, TaskConfig, TrainConfig, load_config

__all__ = ["DFCConfig", "DFCGroup", "evaluate_model", "run_dfc", "task_label"]


@dataclass
class DFCGroup:
    """A named group of tasks (one specialist)."""

    name: str
    tasks: list[TaskConfig]


@dataclass
class DFCConfig:
    """The driver's settings (see the module docstring)."""

    base_model: str
    groups: list[DFCGroup]
    train: str = "grpo"
    overrides: list[str] = field(default_factory=list)
    output_dir: str = "runs/dfc"
    specialist_steps: int = 100
    final_steps: int = 100
    fuse: str = "progressive"
    eval_episodes: int = 32
    eval_seed: int = 10_000
    eval_max_tokens: int = 256
    eval_temperature: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dfc config>") -> DFCConfig:
        """Validate and build; errors name ``source`` and the key."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        if "base_model" not in data:
            raise ConfigError(f"{source}: base_model is required")
        raw_groups = data.get("groups")
        if not isinstance(raw_groups, list) or len(raw_groups) < 1:
            raise ConfigError(f"{source}: [[groups]] must list at least one group")
        groups = []
        for i, group in enumerate(raw_groups):
            if not isinstance(group, dict) or not isinstance(group.get("name"), str):
                raise ConfigError(f"{source}: groups[{i}] needs a name")
            tasks = group.get("tasks")
            if not isinstance(tasks, list) or not tasks:
                raise ConfigError(f"{source}: groups[{i}] ({group['name']}) needs tasks")
            parsed = TrainConfig.from_dict({"tasks": tasks}, f"{source}: groups[{i}]").tasks
            groups.append(DFCGroup(group["name"], parsed))
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: group names must be unique, got {names}")
        values = {k: v for k, v in data.items() if k != "groups"}
        config = cls(groups=groups, **values)
        if config.fuse != "progressive":
            from arenagym.trainers.merging import METHODS

            if config.fuse not in METHODS or (config.fuse == "slerp" and len(groups) != 2):
                raise ConfigError(
                    f"{source}: fuse must be 'progressive' or one of {', '.join(METHODS)}"
                )
        if config.specialist_steps < 0 or config.final_steps < 0 or config.eval_episodes < 1:
            raise ConfigError(f"{source}: steps must be >= 0 and eval_episodes >= 1")
        return config

    @classmethod
    def load(cls, path: str | Path) -> DFCConfig:
        """Read a DFC TOML file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such DFC config file")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
        return cls.from_dict(data, str(path))

    @property
    def all_tasks(self) -> list[TaskConfig]:
        """Every group's tasks, in order."""
        return [task for group in self.groups for task in group.tasks]


def task_label(task: TaskConfig) -> str:
    """``env_id`` plus its kwargs as compact JSON (when there are any)."""
    return task.env_id + (json.dumps(task.kwargs, sort_keys=True) if task.kwargs else "")


def evaluate_model(
    model_dir: str | Path,
    tasks: list[TaskConfig],
    *,
    episodes: int,
    seed: int,
    max_tokens: int,
    temperature: float = 0.0,
    device: str = "cpu",
) -> dict[str, float]:
    """Mean clean reward per task over ``episodes`` episodes (env seeds ``seed + i``)."""
    from arenagym.agents.backends.base import SamplingParams
    from arenagym.agents.backends.hf import TransformersBackend
    from arenagym.agents.rollout import EpisodeSpec, RolloutConfig, RolloutEngine

    backend = TransformersBackend(model_dir, device=device, dtype="float32")
    sampling = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
    engine = RolloutEngine(backend, RolloutConfig(sampling, max_wait_s=0.05))
    scores: dict[str, float] = {}
    for task in tasks:
        specs = [
            EpisodeSpec(task.env_id, dict(task.kwargs), seed=seed + i) for i in range(episodes)
        ]
        trajectories = engine.run(specs)
        scores[task_label(task)] = sum(t.clean_reward for t in trajectories) / len(trajectories)
    return scores


def _train(
    config: DFCConfig,
    base: TrainConfig,
    model: Path,
    tasks: list[TaskConfig],
    steps: int,
    output: Path,
) -> Path:
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


def _fuse(config: DFCConfig, specialists: list[Path], output: Path) -> Path:
    from arenagym.trainers.merging import MergeSpec, merge_checkpoints

    if config.fuse != "progressive":
        base = config.base_model if config.fuse not in ("linear", "slerp") else None
        merge_checkpoints(MergeSpec(config.fuse), specialists, output, base=base)
        return output
    current = specialists[0]
    for k, specialist in enumerate(specialists[1:], start=2):
        step_dir = output.parent / f"fuse-step-{k}"
        spec = MergeSpec("linear", weights=((k - 1) / k, 1 / k))
        merge_checkpoints(spec, [current, specialist], step_dir)
        if current.parent == output.parent and current.name.startswith("fuse-step-"):
            shutil.rmtree(current, ignore_errors=True)
        current = step_dir
    if output.exists():
        shutil.rmtree(output)
    if current in specialists:
        shutil.copytree(current, output)
    else:
        current.rename(output)
    return output


def run_dfc(config: DFCConfig) -> dict[str, Any]:
    """Divide, fuse, conquer and evaluate; writes ``report.json`` and ``report.md``."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    base_train = load_config(config.train, config.overrides or None)
    base = Path(config.base_model)
    specialists = [
        _train(
            config,
            base_train,
            base,
            group.tasks,
            config.specialist_steps,
            out / "specialists" / group.name,
        )
        for group in config.groups
    ]
    fused = _fuse(config, specialists, out / "fused")
    final = _train(config, base_train, fused, config.all_tasks, config.final_steps, out / "final")
    models = {"base": base}
    models.update(
        {f"specialist:{g.name}": p for g, p in zip(config.groups, specialists, strict=True)}
    )
    models.update({"fused": fused, "final": final})
    device = base_train.model.device
    device = "cpu" if device == "auto" else device
    scores = {
        name: evaluate_model(
            path,
            config.all_tasks,
            episodes=config.eval_episodes,
            seed=config.eval_seed,
            max_tokens=config.eval_max_tokens,
            temperature=config.eval_temperature,
            device=device,
        )
        for name, path in models.items()
    }
    report = {
        "groups": {g.name: [task_label(t) for t in g.tasks] for g in config.groups},
        "fuse": config.fuse,
        "models": {name: str(path) for name, path in models.items()},
        "scores": scores,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_report(report), encoding="utf-8")
    return report


def render_report(report: dict[str, Any]) -> str:
    """The score table as Markdown: one row per task, one column per model, plus the mean.

    Example:
        >>> print(render_report({"scores": {"base": {"A": 0.25}, "final": {"A": 0.5}}}), end="")
        | task | base | final |
        | --- | ---: | ---: |
        | A | 0.250 | 0.500 |
        | mean | 0.250 | 0.500 |
    """
    scores = report["scores"]
    models = list(scores)
    tasks = list(next(iter(scores.values())))
    lines = ["| task | " + " | ".join(models) + " |", "| --- |" + " ---: |" * len(models)]
    for task in tasks:
        lines.append(f"| {task} | " + " | ".join(f"{scores[m][task]:.3f}" for m in models) + " |")
    means = [sum(scores[m].values()) / len(scores[m]) for m in models]
    lines.append("| mean | " + " | ".join(f"{v:.3f}" for v in means) + " |")
    return "\n".join(lines) + "\n"
