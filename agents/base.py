"""The :class:`Agent` protocol and loading agents by name.

An agent is anything with ``reset(system_prompt)`` and ``act(observation) -> str``: arenagym's
built-in baselines, an LLM agent, or a class in the user's own package. Agents are named by

- a built-in name (``"random"``, ``"math-solver"``; see :func:`builtin_agents`),
- an entry point in the group ``arenagym.agents`` advertised by an installed package, or
- ``"package.module:Class"`` (any importable class or factory), or
- an LLM spec: ``"hf:PATH"`` (a chat agent on a Hugging Face transformers model),
  ``"openai:URL,model=NAME"`` (on any OpenAI-compatible server) or ``"vllm:PATH"`` (on vLLM
  in-process), each optionally followed by ``,key=value`` pairs (see :func:`parse_llm_spec`),

and built with keyword arguments by :func:`load_agent`.

An agent ends an episode early and on purpose (not as an error) by raising :class:`EpisodeStop`
from ``act``/``aact``: the chat agent does so when the next request would overflow the model's
context (``"context_overflow"``) or its token budget is spent (``"max_tokens"``); the benchmark
runner and the rollout engine record ``stop_reason`` and end the episode normally.

Example:
    >>> agent = load_agent("random", seed=0, max_length=8)
    >>> agent.reset("You are playing a game.")
    >>> isinstance(agent.act("Your move."), str)
    True
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

ENTRY_POINT_GROUP = "arenagym.agents"

#: The backend kinds an LLM spec (``"KIND:TARGET[,key=value...]"``) can name.
LLM_SPEC_KINDS: tuple[str, ...] = ("hf", "openai", "vllm")


class EpisodeStop(Exception):
    """Raised by an agent to end the episode now with ``stop_reason``; it is not an error.

    The benchmark runner and the rollout engine catch it around every ``act``/``aact`` call and
    record ``stop_reason`` (e.g. ``"context_overflow"``, ``"max_tokens"``) as the episode's end,
    with ``str(stop)`` and ``stop.info`` as details.

    Example:
        >>> stop = EpisodeStop("context_overflow", "the prompt has 600 tokens", prompt_tokens=600)
        >>> stop.stop_reason, stop.info, str(stop)
        ('context_overflow', {'prompt_tokens': 600}, 'the prompt has 600 tokens')
    """

    def __init__(self, stop_reason: str, message: str = "", **info: Any) -> None:
        super().__init__(message or stop_reason)
        self.stop_reason = stop_reason
        self.info = info


@runtime_checkable
class Agent(Protocol):
    """What every env-playing agent implements. One instance plays one episode at a time."""

    def reset(self, system_prompt: str) -> None:
        """Start a new episode whose instructions are ``system_prompt``."""

    def act(self, observation: str) -> str:
        """The text action for ``observation`` (on the first call: the task prompt)."""


def builtin_agents() -> dict[str, str]:
    """Built-in agent names mapped to their ``module:Class``."""
    return {
        "random": "arenagym.agents.baselines:RandomTextAgent",
        "math-solver": "arenagym.agents.baselines:MathSolverAgent",
    }


def resolve_agent_factory(spec: str) -> Callable[..., Any]:
    """The class (or factory) that ``spec`` names; raises ``ValueError`` saying what was tried."""
    llm = parse_llm_spec(spec)
    if llm is not None:
        llm.check()
        return functools.partial(build_llm_agent, llm)
    target = builtin_agents().get(spec)
    if target is None and ":" not in spec:  # "module:Class" is never an entry point's name
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name == spec:
                return entry_point.load()
    target = target or spec
    if ":" not in target:
        known = ", ".join(sorted(builtin_agents()))
        raise ValueError(
            f"unknown agent {spec!r}: use a built-in name ({known}), an entry point of the "
            f"'{ENTRY_POINT_GROUP}' group, or 'package.module:Class'"
        )
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"agent {spec!r}: cannot import module {module_name!r} ({error})"
        ) from None
    factory = module
    for part in attribute.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise ValueError(
                f"agent {spec!r}: module {module_name!r} has no {attribute!r}"
            ) from None
    if not callable(factory):
        raise ValueError(f"agent {spec!r}: {target} is not a class or factory")
    return factory


def load_agent(spec: str, **kwargs: Any) -> Agent:
    """Build the agent named ``spec`` with ``kwargs`` and check that it has ``reset`` and ``act``.

    A built object that is only a callable ``observation -> str`` (a TextArena agent) is wrapped
    in :class:`~arenagym.agents.adapters.CallableAgent`.
    """
    from arenagym.agents.adapters import CallableAgent

    agent = resolve_agent_factory(spec)(**kwargs)
    if not isinstance(agent, Agent) and callable(agent):
        agent = CallableAgent(agent)
    if not isinstance(agent, Agent):
        raise TypeError(
            f"agent {spec!r} built a {type(agent).__name__}, which lacks reset(system_prompt) "
            "and/or act(observation), and is not a callable observation -> str"
        )
    return agent


# --------------------------------------------------------------------------- LLM specs

#: Spec keys that configure the chat agent itself rather than sampling or the backend.
_AGENT_KEYS = frozenset({"max_context", "max_total_tokens"})


@dataclass(frozen=True)
class LLMSpec:
    """A parsed LLM agent spec: which backend, on what, with which settings.

    ``sampling`` holds :class:`~arenagym.agents.backends.base.SamplingParams` fields, ``agent``
    the chat agent's own settings (``max_context``, ``max_total_tokens``) and ``backend`` every
    other key, passed to the backend's constructor (e.g. ``model``, ``device``, ``dtype``).
    """

    kind: str
    target: str
    sampling: dict[str, Any] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)
    backend: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise ``ValueError`` naming the fix when this spec cannot work here."""
        if self.kind == "hf" and not Path(self.target).is_dir():
            raise ValueError(
                f"agent 'hf:{self.target}': no model directory at {self.target!r} "
                "(give the path of a saved Hugging Face model)"
            )
        if self.kind == "openai" and "model" not in self.backend:
            raise ValueError(
                f"agent 'openai:{self.target}': name the model, e.g. 'openai:{self.target},model=NAME'"
            )
        if self.kind == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ValueError(
                f"agent 'vllm:{self.target}' needs vLLM, which is not installed here: "
                "pip install 'arenagym[vllm]' (on a machine with a GPU)"
            )
        if self.kind == "hf" and importlib.util.find_spec("transformers") is None:
            raise ValueError(
                f"agent 'hf:{self.target}' needs transformers and torch: pip install 'arenagym[hf]'"
            )

    def backend_key(self) -> str:
        """What identifies the backend (not the sampling): one backend per key per process."""
        return json.dumps([self.kind, self.target, self.backend], sort_keys=True, default=repr)


def _parse_value(text: str) -> Any:
    """``"0.7"`` -> 0.7, ``"true"`` -> True, ``"null"`` -> None, anything else stays text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_llm_spec(spec: str) -> LLMSpec | None:
    """Parse ``"KIND:TARGET[,key=value...]"`` (KIND in :data:`LLM_SPEC_KINDS`); else ``None``.

    Values are read as JSON where they parse (numbers, ``true``, ``null``), else as text;
    ``stop`` may list several strings separated by ``|``.

    Example:
        >>> s = parse_llm_spec("openai:http://127.0.0.1:8000/v1,model=tiny,temperature=0,max_tokens=32")
        >>> s.kind, s.target, s.backend, s.sampling
        ('openai', 'http://127.0.0.1:8000/v1', {'model': 'tiny'}, {'temperature': 0, 'max_tokens': 32})
        >>> parse_llm_spec("hf:models/tiny,max_context=256,device=cpu").agent
        {'max_context': 256}
        >>> parse_llm_spec("arenagym.agents.baselines:RandomTextAgent") is None
        True
    """
    kind, colon, rest = spec.partition(":")
    if not colon or kind not in LLM_SPEC_KINDS:
        return None
    target, *pairs = rest.split(",")
    if not target:
        raise ValueError(f"agent {spec!r}: say what to load after '{kind}:'")
    from arenagym.agents.backends.base import SamplingParams  # light: no torch

    sampling_keys = set(SamplingParams.__dataclass_fields__)
    parsed = LLMSpec(kind, target)
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValueError(f"agent {spec!r}: expected key=value after the target, got {pair!r}")
        if key == "stop":
            parsed.sampling[key] = tuple(value.split("|"))
        elif key in sampling_keys:
            parsed.sampling[key] = _parse_value(value)
        elif key in _AGENT_KEYS:
            parsed.agent[key] = _parse_value(value)
        else:
            parsed.backend[key] = value if key == "model" else _parse_value(value)
    return parsed


_BACKENDS: dict[str, Any] = {}
_BACKENDS_LOCK = threading.Lock()


def llm_backend(spec: LLMSpec) -> Any:
    """The backend for ``spec``, built once per process and shared by every agent that names it.

    The benchmark runner builds one agent per episode; sharing the backend means the model is
    loaded once per run and the episodes' requests can be batched together.
    """
    key = spec.backend_key()
    with _BACKENDS_LOCK:
        backend = _BACKENDS.get(key)
        if backend is None:
            backend = _BACKENDS[key] = _build_backend(spec)
        return backend


def clear_backend_cache() -> None:
    """Forget every cached backend (the next LLM agent loads its model again)."""
    with _BACKENDS_LOCK:
        _BACKENDS.clear()


def _build_backend(spec: LLMSpec) -> Any:
    spec.check()
    if spec.kind == "hf":
        from arenagym.agents.backends.hf import TransformersBackend

        return TransformersBackend(spec.target, **spec.backend)
    if spec.kind == "openai":
        from arenagym.agents.backends.openai_compat import OpenAICompatibleBackend

        return OpenAICompatibleBackend(spec.target, **spec.backend)
    from arenagym.agents.backends.vllm import VLLMBackend

    return VLLMBackend(spec.target, **spec.backend)


def build_llm_agent(spec: LLMSpec | str, **kwargs: Any) -> Any:
    """A :class:`~arenagym.agents.chat.ChatAgent` for ``spec`` on its (shared) backend.

    ``kwargs`` (e.g. the CLI's ``--agent-kwargs``) override the spec's settings and are sorted
    the same way: sampling fields, ``max_context``/``max_total_tokens``, then ``ChatAgent``
    keyword arguments (``template``).
    """
    from arenagym.agents.backends.base import SamplingParams
    from arenagym.agents.chat import ChatAgent

    parsed = parse_llm_spec(spec) if isinstance(spec, str) else spec
    if parsed is None:
        raise ValueError(f"{spec!r} is not an LLM spec ({', '.join(LLM_SPEC_KINDS)}:...)")
    sampling = dict(parsed.sampling)
    agent = dict(parsed.agent)
    for key, value in kwargs.items():
        if key in SamplingParams.__dataclass_fields__:
            sampling[key] = tuple(value) if key == "stop" else value
        else:
            agent[key] = value
    params = SamplingParams(**sampling)
    return ChatAgent(llm_backend(parsed), params, **agent)
