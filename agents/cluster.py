"""Rollouts on a Ray cluster: generation engines and env hosts as Ray actors.

Why: one machine holds a few engines and a few dozen sandboxes; a cluster holds GPU nodes that
each serve the model and CPU nodes that each step many envs. :class:`ClusterRollout` keeps the
rollout engine's loop (one asyncio task per episode, generation batched across episodes) on the
driver and moves the two heavy parts out:

- **Generation** goes to :class:`EnginePool`, a
  :class:`~arenagym.agents.backends.interface.GenerationBackend` over ``engines`` Ray actors
  (:class:`GenerationEngine`), each holding one model (``hf``: transformers, ``vllm``: a vLLM
  engine) with the resources it declares (e.g. ``{"num_gpus": 1}``). Every batch the rollout
  engine sends is split across the engines, each row keeping its own sampling seed, so the
  trajectories are the ones one engine would sample. After a policy update
  :meth:`EnginePool.update_weights` puts the weights in Ray's object store once and every engine
  loads them before the next batch. An engine that dies is dropped from the pool (its rows go to
  the others): it is never restarted, since a restarted engine would hold stale weights.
- **Env stepping** goes to :class:`EnvHosts`: ``env_workers`` Ray actors (:class:`EnvHost`), each
  hosting many envs at once. An episode's env is built on the host with the fewest live envs and
  stays there, so an SWE-v0 sandbox runs on the node of the host that plays its episode. A host
  that dies is restarted by Ray with no envs; the episodes it held end as ``env_error`` (and are
  played again on a fresh env with ``retry_env_errors``).

Every node needs arenagym (and the families its episodes use) installed at the driver's version.

Example (a private one-machine Ray; ``address`` takes ``auto`` or a cluster's ``HOST:PORT``):
    >>> from arenagym.agents.backends.interface import SamplingParams
    >>> from arenagym.agents.rollout import EpisodeSpec, RolloutConfig
    >>> cluster = ClusterRollout.start("hf", "smollm2-135m-instruct", address="local",
    ...                                engines=2, env_workers=2)  # doctest: +SKIP
    >>> trajectories = cluster.run([EpisodeSpec("Math-v0", seed=s) for s in range(8)],
    ...                            RolloutConfig(SamplingParams(max_tokens=64)))  # doctest: +SKIP
    >>> cluster.update_weights(policy.state_dict())  # after each update  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from arenagym.agents.backends.interface import (
    Completion,
    Conversation,
    SamplingParams,
    chat_prompt_ids,
)
from arenagym.agents.rollout import EpisodeSpec, RolloutConfig, RolloutEngine, Trajectory

__all__ = [
    "ClusterRollout",
    "ClusterSetupError",
    "EnginePool",
    "EnvHost",
    "EnvHosts",
    "GenerationEngine",
    "RemoteEnv",
    "connect",
    "lost_errors",
    "ray_options",
]

#: The keys a resource declaration may hold (options of ``ray.remote``).
RESOURCE_KEYS = frozenset({"num_cpus", "num_gpus", "memory", "resources", "accelerator_type"})

#: Engine kinds an actor can hold (an ``openai`` endpoint needs no actor: give its URL instead).
ENGINE_KINDS = ("hf", "vllm")


class ClusterSetupError(ValueError):
    """Ray is missing, no cluster answers at the address, or a declaration is wrong."""


# --------------------------------------------------------------------------- connecting


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a ``HOST:PORT`` that nothing answers at (Ray itself retries its connection
    for minutes before giving up). ``auto``, ``local`` and ``ray://`` addresses are left to Ray.

    >>> check_reachable("127.0.0.1:1")
    Traceback (most recent call last):
    ...
    arenagym.agents.cluster.ClusterSetupError: --ray 127.0.0.1:1: nothing answers at that address (ConnectionRefusedError); start a cluster with `ray start --head`, or give its address
    """
    if address in ("auto", "local") or "://" in address:
        return
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterSetupError(
            f"--ray {address}: expected auto, local, HOST:PORT or ray://HOST:PORT"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, UnicodeError) as error:
        raise ClusterSetupError(
            f"--ray {address}: nothing answers at that address ({type(error).__name__}); "
            "start a cluster with `ray start --head`, or give its address"
        ) from None


def connect(address: str) -> Any:
    """Connect this process to the Ray cluster at ``address`` (``"auto"``: the one started on
    this machine with ``ray start``; ``"local"``: start a private one-machine Ray) unless it is
    connected already; the ``ray`` module. Raises :class:`ClusterSetupError` when Ray is not
    installed or no cluster answers.

    Example:
        >>> ray = connect("auto")  # doctest: +SKIP
        >>> ray.cluster_resources()["CPU"]  # doctest: +SKIP
        4.0
    """
    try:
        import ray
    except ImportError:
        raise ClusterSetupError(
            "--ray needs Ray: pip install 'arenagym[ray]' (on the driver and every node)"
        ) from None
    check_reachable(address)
    if not ray.is_initialized():
        if address not in ("auto", "local"):
            _send_token_if_configured()
        try:
            if address == "local":
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ClusterSetupError(
                f"--ray {address}: cannot connect to a Ray cluster ({type(error).__name__}: "
                f"{error}); start one with `ray start --head` (and `ray start --address=HEAD:6379` "
                "on the other nodes), or give its address; a cluster with token authentication "
                "(the default of `ray start` since Ray 2.59) needs its token here: "
                "`ray get-auth-token` on the head, saved as ~/.ray/auth_token or given as "
                "RAY_AUTH_TOKEN"
            ) from None
    return ray


def _send_token_if_configured() -> None:
    """Turn on Ray's token authentication for this process when a token is configured
    (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) and ``RAY_AUTH_MODE``
    is unset.

    Why: ``ray start --head`` enables token authentication by default since Ray 2.59, but Ray
    2.59-2.60 only send the token when connecting with ``address="auto"``; with an explicit
    ``HOST:PORT`` the connection is refused after a minute of retries. Ray 2.61 sends it for
    every address; this does the same on earlier versions, through the function Ray itself calls
    for ``auto`` (a client sending a token also connects to a cluster without authentication).
    A Ray without that function is left alone.
    """
    with contextlib.suppress(ImportError, AttributeError):
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )

        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """The exceptions of ``ray.get`` that mean a task's worker, node, actor or result was lost,
    as opposed to an error of the task's own code."""
    exceptions = ray.exceptions
    names = (
        "WorkerCrashedError",
        "NodeDiedError",
        "ObjectLostError",
        "OwnerDiedError",
        "LocalRayletDiedError",
        "TaskCancelledError",
        "ActorDiedError",
        "ActorUnavailableError",
        "RayActorError",
    )
    return tuple(getattr(exceptions, name) for name in names if hasattr(exceptions, name))


def ray_options(resources: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """``resources`` checked as options of ``ray.remote`` (default one CPU).

    >>> ray_options({"num_gpus": 1}, "engine_resources")
    {'num_cpus': 1, 'num_gpus': 1}
    >>> ray_options({"gpus": 1}, "engine_resources")
    Traceback (most recent call last):
    ...
    arenagym.agents.cluster.ClusterSetupError: engine_resources: unknown key 'gpus'; use accelerator_type, memory, num_cpus, num_gpus, resources
    """
    options: dict[str, Any] = {"num_cpus": 1}
    for key, value in dict(resources or {}).items():
        if key not in RESOURCE_KEYS:
            raise ClusterSetupError(
                f"{where}: unknown key {key!r}; use {', '.join(sorted(RESOURCE_KEYS))}"
            )
        if key == "resources":
            if not isinstance(value, Mapping):
                raise ClusterSetupError(f"{where}: resources must be a table of name = amount")
        elif key == "accelerator_type":
            if not isinstance(value, str):
                raise ClusterSetupError(f"{where}: accelerator_type must be a string")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ClusterSetupError(f"{where}: {key} must be a number >= 0, got {value!r}")
        options[key] = value
    return options


def check_fits(ray: Any, wanted: Mapping[str, float], what: str) -> None:
    """Raise :class:`ClusterSetupError` when the cluster's total resources cannot hold
    ``wanted`` (``{"CPU": 4, "GPU": 2}``): the actors would wait for them forever."""
    total = ray.cluster_resources()
    short = [
        f"{amount:g} {name}" + f" (the cluster has {total.get(name, 0):g})"
        for name, amount in wanted.items()
        if amount > total.get(name, 0) + 1e-9
    ]
    if short:
        raise ClusterSetupError(
            f"{what} need {', '.join(short)}: add nodes, or declare fewer resources per actor "
            "(e.g. engine_resources / env_resources num_cpus = 0.5)"
        )


def _wanted(options: Mapping[str, Any], count: int) -> dict[str, float]:
    wanted = {
        "CPU": float(options.get("num_cpus", 0)) * count,
        "GPU": float(options.get("num_gpus", 0)) * count,
    }
    for name, amount in dict(options.get("resources") or {}).items():
        wanted[str(name)] = float(amount) * count
    return {name: amount for name, amount in wanted.items() if amount > 0}


def _node_id() -> str:
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # outside Ray (a direct test of the class)
        return socket.gethostname()


# --------------------------------------------------------------------------- generation


class GenerationEngine:
    """One model on a Ray actor (the class is wrapped with ``ray.remote`` by :class:`EnginePool`).

    Args:
        kind: ``"hf"`` (transformers) or ``"vllm"``.
        model: a model directory or a registry name (resolved on the engine's node).
        backend_kwargs: the backend's keyword arguments (``device``, ``dtype``, or ``vllm.LLM``'s
            engine arguments such as ``max_model_len``).
    """

    def __init__(self, kind: str, model: str, backend_kwargs: Mapping[str, Any]) -> None:
        from arenagym.agents.specs import LLMSpec, llm_backend

        if kind not in ENGINE_KINDS:
            raise ValueError(f"engine kind must be one of {', '.join(ENGINE_KINDS)}, got {kind!r}")
        self.backend = llm_backend(LLMSpec(kind, model, backend=dict(backend_kwargs)))
        #: Weight pushes received (0: the model's own weights).
        self.weights_version = 0

    def info(self) -> dict[str, Any]:
        """Where the engine runs and what it holds."""
        return {
            "node_id": _node_id(),
            "pid": os.getpid(),
            "max_context": self.backend.max_context,
            "weights_version": self.weights_version,
        }

    def generate_each(
        self, conversations: Sequence[Conversation], params: Sequence[SamplingParams]
    ) -> list[Completion]:
        """One completion per conversation with its own sampling parameters (rows that share
        parameters are generated as one batch where the backend has no ``generate_each``)."""
        each = getattr(self.backend, "generate_each", None)
        if callable(each):
            return list(each(list(conversations), list(params)))
        out: list[Completion | None] = [None] * len(conversations)
        groups: dict[SamplingParams, list[int]] = {}
        for row, row_params in enumerate(params):
            groups.setdefault(row_params, []).append(row)
        for row_params, rows in groups.items():
            completions = self.backend.generate([conversations[r] for r in rows], row_params)
            for row, completion in zip(rows, completions, strict=True):
                out[row] = completion
        return [completion for completion in out if completion is not None]

    def count_tokens(self, conversation: Conversation) -> int:
        """The prompt length of ``conversation`` (chat template applied)."""
        return int(self.backend.count_tokens(conversation))

    def update_weights(self, weights: Mapping[str, Any]) -> int:
        """Load ``weights`` (Hugging Face names; all or some tensors); the new version."""
        self.backend.update_weights(weights)
        self.weights_version += 1
        return self.weights_version


class EnginePool:
    """A generation backend over :class:`GenerationEngine` actors; see the module docstring.

    ``tokenizer`` (optional, the model's): prompt lengths are counted on the driver instead of
    asking an engine (one round trip per request saved).
    """

    def __init__(self, engines: Sequence[Any], tokenizer: Any = None) -> None:
        import ray

        if not engines:
            raise ClusterSetupError("an engine pool needs at least one engine")
        self._ray = ray
        self._lost = lost_errors(ray)
        self.engines: list[Any] = list(engines)
        self.tokenizer = tokenizer
        self.infos: list[dict[str, Any]] = ray.get([e.info.remote() for e in self.engines])
        contexts = [info["max_context"] for info in self.infos]
        self._max_context = None if None in contexts else min(int(c) for c in contexts)
        #: Weight pushes made (every live engine holds this version).
        self.weights_version = 0
        #: Engines dropped because they died, with the error.
        self.dropped: list[str] = []
        self._lock = threading.Lock()
        self._next = 0

    @classmethod
    def start(
        cls,
        kind: str,
        model: str,
        *,
        engines: int = 1,
        resources: Mapping[str, Any] | None = None,
        backend_kwargs: Mapping[str, Any] | None = None,
        tokenizer: Any = None,
        address: str | None = None,
    ) -> EnginePool:
        """Start ``engines`` actors of ``kind`` on ``model``, each reserving ``resources``
        (default one CPU; e.g. ``{"num_gpus": 1}``), spread over the cluster's nodes."""
        if kind not in ENGINE_KINDS:
            raise ClusterSetupError(
                f"engine kind must be one of {', '.join(ENGINE_KINDS)}, got {kind!r} (an "
                "OpenAI-compatible endpoint needs no engine actor: use its openai: spec)"
            )
        if engines < 1:
            raise ClusterSetupError(f"engines must be >= 1, got {engines}")
        options = ray_options(resources, "engine_resources")
        ray = connect(address) if address else _connected_ray()
        check_fits(ray, _wanted(options, engines), f"{engines} engine(s) of {options}")
        actor = ray.remote(max_restarts=0, scheduling_strategy="SPREAD", **options)(
            GenerationEngine
        )
        handles = [actor.remote(kind, model, dict(backend_kwargs or {})) for _ in range(engines)]
        try:
            return cls(handles, tokenizer=tokenizer)
        except BaseException:
            for handle in handles:
                ray.kill(handle)
            raise

    @property
    def max_context(self) -> int | None:
        """The smallest context of the engines (they hold one model)."""
        return self._max_context

    def count_tokens(self, conversation: Conversation) -> int:
        """The prompt length, counted with ``tokenizer`` or by an engine."""
        if self.tokenizer is not None:
            return len(chat_prompt_ids(self.tokenizer, conversation))
        return int(self._call(lambda engine: engine.count_tokens.remote(list(conversation))))

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        """One completion per conversation (all with ``params``)."""
        return self.generate_each(conversations, [params] * len(conversations))

    def generate_each(
        self, conversations: Sequence[Conversation], params: Sequence[SamplingParams]
    ) -> list[Completion]:
        """The rows split into one contiguous share per live engine, generated at once."""
        rows = list(range(len(conversations)))
        out: dict[int, Completion] = {}
        while rows:
            engines = self._live()
            shares = _split(rows, len(engines))
            pending = [
                (
                    engine,
                    share,
                    engine.generate_each.remote(
                        [list(conversations[r]) for r in share], [params[r] for r in share]
                    ),
                )
                for engine, share in zip(engines, shares, strict=False)
                if share
            ]
            rows = []
            for engine, share, ref in pending:
                try:
                    completions = self._ray.get(ref)
                except self._lost as error:
                    self._drop(engine, error)
                    rows.extend(share)  # played again on the engines that are left
                    continue
                out.update(zip(share, completions, strict=True))
        return [out[row] for row in range(len(conversations))]

    def update_weights(self, weights: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Send ``weights`` (named tensors) to every engine; return once all have loaded them.

        The tensors are copied to CPU and put in the object store once, whatever the number of
        engines."""
        items = weights.items() if isinstance(weights, Mapping) else weights
        cpu = {str(name): tensor.detach().to("cpu") for name, tensor in items}
        ref = self._ray.put(cpu)
        for engine in self._live():
            try:
                self._ray.get(engine.update_weights.remote(ref))
            except self._lost as error:
                self._drop(engine, error)
        self._live()  # raises if every engine died
        self.weights_version += 1

    def shutdown(self) -> None:
        """Stop every engine actor."""
        for engine in self.engines:
            with contextlib.suppress(Exception):  # gone already
                self._ray.kill(engine)
        self.engines = []

    def _live(self) -> list[Any]:
        with self._lock:
            if not self.engines:
                raise RuntimeError(
                    "every generation engine of the pool died: " + "; ".join(self.dropped)
                )
            return list(self.engines)

    def _drop(self, engine: Any, error: BaseException) -> None:
        with self._lock:
            if engine in self.engines:
                self.engines.remove(engine)
                self.dropped.append(f"{type(error).__name__}: {error}".splitlines()[0])

    def _call(self, submit: Callable[[Any], Any]) -> Any:
        while True:
            engines = self._live()
            with self._lock:
                engine = engines[self._next % len(engines)]
                self._next += 1
            try:
                return self._ray.get(submit(engine))
            except self._lost as error:
                self._drop(engine, error)


def _split(rows: list[int], parts: int) -> list[list[int]]:
    """``rows`` in ``parts`` contiguous shares whose sizes differ by at most one.

    >>> _split([0, 1, 2, 3, 4], 2)
    [[0, 1, 2], [3, 4]]
    """
    size, extra = divmod(len(rows), parts)
    shares, start = [], 0
    for part in range(parts):
        end = start + size + (part < extra)
        shares.append(rows[start:end])
        start = end
    return shares


def _connected_ray() -> Any:
    import ray

    if not ray.is_initialized():
        raise ClusterSetupError(
            "Ray is not initialised: pass address= ('auto', 'local' or HOST:PORT) or call "
            "ray.init() first"
        )
    return ray


# --------------------------------------------------------------------------- env hosting


class EnvHost:
    """Hosts envs on a Ray actor (wrapped with ``ray.remote`` by :class:`EnvHosts`); each env is
    called by handle. Many envs step at once (a threaded actor). ``imports``: modules imported
    first (e.g. a package that registers its own env ids, as a trainer config's ``imports``)."""

    def __init__(self, imports: Sequence[str] = ()) -> None:
        import arenagym.envs  # noqa: F401  (registers every arenagym env id)
        from arenagym.envs.core.loading import import_modules

        import_modules(imports)

        self._envs: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._next = 0
        #: Envs built here since the actor started.
        self.made = 0

    def make(self, env_id: str, kwargs: Mapping[str, Any]) -> int:
        """Build ``gym.make(env_id, **kwargs)`` here; its handle."""
        import gymnasium as gym

        env = gym.make(env_id, **dict(kwargs))
        with self._lock:
            handle = self._next
            self._next += 1
            self._envs[handle] = env
            self.made += 1
        return handle

    def call(self, handle: int, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``env.method(*args, **kwargs)`` of the env ``handle`` (``reset`` or ``step``)."""
        if method not in ("reset", "step"):
            raise ValueError(f"an env host calls reset and step only, not {method!r}")
        return getattr(self._env(handle), method)(*args, **kwargs)

    def close(self, handle: int) -> None:
        """Close the env ``handle`` and forget it."""
        with self._lock:
            env = self._envs.pop(handle, None)
        if env is not None:
            env.close()

    def stats(self) -> dict[str, Any]:
        """Where the host runs, how many envs it built and holds."""
        with self._lock:
            return {"node_id": _node_id(), "pid": os.getpid(), "made": self.made,
                    "live": len(self._envs)}  # fmt: skip

    def _env(self, handle: int) -> Any:
        with self._lock:
            env = self._envs.get(handle)
        if env is None:
            raise RuntimeError(
                f"env {handle} is not on this host (the host restarted after its process or node "
                "died, and its envs were lost)"
            )
        return env


class RemoteEnv:
    """The driver's proxy of an env on an :class:`EnvHost`: ``reset``, ``step`` and ``close``
    block until the host answers (the rollout engine calls them on its env threads)."""

    def __init__(self, ray: Any, host: Any, handle: int, on_close: Callable[[], None]) -> None:
        self._ray = ray
        self._host = host
        self._handle = handle
        self._on_close = on_close
        self._closed = False

    def reset(self, **kwargs: Any) -> Any:
        """The env's ``reset`` on its host."""
        return self._ray.get(self._host.call.remote(self._handle, "reset", (), kwargs))

    def step(self, action: Any) -> Any:
        """The env's ``step`` on its host."""
        return self._ray.get(self._host.call.remote(self._handle, "step", (action,), {}))

    def close(self) -> None:
        """Close the env on its host (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._ray.get(self._host.close.remote(self._handle))
        finally:
            self._on_close()


class EnvHosts:
    """``workers`` :class:`EnvHost` actors; :meth:`make` builds an episode's env on the host
    with the fewest live envs (a :class:`RemoteEnv`)."""

    def __init__(self, hosts: Sequence[Any]) -> None:
        import ray

        if not hosts:
            raise ClusterSetupError("env hosts: at least one host is needed")
        self._ray = ray
        self.hosts = list(hosts)
        self._live = [0] * len(self.hosts)
        self._lock = threading.Lock()

    @classmethod
    def start(
        cls,
        workers: int,
        *,
        resources: Mapping[str, Any] | None = None,
        envs_per_worker: int = 64,
        imports: Sequence[str] = (),
        address: str | None = None,
    ) -> EnvHosts:
        """Start ``workers`` hosts, each reserving ``resources`` (default one CPU) and stepping
        up to ``envs_per_worker`` envs at once, spread over the cluster's nodes."""
        if workers < 1:
            raise ClusterSetupError(f"env_workers must be >= 1, got {workers}")
        if envs_per_worker < 1:
            raise ClusterSetupError(f"envs_per_worker must be >= 1, got {envs_per_worker}")
        options = ray_options(resources, "env_resources")
        ray = connect(address) if address else _connected_ray()
        check_fits(ray, _wanted(options, workers), f"{workers} env host(s) of {options}")
        actor = ray.remote(
            max_restarts=-1, max_concurrency=envs_per_worker, scheduling_strategy="SPREAD",
            **options,
        )(EnvHost)  # fmt: skip
        hosts = [actor.remote(list(imports)) for _ in range(workers)]
        ray.get([host.stats.remote() for host in hosts])  # every host is up
        return cls(hosts)

    def make(self, spec: EpisodeSpec) -> RemoteEnv:
        """Build ``spec``'s env on the least busy host."""
        with self._lock:
            index = min(range(len(self.hosts)), key=self._live.__getitem__)
            self._live[index] += 1
        host = self.hosts[index]
        try:
            handle = self._ray.get(host.make.remote(spec.env_id, dict(spec.env_kwargs)))
        except BaseException:
            self._release(index)
            raise
        return RemoteEnv(self._ray, host, handle, lambda: self._release(index))

    def stats(self) -> list[dict[str, Any]]:
        """Each host's :meth:`EnvHost.stats`."""
        return list(self._ray.get([host.stats.remote() for host in self.hosts]))

    def shutdown(self) -> None:
        """Stop every host."""
        for host in self.hosts:
            with contextlib.suppress(Exception):  # gone already
                self._ray.kill(host)
        self.hosts = []

    def _release(self, index: int) -> None:
        with self._lock:
            self._live[index] -= 1


# --------------------------------------------------------------------------- the whole


class ClusterRollout:
    """The rollout engine with generation on an :class:`EnginePool` and, with ``env_hosts``,
    env stepping on :class:`EnvHosts` (without: in this process's env threads)."""

    def __init__(self, engines: EnginePool, env_hosts: EnvHosts | None = None) -> None:
        self.engines = engines
        self.env_hosts = env_hosts
        #: Sizes of the generation batches of the last run.
        self.batch_sizes: list[int] = []

    @classmethod
    def start(
        cls,
        kind: str,
        model: str,
        *,
        address: str = "auto",
        engines: int = 1,
        engine_resources: Mapping[str, Any] | None = None,
        backend_kwargs: Mapping[str, Any] | None = None,
        env_workers: int = 0,
        env_resources: Mapping[str, Any] | None = None,
        imports: Sequence[str] = (),
        tokenizer: Any = None,
    ) -> ClusterRollout:
        """Connect to the cluster at ``address``, start ``engines`` engines and ``env_workers``
        env hosts (0: envs step on the driver; ``imports``: modules the hosts import first)."""
        ray = connect(address)
        wanted = _wanted(ray_options(engine_resources, "engine_resources"), engines)
        for name, amount in _wanted(ray_options(env_resources, "env_resources"),
                                    env_workers).items():  # fmt: skip
            wanted[name] = wanted.get(name, 0) + amount
        check_fits(ray, wanted, f"{engines} engine(s) and {env_workers} env host(s)")
        pool = EnginePool.start(
            kind, model, engines=engines, resources=engine_resources,
            backend_kwargs=backend_kwargs, tokenizer=tokenizer,
        )  # fmt: skip
        try:
            hosts = (
                EnvHosts.start(env_workers, resources=env_resources, imports=imports)
                if env_workers
                else None
            )
        except BaseException:
            pool.shutdown()
            raise
        return cls(pool, hosts)

    def run(self, episodes: Sequence[EpisodeSpec], config: RolloutConfig) -> list[Trajectory]:
        """Play ``episodes`` (one trajectory each, in order), as
        :class:`~arenagym.agents.rollout.RolloutEngine` does on one backend."""
        make_env = self.env_hosts.make if self.env_hosts is not None else None
        if make_env is not None:  # each env call blocks a thread on its host's answer
            threads = max(config.env_threads, min(config.concurrency, len(episodes)))
            config = replace(config, env_threads=threads)
        engine = RolloutEngine(self.engines, config, make_env=make_env)
        trajectories = engine.run(list(episodes))
        self.batch_sizes = engine.batch_sizes
        return trajectories

    def update_weights(self, weights: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Every engine loads ``weights`` (:meth:`EnginePool.update_weights`)."""
        self.engines.update_weights(weights)

    def shutdown(self) -> None:
        """Stop the engines and the env hosts."""
        self.engines.shutdown()
        if self.env_hosts is not None:
            self.env_hosts.shutdown()
