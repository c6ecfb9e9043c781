"""Serve any arenagym id as an OpenEnv environment, and play OpenEnv servers as arenagym ids.

Why: `OpenEnv <https://github.com/meta-pytorch/OpenEnv>`_ (``openenv-core``) is a common way to
publish an RL environment: an HTTP/WebSocket server that any trainer talks to through an
``EnvClient``. This module goes both ways:

- **Serving.** :class:`ArenaEnvironment` is an OpenEnv ``Environment`` over one episode of an
  arenagym id at a time (a :class:`~arenagym.envs.integrations.session.TextSession`).
  :func:`create_app` builds OpenEnv's FastAPI app for an id, :func:`serve` runs it with uvicorn,
  and ``python -m arenagym.envs.integrations.openenv Math-v0 --port 8000 --kwargs '{"difficulty":
  1}'`` does both from a shell. An action is :class:`ArenaAction` (``{"message": text}``, the
  model's raw reply); an :class:`ArenaObservation` carries the env's text, ``reward``, ``done``
  and the env's ``info`` fields (``stop_reason``, ``invalid_action``, ``clean_reward``,
  ``reward_components``, and the whole ``info`` made JSON-safe). Reset takes OpenEnv's
  ``seed`` (and ``episode_id``); the same seed gives the same episode. Every WebSocket session
  (one :class:`ArenaEnvClient` or ``GenericEnvClient``) gets its own env, up to
  ``max_sessions`` at once. OpenEnv's plain HTTP ``/reset`` and ``/step`` are stateless (each
  request builds a fresh env), so a multi-turn episode needs the WebSocket session.
- **Consuming.** :func:`register_openenv` registers a Gymnasium id whose env,
  :class:`OpenEnvTextEnv`, is a ``gymnasium.Env[str, str]`` client of any OpenEnv server whose
  action is one text field; it follows arenagym's env contract (``system_prompt``/``task_id`` in
  the reset ``info``, ``reward_components`` and ``stop_reason`` in the step ``info``). A server
  that is down or speaks another action schema is a clear error when the env is made.

Example (in-process; over the network the same objects travel as JSON):
    >>> env = ArenaEnvironment("Math-v0", {"difficulty": 1})
    >>> first = env.reset(seed=3)
    >>> first.done, first.system_prompt[:24], first.task_id == env.state.task_id
    (False, 'You are solving a math p', True)
    >>> obs = env.step(ArenaAction(message="I have no idea."))
    >>> obs.done, obs.reward, obs.stop_reason, obs.invalid_action, obs.clean_reward
    (True, 0.0, 'no_answer', True, 0.0)
    >>> env.state.step_count, [m["role"] for m in env.state.messages]
    (1, ['system', 'user', 'assistant', 'user'])
    >>> env.close()

Over HTTP, a real server and both directions (``running_server`` serves on a free port):
    >>> import gymnasium as gym
    >>> with running_server("Math-v0", difficulty=1) as url:
    ...     with ArenaEnvClient(base_url=url).sync() as client:
    ...         result = client.reset(seed=3)
    ...         result = client.step(ArenaAction(message=r"\\boxed{10}"))
    ...     spec = register_openenv("Remote/Math-v0", url)
    ...     remote = gym.make("Remote/Math-v0")
    ...     text, info = remote.reset(seed=3)
    ...     remote.close()
    >>> result.reward, result.observation.stop_reason, text == first.text
    (1.0, 'solved', True)
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

import gymnasium as gym

from arenagym.envs.core.spaces import UnicodeText
from arenagym.envs.integrations.session import EpisodeRef, TextSession

try:
    from fastapi import FastAPI
    from openenv.core.client_types import StepResult
    from openenv.core.env_client import EnvClient
    from openenv.core.env_server.http_server import create_app as _openenv_create_app
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import (
        Action,
        ConcurrencyConfig,
        EnvironmentMetadata,
        Observation,
        State,
    )
    from openenv.core.generic_client import GenericEnvClient
    from pydantic import Field
    from starlette.websockets import WebSocketDisconnect
    from websockets.exceptions import ConnectionClosed
except ImportError as _error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "arenagym.envs.integrations.openenv needs openenv-core: pip install 'arenagym[openenv]'"
    ) from _error

__all__ = [
    "ArenaAction",
    "ArenaEnvClient",
    "ArenaEnvironment",
    "ArenaObservation",
    "ArenaState",
    "OpenEnvTextEnv",
    "create_app",
    "main",
    "register_openenv",
    "running_server",
    "serve",
]

#: How many WebSocket sessions (each with its own env) a server holds at once by default.
DEFAULT_MAX_SESSIONS = 8
_SERVE_HINT = "start one with: python -m arenagym.envs.integrations.openenv ENV_ID --port PORT"


# ------------------------------------------------------------------------------ wire types
class ArenaAction(Action):
    """One turn of the agent: the raw text the model wrote (garbage included)."""

    message: str = Field(..., description="The model's reply, as raw text")


class ArenaObservation(Observation):
    """What the agent sees after a reset or a step, plus the env's ``info`` fields.

    ``reward`` is ``None`` after a reset. ``truncated`` says that a ``done`` episode was cut
    short (a turn limit) rather than finished. ``info`` is the env's whole ``info`` dict with
    every value made JSON-safe.
    """

    text: str = Field(default="", description="The env's text: the task on reset, else what is new")
    system_prompt: str = Field(default="", description="The system prompt of the episode")
    task_id: str = Field(default="", description="The id of the episode's task")
    truncated: bool = Field(default=False, description="Whether a done episode was cut short")
    invalid_action: bool = Field(default=False, description="Whether the action was invalid")
    stop_reason: str | None = Field(default=None, description="Why the episode ended")
    clean_reward: float | None = Field(default=None, description="The step's noiseless score")
    reward_components: dict[str, float] = Field(
        default_factory=dict, description="Named parts that sum to the reward"
    )
    info: dict[str, Any] = Field(default_factory=dict, description="The env's info, JSON-safe")


class ArenaState(State):
    """The episode so far: its reference (id, kwargs, seed), totals and chat messages."""

    env_id: str = ""
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    task_id: str = ""
    done: bool = False
    stop_reason: str | None = None
    total_reward: float = 0.0
    total_clean_reward: float = 0.0
    messages: list[dict[str, str]] = Field(default_factory=list)


def _plain(value: Any) -> Any:
    """``value`` as JSON-safe data: mappings, lists, str, numbers, bool, None (else its repr)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    for method in ("tolist", "item"):  # numpy arrays and scalars
        if callable(getattr(value, method, None)):
            try:
                return _plain(getattr(value, method)())
            except (TypeError, ValueError):
                break
    return repr(value)


# ------------------------------------------------------------------------------- serving
class ArenaEnvironment(Environment[ArenaAction, ArenaObservation, ArenaState]):
    """An OpenEnv ``Environment`` over an arenagym id: one episode (a ``TextSession``) per reset.

    Args:
        env_id: a registered Gymnasium id whose actions and observations are text.
        env_kwargs: keyword arguments for ``gymnasium.make``.

    ``reset(seed=None, episode_id=None)`` starts an episode (``seed``: an int >= 0; the same
    seed gives the same episode); any other reset field is an error that names it. ``step``
    sends the action's text to the env; garbage text is the env's penalised step, not an error.
    Stepping before a reset or after the episode ended raises ``RuntimeError``.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.ref = EpisodeRef.from_columns(env_id, dict(env_kwargs or {}), None)
        self._session: TextSession | None = None
        self._state = ArenaState(env_id=env_id, env_kwargs=dict(self.ref.env_kwargs))

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any
    ) -> ArenaObservation:
        if kwargs:
            raise ValueError(
                f"reset: unknown field(s) {sorted(kwargs)}; {self.ref.env_id} takes seed and "
                "episode_id"
            )
        if episode_id is not None and not isinstance(episode_id, str):
            raise ValueError(f"episode_id: expected a string, got {episode_id!r}")
        ref = EpisodeRef.from_columns(self.ref.env_id, self.ref.env_kwargs, seed)
        self.close()
        session = self._session = TextSession(ref)
        info = session.reset_info
        self._state = ArenaState(
            episode_id=episode_id or str(uuid.uuid4()),
            env_id=ref.env_id,
            env_kwargs=dict(ref.env_kwargs),
            seed=ref.seed,
            task_id=str(info.get("task_id", "")),
            messages=[dict(m) for m in session.messages],
        )
        return ArenaObservation(
            text=session.prompt,
            system_prompt=str(info.get("system_prompt", "")),
            task_id=self._state.task_id,
            info=_plain(info),
        )

    def step(
        self, action: ArenaAction, timeout_s: float | None = None, **kwargs: Any
    ) -> ArenaObservation:
        session = self._session
        if session is None:
            raise RuntimeError(
                f"{self.ref.env_id}: step before reset. OpenEnv's HTTP /step is stateless (every "
                "request builds a fresh env); play an episode over a WebSocket session (/ws, "
                "an EnvClient)"
            )
        if session.done:
            raise RuntimeError(f"{self.ref.env_id}: the episode is over ({session.stop_reason})")
        outcome = session.send(action.message)
        info = outcome.info
        state = self._state
        state.step_count += 1
        state.done = outcome.done
        state.stop_reason = session.stop_reason
        state.total_reward = session.total_reward
        state.total_clean_reward = session.total_clean_reward
        state.messages = [dict(m) for m in session.messages]
        return ArenaObservation(
            text=outcome.observation,
            reward=outcome.reward,
            done=outcome.done,
            truncated=outcome.truncated,
            invalid_action=bool(info.get("invalid_action", False)),
            stop_reason=info.get("stop_reason") if outcome.done else None,
            clean_reward=outcome.clean_reward,
            reward_components={
                str(k): float(v) for k, v in info.get("reward_components", {}).items()
            },
            info=_plain(info),
        )

    @property
    def state(self) -> ArenaState:
        return self._state

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name=self.ref.env_id,
            description=(
                f"arenagym {self.ref.env_id} as an OpenEnv text environment: actions are "
                '{"message": text}, observations carry text, reward, done and the env\'s info'
            ),
        )

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class ArenaEnvClient(EnvClient[ArenaAction, ArenaObservation, ArenaState]):
    """OpenEnv's WebSocket client, typed for an arenagym server (:func:`create_app`).

    ``ArenaEnvClient(base_url=url).sync()`` is the synchronous form; each client is one session
    (its own env) on the server.
    """

    def _step_payload(self, action: ArenaAction) -> dict[str, Any]:
        return {"message": action.message}

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[ArenaObservation]:
        observation = ArenaObservation(
            **payload.get("observation", {}),
            reward=payload.get("reward"),
            done=bool(payload.get("done", False)),
        )
        return StepResult(observation, observation.reward, observation.done)

    def _parse_state(self, payload: dict[str, Any]) -> ArenaState:
        return ArenaState(**payload)


def _check_text_env(env_id: str, env_kwargs: Mapping[str, Any]) -> None:
    """Raise a clear error now (not on the first client) for an unknown or non-text id."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id: expected a Gymnasium id such as 'Math-v0', got {env_id!r}")
    if env_id not in gym.registry:
        raise ValueError(f"env_id: {env_id!r} is not a registered Gymnasium id")
    env = gym.make(env_id, **dict(env_kwargs))
    try:
        spaces = (env.observation_space, env.action_space)
        if not all(isinstance(space, UnicodeText) for space in spaces):
            raise ValueError(
                f"env_id: {env_id!r} is not a text env (its spaces are {spaces[0]} and "
                f"{spaces[1]}); OpenEnv serving needs str observations and actions"
            )
    finally:
        env.close()


def create_app(
    env_id: str,
    *,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    session_timeout_s: float | None = None,
    **env_kwargs: Any,
) -> FastAPI:
    """OpenEnv's FastAPI app serving ``env_id`` (built with ``env_kwargs``).

    Each WebSocket session gets its own env, up to ``max_sessions`` at once (a further client
    is refused with OpenEnv's ``CAPACITY_REACHED`` error); ``session_timeout_s`` closes idle
    sessions. The id and kwargs are checked now: an unknown id, bad kwargs or a non-text env
    raise here. With ``ENABLE_WEB_INTERFACE=1`` OpenEnv adds its web UI at ``/web``.
    """
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
        raise ValueError(f"max_sessions: expected an int >= 1, got {max_sessions!r}")
    if session_timeout_s is not None and not session_timeout_s > 0:
        raise ValueError(f"session_timeout_s: expected a number > 0, got {session_timeout_s!r}")
    _check_text_env(env_id, env_kwargs)

    def factory() -> ArenaEnvironment:
        return ArenaEnvironment(env_id, env_kwargs)

    factory.__name__ = f"ArenaEnvironment[{env_id}]"
    app = _openenv_create_app(
        factory,
        ArenaAction,
        ArenaObservation,
        env_name=env_id,
        concurrency_config=ConcurrencyConfig(
            max_concurrent_envs=max_sessions, session_timeout=session_timeout_s
        ),
    )
    app.add_middleware(_QuietDisconnect)
    return app


class _QuietDisconnect:
    """ASGI middleware: a WebSocket client that already left is not an error.

    OpenEnv's ``/ws`` handler closes the socket after a client's ``close`` message and only
    expects ``RuntimeError`` when that client is already gone; Starlette raises
    ``WebSocketDisconnect``, which uvicorn would log as "Exception in ASGI application".
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except WebSocketDisconnect:
            if scope.get("type") != "websocket":
                raise


def serve(
    env_id: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    session_timeout_s: float | None = None,
    **env_kwargs: Any,
) -> None:
    """Serve ``env_id`` over HTTP/WebSocket with uvicorn until interrupted."""
    import uvicorn

    app = create_app(
        env_id, max_sessions=max_sessions, session_timeout_s=session_timeout_s, **env_kwargs
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


@contextmanager
def running_server(
    env_id: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    **env_kwargs: Any,
) -> Iterator[str]:
    """Serve ``env_id`` in a background thread (``port=0``: a free port); yields the base URL
    (``http://host:port``) once the server accepts connections, and stops it on exit."""
    import uvicorn

    app = create_app(env_id, max_sessions=max_sessions, **env_kwargs)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"openenv:{env_id}", daemon=True
    )
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the OpenEnv server for {env_id} stopped while starting")
            thread.join(0.01)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# ------------------------------------------------------------------------------ consuming
def _http_url(base_url: str) -> str:
    url = base_url.rstrip("/")
    for ws, http in (("ws://", "http://"), ("wss://", "https://")):
        if url.startswith(ws):
            return http + url[len(ws) :]
    return url


def _fetch_schema(base_url: str, timeout_s: float) -> dict[str, Any]:
    """GET ``/schema``: the server's action and observation JSON schemas."""
    url = f"{_http_url(base_url)}/schema"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            schema = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        raise ValueError(
            f"base_url: {base_url} is not an OpenEnv server (GET /schema answered {error.code})"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConnectionError(
            f"no OpenEnv server answers at {base_url} ({reason}); {_SERVE_HINT}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(
            f"base_url: GET {url} did not return JSON: not an OpenEnv server"
        ) from None
    if not isinstance(schema, dict) or not all(
        isinstance(schema.get(key), dict) for key in ("action", "observation")
    ):
        raise ValueError(f"base_url: GET {url} is not OpenEnv's schema (no action/observation)")
    return schema


def _fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.get("properties", {}).items() if k != "metadata"}


def _is_string(field_schema: Any) -> bool:
    if not isinstance(field_schema, Mapping):
        return False
    if field_schema.get("type") == "string":
        return True
    return any(_is_string(option) for option in field_schema.get("anyOf", ()))


def _check_action_schema(base_url: str, schema: Mapping[str, Any], action_field: str) -> None:
    fields = _fields(schema)
    required = sorted(set(schema.get("required", ())) - {"metadata"})
    if (
        action_field not in fields
        or not _is_string(fields[action_field])
        or any(name != action_field for name in required)
    ):
        raise ValueError(
            f"action_field: the server at {base_url} speaks a different action schema: its "
            f"actions have fields {sorted(fields)} (required: {required}), but this env sends "
            f"text as {{{action_field!r}: str}}. Pass action_field= naming the server's one "
            "required text field, or use the server's own client"
        )


def _pick_observation_field(
    base_url: str, schema: Mapping[str, Any], observation_field: str | None
) -> str:
    fields = _fields(schema)
    texts = [name for name, spec in fields.items() if _is_string(spec)]
    if observation_field is None:
        if "text" in texts:
            return "text"
        if len(texts) == 1:
            return texts[0]
        raise ValueError(
            f"observation_field: the observations of {base_url} have text fields {texts}; "
            "pass observation_field= naming the one the agent should see"
        )
    if observation_field not in fields:
        raise ValueError(
            f"observation_field: {observation_field!r} is not a field of the observations of "
            f"{base_url} (fields: {sorted(fields)})"
        )
    return observation_field


class OpenEnvTextEnv(gym.Env[str, str]):
    """A Gymnasium text env played on an OpenEnv server over its WebSocket session.

    Description:
        One env is one server session (its own env on the server). The action is the model's
        raw text, sent as ``{action_field: text}``; the observation is the ``observation_field``
        of the server's observation.

    Action Space:
        :class:`~arenagym.envs.core.spaces.UnicodeText` (``max_action_length``).

    Observation Space:
        :class:`~arenagym.envs.core.spaces.UnicodeText` (``max_observation_length``).

    Rewards:
        The server's reward (``None`` counts as 0.0). ``info["reward_components"]`` is the
        server's when it sends them (an arenagym server does), else ``{"reward": reward}``.

    Starting State:
        ``reset(seed=s)`` sends ``seed=s`` to the server; ``reset()`` sends a seed drawn from the
        env's seeded generator, so a seeded sequence of resets repeats. ``options`` are sent as
        extra reset fields. ``info`` has the server's info (an arenagym server's whole info)
        plus ``system_prompt`` (the server's, else ``system_prompt``) and ``task_id`` (the
        server's, else ``openenv:<base_url>/seed=<seed>``).

    Episode End:
        When the server says ``done``: truncated if its observation says ``truncated``, else
        terminated; ``info["stop_reason"]`` is the server's (else ``"max_turns"`` when truncated,
        ``"done"`` otherwise). A connection lost mid-episode ends it with
        ``stop_reason="env_error"`` and the error in ``info["error"]``.

    Arguments:
        base_url: the server (``http://host:port`` or ``ws://host:port``).
        action_field, observation_field: the text fields (default ``"message"``; ``"text"`` or
            the observation's only text field).
        system_prompt: the system prompt when the server sends none.
        connect_timeout_s, message_timeout_s: the client's timeouts.

    Examples:
        >>> OpenEnvTextEnv("http://127.0.0.1:9", connect_timeout_s=1)
        Traceback (most recent call last):
        ...
        ConnectionError: no OpenEnv server answers at http://127.0.0.1:9 ...
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        base_url: str,
        *,
        action_field: str = "message",
        observation_field: str | None = None,
        system_prompt: str = "",
        connect_timeout_s: float = 10.0,
        message_timeout_s: float = 120.0,
        max_observation_length: int = 1 << 20,
        max_action_length: int = 1 << 20,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(
            ("http://", "https://", "ws://", "wss://")
        ):
            raise ValueError(
                f"base_url: expected http(s):// or ws(s)://HOST:PORT, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        schema = _fetch_schema(self.base_url, connect_timeout_s)
        _check_action_schema(self.base_url, schema["action"], action_field)
        self.action_field = action_field
        self.observation_field = _pick_observation_field(
            self.base_url, schema["observation"], observation_field
        )
        self.system_prompt = system_prompt
        self.connect_timeout_s = connect_timeout_s
        self.message_timeout_s = message_timeout_s
        self.observation_space = UnicodeText(max_observation_length)
        self.action_space = UnicodeText(max_action_length)
        self._client: Any = None
        self._done = True
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ helpers
    def _connect(self) -> Any:
        if self._client is None:
            client = GenericEnvClient(
                base_url=self.base_url,
                connect_timeout_s=self.connect_timeout_s,
                message_timeout_s=self.message_timeout_s,
            ).sync()
            try:
                client.connect()
            except ConnectionError as error:
                client.close()
                raise ConnectionError(
                    f"no OpenEnv server answers at {self.base_url} ({error}); {_SERVE_HINT}"
                ) from None
            self._client = client
        return self._client

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with suppress(Exception):  # best effort: the connection may be broken already
                client.close()

    def _split(self, observation: Any) -> tuple[str, dict[str, Any]]:
        """The agent's text and the info carried by a server observation."""
        if not isinstance(observation, Mapping):
            raise RuntimeError(f"{self.base_url} sent a non-object observation: {observation!r}")
        text = observation.get(self.observation_field)
        if not isinstance(text, str):
            raise RuntimeError(
                f"{self.base_url} sent an observation whose {self.observation_field!r} is not "
                f"text: {text!r}"
            )
        carried = observation.get("info")
        if isinstance(carried, Mapping):
            info = dict(carried)
        else:
            info = {k: v for k, v in observation.items() if k != self.observation_field}
        return text, info

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        if self._closed:
            raise RuntimeError("OpenEnvTextEnv.reset() after close()")
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        client = self._connect()
        try:
            result = client.reset(seed=seed, **dict(options or {}))
        except Exception as error:
            self._drop_client()
            hint = ""
            if isinstance(error, ConnectionClosed):
                hint = " (the server closed the session: it may be at capacity, see max_sessions)"
            raise RuntimeError(
                f"{self.base_url}: reset(seed={seed}) failed: {error}{hint}"
            ) from None
        text, info = self._split(result.observation)
        observation = result.observation
        info["system_prompt"] = str(
            info.get("system_prompt") or observation.get("system_prompt") or self.system_prompt
        )
        info["task_id"] = str(
            info.get("task_id")
            or observation.get("task_id")
            or f"openenv:{self.base_url}/seed={seed}"
        )
        self._done = bool(result.done)
        self._started = True
        return text, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._closed or not self._started or self._done:
            when = "after close()" if self._closed else "before reset()"
            when = "after the episode ended" if self._started and not self._closed else when
            raise RuntimeError(f"OpenEnvTextEnv.step() called {when}; call reset()")
        if not isinstance(action, str):
            message = f"expected the reply as text, got {type(action).__name__}"
            info = {"invalid_action": True, "error": message, "reward_components": {}}
            return f"Invalid action: {message}", 0.0, False, False, info
        try:
            result = self._connect().step({self.action_field: action})
            text, info = self._split(result.observation)
        except Exception as error:  # any fault of the remote end ends the episode
            self._drop_client()
            self._done = True
            info = {
                "stop_reason": "env_error",
                "error": f"{type(error).__name__}: {error}",
                "reward_components": {},
                "clean_reward": 0.0,
            }
            return "", 0.0, True, False, info
        reward = float(result.reward or 0.0)
        done = bool(result.done)
        truncated = done and bool(result.observation.get("truncated", False))
        info.setdefault("reward_components", {"reward": reward})
        info.setdefault("clean_reward", reward)
        info.setdefault("invalid_action", bool(result.observation.get("invalid_action", False)))
        if done:
            info.setdefault("stop_reason", "max_turns" if truncated else "done")
        self._done = done
        return text, reward, done and not truncated, truncated, info

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_client()
        super().close()


def register_openenv(
    env_id: str,
    base_url: str,
    *,
    action_field: str = "message",
    observation_field: str | None = None,
    system_prompt: str = "",
    max_episode_steps: int | None = None,
    nondeterministic: bool = False,
    **client_kwargs: Any,
) -> gym.envs.registration.EnvSpec:
    """Register ``env_id`` as an :class:`OpenEnvTextEnv` on the server at ``base_url``.

    Nothing is contacted until ``gymnasium.make(env_id)``, which checks that a server answers
    and speaks a text action. ``client_kwargs`` go to :class:`OpenEnvTextEnv` (timeouts,
    space lengths). Returns the registered spec.
    """
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(
            f"env_id: expected a Gymnasium id such as 'Remote/Math-v0', got {env_id!r}"
        )
    if not isinstance(base_url, str) or not base_url.startswith(
        ("http://", "https://", "ws://", "wss://")
    ):
        raise ValueError(f"base_url: expected http(s):// or ws(s)://HOST:PORT, got {base_url!r}")
    gym.register(
        id=env_id,
        entry_point=OpenEnvTextEnv,
        max_episode_steps=max_episode_steps,
        nondeterministic=nondeterministic,
        kwargs={
            "base_url": base_url,
            "action_field": action_field,
            "observation_field": observation_field,
            "system_prompt": system_prompt,
            **client_kwargs,
        },
    )
    return gym.spec(env_id)


# ------------------------------------------------------------------------------ command line
def main(argv: Sequence[str] | None = None) -> None:
    """``python -m arenagym.envs.integrations.openenv ENV_ID [--host H] [--port N] [--kwargs
    JSON] [--max-sessions N] [--session-timeout S]``: serve ``ENV_ID`` as an OpenEnv server."""
    parser = argparse.ArgumentParser(
        prog="python -m arenagym.envs.integrations.openenv",
        description="Serve an arenagym id as an OpenEnv HTTP/WebSocket environment.",
    )
    parser.add_argument("env_id", help="a registered id, e.g. Math-v0")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--kwargs", default="{}", help="env kwargs as a JSON object")
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_MAX_SESSIONS,
        help=f"WebSocket sessions at once, each with its own env (default {DEFAULT_MAX_SESSIONS})",
    )
    parser.add_argument(
        "--session-timeout", type=float, default=None, help="close sessions idle this many seconds"
    )
    args = parser.parse_args(argv)
    try:
        env_kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as error:
        parser.error(f"--kwargs: not JSON ({error.msg}): {args.kwargs[:80]!r}")
    if not isinstance(env_kwargs, dict):
        parser.error(f"--kwargs: expected a JSON object, got {type(env_kwargs).__name__}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: expected 0..65535, got {args.port}")
    try:
        serve(
            args.env_id,
            args.host,
            args.port,
            max_sessions=args.max_sessions,
            session_timeout_s=args.session_timeout,
            **env_kwargs,
        )
    except (ValueError, TypeError) as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
