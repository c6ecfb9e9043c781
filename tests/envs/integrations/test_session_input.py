"""Hostile replies through :class:`TextSession`, the base of every framework adapter: huge,
binary, unpaired-surrogate and deeply nested text is the env's penalised or failed step, never an
exception and never ``env_error``."""

from __future__ import annotations

import pytest

from arenagym.envs.integrations.session import EpisodeRef, TextSession

HOSTILE = ["x" * 2_000_000, "\x00\x01\xff", "\ud800", "", "{" * 100_000, "[" + "1," * 100_000 + "]"]


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("Math-v0", {}),
        ("TextArena/GuessTheNumber-v0", {}),
        ("ImageEdit-v0", {"observation": "text"}),
        ("MedConsult-En-v0", {}),
    ],
)
@pytest.mark.parametrize(
    "reply", HOSTILE, ids=["huge", "binary", "surrogate", "empty", "braces", "list"]
)
def test_a_hostile_reply_is_the_envs_step(
    env_id: str, kwargs: dict[str, object], reply: str
) -> None:
    with TextSession(EpisodeRef(env_id, kwargs, 0)) as session:
        outcome = session.send(reply)
    assert outcome.info.get("stop_reason") != "env_error", outcome.info
    assert session.turns == 1
    assert {"role": "assistant", "content": reply} in session.messages  # the reply is kept
