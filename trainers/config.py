"""Training configuration: TOML files and the bundled presets (``grpo``, ``or1``, ``drgrpo``,
``rloo``, ``reinforce_pp``, ``ppo``).

A config has sections ``[model]``, ``[algorithm]``, ``[rollout]``, ``[optim]``, ``[entropy]``,
``[reward]``, ``[data]``, ``[eval]``, ``[run]`` and a list ``[[tasks]]`` of env ids to train on
(see each dataclass). Unknown sections or keys are errors that name the file and the key, so a typo never
silently trains with a default. ``--set section.key=value`` on the command line overrides any
field.

Filtering by pass rate (Skywork-OR1 does both; each is off unless set):

- **online**, ``algorithm.filter_zero_variance_groups = true``: every step, groups (the
  episodes of one prompt) whose trajectories all got the same reward — all solved or all
  failed — are dropped before the update; they carry no group-relative signal. The test is per
  trajectory, however many turns each took.
- **offline**, ``data.pass_rate_samples = N`` (``N > 0``): before step 1, every ``[[tasks]]``
  entry is played ``N`` times by the initial policy (distinct env seeds derived from
  ``run.seed``, the run's sampling settings and first context stage), and an entry whose pass
  rate — the share of its episodes that end with ``stop_reason == "solved"`` — is
  ``<= data.pass_rate_low`` (default 0: never solved) or ``>= data.pass_rate_high`` (default 1:
  always solved) is dropped. How many were dropped is logged, and the measurement is written to
  ``pass_rate_filter.json`` in ``run.output_dir``, which a resumed run reuses instead of
  measuring again with a trained policy. Dropping every entry is an error.

  .. code-block:: toml

     [data]
     pass_rate_samples = 16
     pass_rate_low = 0.0
     pass_rate_high = 1.0

Evaluation during training (``[eval]``, off unless ``episodes > 0``): before the first step
(logged as step 0), every ``every`` steps and after the last step, the current policy plays
``episodes`` eval episodes of each eval task greedily (temperature 0, ``max_tokens`` per turn,
default the rollout's budget at that step) through the same generator as the training rollouts
(a vLLM generator after its weight sync). They are never trained on. The step's line of
``metrics.jsonl`` gets ``eval_accuracy`` — the fraction of eval episodes that end as a success,
``stop_reason`` ``"solved"`` or ``"won"`` — ``eval_clean_reward`` (their mean clean reward) and
``eval_episodes`` (how many were played). The eval episodes are the same at every evaluation:
episode ``j`` of eval task ``i`` has env seed ``2**31 + derive_seed(eval.seed, salt, i, j)``,
which lies in ``[2**31, 2**32)``, while every training (and pass-rate) env seed lies in
``[0, 2**31 - 1)``: the two never collide, whatever the seeds.

  .. code-block:: toml

     [eval]
     episodes = 32        # per eval task; 0 (the default): no evaluation
     every = 10           # steps between evaluations
     seed = 0             # the eval episodes' own seed stream
     # max_tokens = 512   # default: the rollout's budget
     [[eval.tasks]]       # default: the training tasks
     env_id = "Math-v0"
     kwargs = { difficulty = 2 }

Dual self-reward (``[reward] source = "dual"``, SUDER; see
:mod:`arenagym.trainers.dual_reward`): each sampled output is rewarded with the policy's own
mean log-likelihood of the episode's input under the env's inverse task; every ``[[tasks]]`` env
must declare one (Math-v0 does), else the trainer stops before loading the model, naming the
entry.

  .. code-block:: toml

     [reward]
     source = "dual"
     dual_normalize = true            # mean log-prob per input token (SUDER); false: the sum
     dual_group_standardize = false   # (r - group mean) / (group std + 1e-6) per prompt
     dual_mix = 0.0                   # (1 - w) * dual + w * env reward; 0: self-reward alone
     batch_size = 16                  # inverse queries per forward pass

Example:
    >>> config = load_config("or1", overrides=["run.steps=3", "model.path=/tmp/tiny"])
    >>> config.algorithm.name, config.rollout.group_size, config.entropy.adaptive, config.run.steps
    ('grpo', 16, True, 3)
    >>> config.rollout.context_stages[0]
    [0, 8192]
    >>> sorted(preset_names())
    ['drgrpo', 'grpo', 'or1', 'ppo', 'reinforce_pp', 'rloo']
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from arenagym.trainers.algorithms import AGGREGATIONS, ALGORITHMS

__all__ = [
    "REWARD_SOURCES",
    "AlgorithmConfig",
    "ConfigError",
    "DataConfig",
    "EntropyConfig",
    "EvalConfig",
    "ModelConfig",
    "OptimConfig",
    "RewardConfig",
    "RolloutConfig",
    "RunConfig",
    "TaskConfig",
    "TrainConfig",
    "load_config",
    "preset_names",
]


#: ``[reward] source`` values: the env's reward, a reward model, the dual self-reward.
REWARD_SOURCES: tuple[str, ...] = ("env", "reward_model", "dual")


class ConfigError(ValueError):
    """A config file or override is wrong; the message names where and how to fix it."""


@dataclass
class ModelConfig:
    """The policy: a Hugging Face causal-LM directory, where it runs, how it is trained."""

    path: str = ""
    device: str = "auto"  # "auto": CUDA when available, else CPU
    bf16: bool = True  # bf16 autocast on CUDA (master weights stay float32); ignored on CPU
    gradient_checkpointing: bool = False
    generator: str = "transformers"  # or "vllm" (weights pushed after every update)
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class AlgorithmConfig:
    """Which algorithm (see :func:`~arenagym.trainers.algorithms.make_algorithm`) and its knobs.

    ``None`` keeps the algorithm's own default.
    """

    name: str = "grpo"
    clip_low: float = 0.2
    clip_high: float | None = None
    aggregation: str | None = None
    kl_coef: float | None = None
    std_normalize: bool | None = None
    filter_zero_variance_groups: bool = False
    use_rollout_logprobs: bool = False  # else recompute old log-probs with the policy


@dataclass
class RolloutConfig:
    """How rollouts are sampled: prompts per step, rollouts per prompt, sampling, budgets."""

    prompts_per_step: int = 8
    group_size: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    context_stages: list[list[int]] = field(default_factory=list)  # [[step, max_tokens], ...]
    max_turns: int | None = None
    concurrency: int = 256
    max_batch_size: int = 64


@dataclass
class OptimConfig:
    """AdamW, the learning-rate schedule, batching and clipping."""

    lr: float = 1e-6
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    max_grad_norm: float = 1.0
    micro_batch_size: int = 8
    mini_batches: int = 1  # optimizer steps per rollout batch (per epoch)
    ppo_epochs: int = 1


@dataclass
class EntropyConfig:
    """OR1's adaptive entropy control (``adaptive``) or a fixed bonus ``coef``."""

    adaptive: bool = False
    target: float = 0.2
    delta: float = 1e-4
    max_coef: float = 0.005
    coef: float = 0.0


@dataclass
class RewardConfig:
    """Where rewards come from: the env (``"env"``), a Bradley-Terry reward model
    (``"reward_model"``), or the policy's own dual self-reward (``"dual"``, SUDER; see
    :mod:`arenagym.trainers.dual_reward`: ``mean log p(input | output, inverse prompt)``, which
    needs every ``[[tasks]]`` env to declare its inverse task).

    ``batch_size`` is the sequences per scoring forward pass of either model-based source;
    the ``dual_*`` keys apply to ``source = "dual"`` only.
    """

    source: str = "env"  # "env" | "reward_model" | "dual"
    model: str = ""  # reward-model directory for source = "reward_model"
    normalize: str = "sigmoid"  # "sigmoid" | "raw"
    batch_size: int = 16
    dual_normalize: bool = True  # mean log-prob per input token (SUDER), else the sum
    dual_group_standardize: bool = False  # (r - group mean) / (group std + 1e-6)
    dual_mix: float = 0.0  # train on (1 - w) * dual + w * env reward; 0: the self-reward alone


@dataclass
class DataConfig:
    """Which ``[[tasks]]`` are trained on: OR1's offline pass-rate filter (see the module docs).

    ``pass_rate_samples`` episodes per task entry measure its pass rate with the initial policy
    (0: no filter); entries with a pass rate ``<= pass_rate_low`` or ``>= pass_rate_high`` are
    dropped before the first step.
    """

    pass_rate_samples: int = 0
    pass_rate_low: float = 0.0
    pass_rate_high: float = 1.0


@dataclass
class EvalConfig:
    """Accuracy on eval episodes during training (see the module docs); off with ``episodes = 0``.

    ``episodes`` per eval task (``tasks``, ``[[eval.tasks]]`` entries like ``[[tasks]]``; empty:
    the training tasks), played greedily at step 0, every ``every`` steps and after the last
    step, with env seeds from their own stream of ``seed``; ``max_tokens`` per turn (``None``:
    the rollout's budget).
    """

    episodes: int = 0
    every: int = 10
    tasks: list[TaskConfig] = field(default_factory=list)
    seed: int = 0
    max_tokens: int | None = None


@dataclass
class ClusterConfig:
    """Rollouts on a Ray cluster (``arenagym train --ray``); off while ``address`` is empty.

    ``engines`` generation actors hold the policy (``model.generator``: transformers or vLLM,
    with ``model.vllm_kwargs``), each reserving ``engine_resources`` (``ray.remote`` options,
    default one CPU; e.g. ``{ num_gpus = 1 }``), and load the weights after every update;
    ``env_workers`` actors step the envs, each reserving ``env_resources`` (0: envs step in the
    trainer's process). See :mod:`arenagym.agents.cluster`.
    """

    address: str = ""  # "auto", "local" (a private one-machine Ray), HOST:PORT, ray://HOST:10001
    engines: int = 1
    engine_resources: dict[str, Any] = field(default_factory=dict)
    env_workers: int = 0
    env_resources: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Steps, seed, output directory, checkpoints and logging."""

    steps: int = 100
    seed: int = 0
    output_dir: str = "runs/train"
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    tensorboard: bool = False
    log_every: int = 1


@dataclass
class TaskConfig:
    """One env to train on: ``gym.make(env_id, **kwargs)``, sampled with relative ``weight``."""

    env_id: str = "Math-v0"
    kwargs: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0


@dataclass
class TrainConfig:
    """A whole training run; ``to_dict``/``from_dict`` round-trip through JSON and TOML."""

    model: ModelConfig = field(default_factory=ModelConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    entropy: EntropyConfig = field(default_factory=EntropyConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    run: RunConfig = field(default_factory=RunConfig)
    tasks: list[TaskConfig] = field(default_factory=lambda: [TaskConfig()])
    #: Modules imported before envs are made (e.g. a package that registers its own env ids).
    imports: list[str] = field(default_factory=list)
    #: Where the config came from (a file, ``preset or1``), for error messages; not saved.
    source: str = field(default="config", kw_only=True, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without :attr:`source`)."""
        data = asdict(self)
        del data["source"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<config>") -> TrainConfig:
        """Build and validate; unknown keys raise :class:`ConfigError` naming ``source``."""
        sections = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
        unknown = set(data) - set(sections)
        if unknown:
            raise ConfigError(
                f"{source}: unknown section(s) {sorted(unknown)}; known: {sorted(sections)}"
            )
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "tasks":
                if not isinstance(value, list) or not value:
                    raise ConfigError(f"{source}: [[tasks]] must list at least one env")
                values[name] = [
                    _section(TaskConfig, item, f"{source}: tasks[{i}]")
                    for i, item in enumerate(value)
                ]
            elif name == "eval":
                values[name] = _eval_section(value, f"{source}: [eval]")
            elif name == "imports":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"{source}: imports must be a list of module names")
                values[name] = list(value)
            else:
                section_type = sections[name].default_factory  # type: ignore[misc]
                values[name] = _section(section_type, value, f"{source}: [{name}]")
        config = cls(**values, source=source)
        config.validate(source)
        return config

    def validate(self, source: str = "<config>") -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        a, r, o = self.algorithm, self.rollout, self.optim
        checks = [
            (a.name in ALGORITHMS, f"algorithm.name must be one of {', '.join(ALGORITHMS)}"),
            (
                a.aggregation is None or a.aggregation in AGGREGATIONS,
                f"algorithm.aggregation must be one of {', '.join(AGGREGATIONS)}",
            ),
            (r.group_size >= 1 and r.prompts_per_step >= 1, "rollout sizes must be >= 1"),
            (r.max_tokens >= 1, "rollout.max_tokens must be >= 1"),
            (o.micro_batch_size >= 1, "optim.micro_batch_size must be >= 1"),
            (o.mini_batches >= 1 and o.ppo_epochs >= 1, "mini_batches and ppo_epochs >= 1"),
            (o.lr > 0, "optim.lr must be > 0"),
            (self.run.steps >= 0, "run.steps must be >= 0"),
            (self.run.checkpoint_every >= 0, "run.checkpoint_every must be >= 0"),
            (
                self.reward.source in REWARD_SOURCES,
                f"reward.source must be one of {', '.join(REWARD_SOURCES)}, "
                f"got {self.reward.source!r}",
            ),
            (self.reward.normalize in ("sigmoid", "raw"), "reward.normalize: sigmoid or raw"),
            (
                self.reward.batch_size >= 1,
                f"reward.batch_size must be >= 1, got {self.reward.batch_size!r}",
            ),
            (
                0.0 <= self.reward.dual_mix <= 1.0,
                f"reward.dual_mix must be in [0, 1] (the env reward's weight), got "
                f"{self.reward.dual_mix!r}",
            ),
            (
                self.model.generator in ("transformers", "vllm"),
                "model.generator: transformers or vllm",
            ),
            (all(t.weight > 0 for t in self.tasks), "every task weight must be > 0"),
            (self.data.pass_rate_samples >= 0, "data.pass_rate_samples must be >= 0 (0: off)"),
            (
                0.0 <= self.data.pass_rate_low < self.data.pass_rate_high <= 1.0,
                "data.pass_rate_low and pass_rate_high must satisfy 0 <= low < high <= 1",
            ),
            *_eval_checks(self.eval),
            (self.cluster.engines >= 1, "cluster.engines must be >= 1"),
            (self.cluster.env_workers >= 0, "cluster.env_workers must be >= 0 (0: no env hosts)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{source}: {message}")
        from arenagym.agents.cluster import ClusterSetupError, ray_options

        for key in ("engine_resources", "env_resources"):
            try:
                ray_options(getattr(self.cluster, key), f"cluster.{key}")
            except ClusterSetupError as error:
                raise ConfigError(f"{source}: {error}") from None
        if r.context_stages:
            from arenagym.trainers.schedules import ContextSchedule

            try:
                ContextSchedule(r.context_stages)
            except ValueError as error:
                raise ConfigError(f"{source}: rollout.context_stages: {error}") from None

    def apply_overrides(self, overrides: list[str]) -> TrainConfig:
        """A copy with ``section.key=value`` overrides (values parsed as JSON, else text)."""
        data = self.to_dict()
        for item in overrides:
            key, equals, raw = item.partition("=")
            path = key.strip().split(".")
            if not equals or len(path) != 2 or not all(path):
                raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. run.steps=10")
            section, name = path
            if section not in data or not isinstance(data[section], dict):
                raise ConfigError(f"--set {item!r}: no section {section!r}")
            if name not in data[section]:
                raise ConfigError(
                    f"--set {item!r}: [{section}] has no key {name!r}; "
                    f"known: {', '.join(sorted(data[section]))}"
                )
            try:
                data[section][name] = json.loads(raw)
            except json.JSONDecodeError:
                data[section][name] = raw
        config = TrainConfig.from_dict(data, "--set")
        config.source = self.source
        return config


def _section(section_type: Any, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of key = value")
    known = {f.name: f for f in dataclasses.fields(section_type)}
    unknown = set(value) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    defaults = section_type()
    for key, item in value.items():
        default = getattr(defaults, key)
        expected = type(default)
        if default is None or item is None:
            continue
        if expected is float and isinstance(item, int) and not isinstance(item, bool):
            continue
        if not isinstance(item, expected) or (expected is int and isinstance(item, bool)):
            raise ConfigError(
                f"{where}: {key} must be {expected.__name__}, got {type(item).__name__} {item!r}"
            )
    kwargs = {
        k: (float(v) if isinstance(getattr(defaults, k), float) and v is not None else v)
        for k, v in value.items()
    }
    return section_type(**kwargs)


def _eval_section(value: Any, where: str) -> EvalConfig:
    """``[eval]``, whose ``tasks`` are ``[[eval.tasks]]`` entries checked like ``[[tasks]]``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of key = value")
    rest = dict(value)
    tasks = rest.pop("tasks", [])
    if not isinstance(tasks, list):
        raise ConfigError(
            f"{where}: tasks must be a list of [[eval.tasks]] tables (env_id, kwargs, weight)"
        )
    section = _section(EvalConfig, rest, where)
    section.tasks = [
        _section(TaskConfig, item, f"{where}: tasks[{i}]") for i, item in enumerate(tasks)
    ]
    return section


def _eval_checks(e: EvalConfig) -> list[tuple[bool, str]]:
    """:meth:`TrainConfig.validate`'s checks of ``[eval]`` (ok, message naming the field)."""
    max_tokens = e.max_tokens
    return [
        (
            isinstance(e.episodes, int) and not isinstance(e.episodes, bool) and e.episodes >= 0,
            f"eval.episodes must be an integer >= 0 (0: no evaluation), got {e.episodes!r}",
        ),
        (
            isinstance(e.every, int) and not isinstance(e.every, bool) and e.every >= 1,
            f"eval.every must be an integer >= 1 (steps between evaluations), got {e.every!r}",
        ),
        (
            isinstance(e.seed, int) and not isinstance(e.seed, bool) and e.seed >= 0,
            f"eval.seed must be an integer >= 0, got {e.seed!r}",
        ),
        (
            max_tokens is None
            or (
                isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 1
            ),
            f"eval.max_tokens must be an integer >= 1 (omit it for the rollout's), got "
            f"{max_tokens!r}",
        ),
        (all(t.weight > 0 for t in e.tasks), "every eval.tasks weight must be > 0"),
    ]


PRESETS_PACKAGE = "arenagym.trainers"
PRESETS_DIR = "presets"


def preset_names() -> list[str]:
    """The bundled presets (``trainers/presets/*.toml``)."""
    folder = resources.files(PRESETS_PACKAGE).joinpath(PRESETS_DIR)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_config(name_or_path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """A preset name or a TOML file, with ``section.key=value`` overrides applied.

    Raises:
        ConfigError: an unknown preset, a missing or malformed file, or bad values.
    """
    text, source = _read(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML ({error})") from None
    config = TrainConfig.from_dict(data, source)
    return config.apply_overrides(overrides) if overrides else config


def _read(name_or_path: str | Path) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        return path.read_text(encoding="utf-8"), str(path)
    name = str(name_or_path)
    if name not in preset_names():
        raise ConfigError(
            f"{name!r} is neither a config file nor a preset ({', '.join(preset_names())})"
        )
    resource = resources.files(PRESETS_PACKAGE).joinpath(PRESETS_DIR, f"{name}.toml")
    return resource.read_text(encoding="utf-8"), f"preset {name}"
