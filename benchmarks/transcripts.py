r"""Transcripts: every turn of a benchmark episode (or game), kept with its result.

A results row says how an episode ended; its transcript says how it got there — what the agent
saw, what it wrote, what the env answered — so that a failed episode can be read rather than
guessed at (``arenagym show``), and a leaderboard can link every score to its episode.

One turn is one dict with these keys (a game's turns also have ``seat`` and ``player``):

========================  =================================================================
``turn``                  1-based number of the agent call in the episode (of the move in a game)
``observation``           what the agent was shown (text; any other value as JSON)
``action``                what it wrote; ``None`` if the call failed or timed out
``reward``                the env's reward for the step; ``None`` if the env did not step
``clean_reward``          ``info["clean_reward"]`` (else the reward); ``None`` without a step
``reward_components``     ``info["reward_components"]`` of the step, or ``None``
``invalid_action``        ``info["invalid_action"]`` of the step, or ``None``
``latency_s``             seconds the agent call took (the runner's wall clock)
``prompt_tokens``         prompt tokens of the call, where the agent reports them, else ``None``
``completion_tokens``     completion tokens of the call, where the agent reports them
``error``                 what ended the episode at this turn (agent or env error), else ``None``
``clipped_chars``         characters cut from this turn's texts by the size cap (0: none)
========================  =================================================================

Token counts come from agents that keep per-turn records the way
:class:`~arenagym.agents.chat.ChatAgent` does (``agent.turns[-1].prompt_token_ids`` /
``completion_token_ids``, when the backend reports token ids).

Size cap: a transcript is at most :data:`TRANSCRIPT_CAP_BYTES` (1 MiB) of compact UTF-8 JSON. Over it,
the longest texts (observations, actions, errors) are clipped to a common length, each keeping
its head and tail around a marker that says how many characters were cut
(``…[clipped 12345 characters]…``); the turn's ``clipped_chars`` counts them. If even texts of
:data:`MIN_CLIPPED_CHARS` do not fit (an episode of very many turns), turns are dropped from the
middle and one marker entry ``{"omitted_turns": n, "clipped_chars": c}`` stands in their place.
Stored zlib-compressed.

Example:
    >>> turns = [new_turn(1, "2+2?", "4", latency_s=0.5)]
    >>> encoded = encode_transcript(turns)
    >>> decode_transcript(encoded.data)[0]["action"], encoded.clipped_chars
    ('4', 0)
    >>> long = encode_transcript([new_turn(1, "x" * 3_000_000, "ok")])
    >>> turn = decode_transcript(long.data)[0]
    >>> long.clipped_chars > 1_000_000, turn["clipped_chars"] == long.clipped_chars
    (True, True)
    >>> "characters]" in turn["observation"]
    True
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "MIN_CLIPPED_CHARS",
    "SUCCESS_STOP_REASONS",
    "TRANSCRIPT_CAP_BYTES",
    "TURN_KEYS",
    "EncodedTranscript",
    "TurnRecorder",
    "agent_token_counts",
    "agent_turn_count",
    "decode_transcript",
    "encode_transcript",
    "is_failing",
    "new_turn",
]

#: The most UTF-8 bytes of JSON one episode's (or game's) transcript may take before compression.
TRANSCRIPT_CAP_BYTES = 1024 * 1024

#: Clipping never shortens a text below this many characters (then turns are dropped instead).
MIN_CLIPPED_CHARS = 200

#: The keys of every turn, in order (a game's turns add ``seat`` and ``player``).
TURN_KEYS: tuple[str, ...] = (
    "turn",
    "observation",
    "action",
    "reward",
    "clean_reward",
    "reward_components",
    "invalid_action",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
    "error",
    "clipped_chars",
)

#: Stop reasons of an episode that went well; every other stop reason counts as failing for
#: ``arenagym show --failed`` (errors, timeouts, ``failed``, ``max_turns``, an LLM's
#: ``context_overflow``, a game's ``lost``...).
SUCCESS_STOP_REASONS: frozenset[str] = frozenset({"solved", "completed", "won", "draw"})

_CLIPPABLE = ("observation", "action", "error")
_FORMAT = 1


def is_failing(stop_reason: str) -> bool:
    """Whether an episode that ended with ``stop_reason`` failed (see
    :data:`SUCCESS_STOP_REASONS`).

    >>> is_failing("solved"), is_failing("agent_error"), is_failing("max_turns")
    (False, True, True)
    """
    return stop_reason not in SUCCESS_STOP_REASONS


def as_text(value: Any) -> str:
    """``value`` as transcript text: a string as it is, anything else as JSON (``repr`` for
    what JSON cannot say).

    >>> as_text("hi"), as_text({"board": [1, 2]})
    ('hi', '{"board": [1, 2]}')
    """
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def new_turn(
    turn: int,
    observation: Any,
    action: str | None = None,
    *,
    latency_s: float | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> dict[str, Any]:
    """A turn with every key of :data:`TURN_KEYS`: the agent's side filled in, the env's empty.

    >>> new_turn(1, "obs", "act")["reward"] is None
    True
    """
    return {
        "turn": turn,
        "observation": as_text(observation),
        "action": None if action is None else as_text(action),
        "reward": None,
        "clean_reward": None,
        "reward_components": None,
        "invalid_action": None,
        "latency_s": None if latency_s is None else round(latency_s, 4),
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "error": None,
        "clipped_chars": 0,
    }


def agent_turn_count(agent: Any) -> int | None:
    """How many per-turn records ``agent`` keeps (``len(agent.turns)``, as
    :class:`~arenagym.agents.chat.ChatAgent` does), or ``None`` for an agent that keeps none
    (or whose ``turns`` attribute raises: agent code never breaks a transcript)."""
    try:
        turns = getattr(agent, "turns", None)
        return len(turns) if isinstance(turns, list) else None
    except Exception:
        return None


def agent_token_counts(agent: Any, turns_before: int | None) -> tuple[int | None, int | None]:
    """``(prompt_tokens, completion_tokens)`` of the agent call that just returned, when the
    agent recorded a new turn with token ids (``agent.turns[-1].prompt_token_ids`` /
    ``completion_token_ids``; empty lists mean the backend did not say), else ``None`` each.

    >>> class Turn:
    ...     prompt_token_ids, completion_token_ids = [1, 2, 3], [4]
    >>> class Agent:
    ...     turns = [Turn()]
    >>> agent_token_counts(Agent(), 0), agent_token_counts(Agent(), 1)
    ((3, 1), (None, None))
    """
    try:
        turns = getattr(agent, "turns", None)
        if turns_before is None or not isinstance(turns, list) or len(turns) <= turns_before:
            return None, None
        last = turns[-1]
        counts = []
        for name in ("prompt_token_ids", "completion_token_ids"):
            ids = getattr(last, name, None)
            counts.append(len(ids) if isinstance(ids, Sequence) and ids else None)
    except Exception:  # agent code never breaks a transcript
        return None, None
    return counts[0], counts[1]


class TurnRecorder:
    """Collects the turns of one single-agent episode as the runner plays it.

    The runner calls :meth:`begin` before each agent call, :meth:`acted` when it returns,
    :meth:`stepped` with the env's answer, and :meth:`finish` at the end: a turn whose agent call
    or env step failed is kept with what there is (``action`` / ``reward`` ``None``) and the
    episode's error.

    Example:
        >>> recorder = TurnRecorder()
        >>> recorder.begin(1, "2+2?")
        >>> recorder.acted("4", prompt_tokens=7, completion_tokens=1)
        >>> recorder.stepped(1.0, {"clean_reward": 1.0, "reward_components": {"correct": 1.0}})
        >>> recorder.begin(2, "and 3+3?")
        >>> [t["action"] for t in recorder.finish("ValueError: no")], recorder.turns[-1]["error"]
        (['4', None], 'ValueError: no')
    """

    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None
        self._began = 0.0

    def begin(self, turn: int, observation: Any) -> None:
        """The agent is asked to act on ``observation`` in turn ``turn``."""
        self._flush()
        self._pending = new_turn(turn, observation)
        self._began = time.perf_counter()

    def acted(
        self,
        action: Any,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> None:
        """The agent answered ``action``."""
        if self._pending is not None:
            self._pending["action"] = as_text(action)
            self._pending["prompt_tokens"] = prompt_tokens
            self._pending["completion_tokens"] = completion_tokens
        self.ended()

    def ended(self) -> None:
        """The agent call returned or failed: its latency is known."""
        if self._pending is not None and self._pending["latency_s"] is None:
            self._pending["latency_s"] = round(time.perf_counter() - self._began, 4)

    def stepped(self, reward: float, info: Mapping[str, Any]) -> None:
        """The env answered the pending turn's action with ``reward`` and ``info``."""
        if self._pending is None:
            return
        fill_step(self._pending, reward, info)
        self._flush()

    def finish(self, error: str | None = None) -> list[dict[str, Any]]:
        """Every turn; a pending one (its call or step failed) gets ``error``."""
        if self._pending is not None:
            self.ended()
            self._pending["error"] = error
        self._flush()
        return self.turns

    def _flush(self) -> None:
        if self._pending is not None:
            self.turns.append(self._pending)
            self._pending = None


def fill_step(turn: dict[str, Any], reward: Any, info: Mapping[str, Any]) -> None:
    """Write the env's answer (``reward`` and the step's ``info``) into ``turn``."""
    try:
        value = float(reward)
    except (TypeError, ValueError):
        value = None
    turn["reward"] = value
    clean = info.get("clean_reward", value)
    try:
        turn["clean_reward"] = None if clean is None else float(clean)
    except (TypeError, ValueError):
        turn["clean_reward"] = None
    components = info.get("reward_components")
    turn["reward_components"] = dict(components) if isinstance(components, Mapping) else None
    if "invalid_action" in info:
        turn["invalid_action"] = bool(info.get("invalid_action"))
    else:
        turn["invalid_action"] = False


# ----------------------------------------------------------------------------- encoding


#: Surrogate code points, which a Python ``str`` may hold (an agent's output) but UTF-8 cannot.
_SURROGATES = re.compile("[\ud800-\udfff]")


def _dump(value: Any) -> bytes:
    """Compact JSON as UTF-8; a surrogate code point becomes U+FFFD (it has no UTF-8 form, and
    every reader — ``show``, the HTML pages, exports — needs text it can print)."""
    text = json.dumps(value, ensure_ascii=False, default=repr, separators=(",", ":"))
    return _SURROGATES.sub("\ufffd", text).encode()


def _marker(cut: int) -> str:
    return f"…[clipped {cut} characters]…"


def _clip_text(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to about ``limit`` characters (head and tail kept around a marker), and
    how many characters were cut (0: it fitted)."""
    if len(text) <= limit:
        return text, 0
    cut = len(text) - limit
    head = limit - limit // 4
    tail = limit - head
    return text[:head] + _marker(cut) + (text[len(text) - tail :] if tail else ""), cut


def _clip_turns(turns: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    clipped = []
    for turn in turns:
        turn = dict(turn)
        cut_here = 0
        for key in _CLIPPABLE:
            if isinstance(turn.get(key), str):
                turn[key], cut = _clip_text(turn[key], limit)
                cut_here += cut
        if cut_here:
            turn["clipped_chars"] = int(turn.get("clipped_chars") or 0) + cut_here
        clipped.append(turn)
    return clipped


def _fit(turns: list[dict[str, Any]], cap: int) -> list[dict[str, Any]]:
    """``turns`` within ``cap`` bytes of JSON: texts clipped to the longest common length that
    fits (binary search), else (too many turns) turns dropped from the middle."""
    if len(_dump(turns)) <= cap:
        return turns
    longest = max(
        (len(t[k]) for t in turns for k in _CLIPPABLE if isinstance(t.get(k), str)), default=0
    )
    clipped = _clip_turns(turns, MIN_CLIPPED_CHARS)
    if len(_dump(clipped)) <= cap:
        best = clipped
        low, high = MIN_CLIPPED_CHARS + 1, max(MIN_CLIPPED_CHARS, min(longest, cap))
        while low <= high:  # the longest limit whose clipped turns fit
            middle = (low + high) // 2
            candidate = _clip_turns(turns, middle)
            if len(_dump(candidate)) <= cap:
                best, low = candidate, middle + 1
            else:
                high = middle - 1
        return best
    sizes = [len(_dump(turn)) + 1 for turn in clipped]
    budget = cap - 200  # room for the marker entry and the brackets
    head: list[dict[str, Any]] = []
    tail: list[dict[str, Any]] = []
    first, last = 0, len(clipped) - 1
    while first <= last:  # alternately keep turns from both ends while they fit
        take_head = len(head) <= len(tail)
        index = first if take_head else last
        if sizes[index] > budget:
            break
        budget -= sizes[index]
        if take_head:
            head.append(clipped[first])
            first += 1
        else:
            tail.insert(0, clipped[last])
            last -= 1
    dropped = clipped[first : last + 1]
    if not dropped:
        return head + tail
    cut = sum(len(t[k]) for t in dropped for k in _CLIPPABLE if isinstance(t.get(k), str)) + sum(
        int(t.get("clipped_chars") or 0) for t in dropped
    )
    return [*head, {"omitted_turns": len(dropped), "clipped_chars": cut}, *tail]


class EncodedTranscript(NamedTuple):
    """A transcript as stored: ``data`` (zlib-compressed JSON), ``clipped_chars`` (characters
    the size cap cut; 0: whole) and ``entries`` (turns kept, with an omission marker)."""

    data: bytes
    clipped_chars: int
    entries: int


def encode_transcript(
    turns: Sequence[Mapping[str, Any]], cap: int = TRANSCRIPT_CAP_BYTES
) -> EncodedTranscript:
    """``turns`` as stored: JSON within ``cap`` bytes (see the module docstring), zlib-compressed.

    Secrets are not this function's business: the runner redacts the turns before
    (:func:`~arenagym.agents.specs.redact_secrets`), so that clipping never leaves half a key.
    Compressing a large transcript takes a moment: the runner does it on a pool thread and hands
    the result to :meth:`~arenagym.benchmarks.store.ResultsStore.add`.
    """
    fitted = _fit(json.loads(_dump([dict(turn) for turn in turns])), cap)
    cut = sum(int(turn.get("clipped_chars") or 0) for turn in fitted)
    document = {"format": _FORMAT, "turns": fitted, "clipped_chars": cut}
    return EncodedTranscript(zlib.compress(_dump(document), 6), cut, len(fitted))


def decode_transcript(data: bytes) -> list[dict[str, Any]]:
    """The turns of a stored transcript (see :func:`encode_transcript`)."""
    document = json.loads(zlib.decompress(data).decode())
    return list(document["turns"])
