"""Agent input never ends an episode as ``env_error`` and never raises: a fuzz of every env.

Every registered single-agent id (the SWE ids have their own sandbox tests) and every TextArena
AEC id is driven with actions in its own syntax but with wrong values — bracketed moves with
wrong squares, numbers and words, same-square moves, out-of-range and huge indices, malformed
``\\boxed{}``, item/review/triplet ids that do not exist, broken STANCES lines — mixed with
well-formed moves (so that games reach later positions), random text and non-text. The contract
(``envs/core/text_env.py``): bad input is a penalised step with ``info["invalid_action"]``, and
after the allowance the episode ends with ``stop_reason="invalid_action"`` (or a family's own
reason), never ``env_error``.

Example counts are modest (the whole file runs in about a minute on two busy cores); the
strategies are what matters.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import arenagym.envs  # noqa: F401  (registers every id)
from arenagym.envs.core.registration import list_envs, make_multi_agent
from arenagym.envs.textarena.games import GAMES, aec_id, gym_id

pytest.importorskip("textarena")

#: Math checks here often meet their short CPU limit; when the limit's signal lands inside one of
#: Hypothesis's garbage-collector callbacks, Python reports that one as "ignored", and the timer's
#: next signal (50 ms later) stops the check.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*gc_callback:pytest.PytestUnraisableExceptionWarning"
)


@dataclass(frozen=True)
class Legal:
    """Play the ``pick``-th legal move (modulo their number): lets a game get past its opening."""

    pick: int


# ------------------------------------------------------------------------ building blocks
NUMBERS = st.one_of(
    st.integers(-3, 12).map(str),
    st.sampled_from(["00", "007", "99", "100", "4300", "9" * 30, "9" * 5000, "١", "٣", "½", "1e9"]),
)
FILES = st.sampled_from(list("abcdefghijzA"))
RANKS = st.sampled_from(["0", "1", "2", "7", "8", "9", "10"])
SQUARES = st.builds(lambda f, r: f + r, FILES, RANKS)
WORDS = st.sampled_from(
    ["Check", "Bet", "Fold", "Call", "Raise", "Accept", "Deny", "Cooperate", "Defect", "up",
     "down", "left", "right", "w", "x", "pass", "A", "B", "C", "D", "col", "row", ""]
)  # fmt: skip
SEPARATORS = st.sampled_from([" ", ", ", ",", "  ", " -> ", ":"])
TOKENS = st.one_of(NUMBERS, SQUARES, WORDS)


@st.composite
def bracketed(draw: st.DrawFn) -> str:
    """``[tok sep tok ...]`` with 0-5 tokens, sometimes unclosed or wrapped in prose."""
    tokens = draw(st.lists(TOKENS, max_size=5))
    body = ""
    for index, token in enumerate(tokens):
        body += (draw(SEPARATORS) if index else "") + token
    move = "[" + body + draw(st.sampled_from(["]", "]", "]", "", "]]"]))
    return (
        draw(st.sampled_from(["", "I play ", "[", "\n"]))
        + move
        + draw(st.sampled_from(["", " please", "[0]", " " + move]))
    )


SAME_SQUARE = st.builds(
    lambda s, promo: f"[{s}{s}{promo}]", SQUARES, st.sampled_from(["", "q", "n", "Q", "k"])
)
CHESS_LIKE = st.builds(
    lambda a, b, promo: f"[{a}{b}{promo}]", SQUARES, SQUARES, st.sampled_from(["", "q", "x"])
)
NEGOTIATION = st.builds(
    lambda q1, r1, q2, r2: f"[Offer: {q1} {r1} -> {q2} {r2}]",
    NUMBERS,
    st.sampled_from(["Wheat", "Wood", "Sheep", "Brick", "Ore", "Gold", "wood", ""]),
    NUMBERS,
    st.sampled_from(["Wheat", "Wood", "Sheep", "Brick", "Ore", "Gold", ""]),
)
NOT_TEXT = st.sampled_from([None, 0, 7, 3.5, b"[4]", ["[4]"], {"move": "[4]"}])
FREE_TEXT = st.text(max_size=40)


def game_actions() -> st.SearchStrategy[Any]:
    """A move for any TextArena game: wrong in its own syntax, sometimes legal, sometimes junk."""
    return st.one_of(
        bracketed(),
        SAME_SQUARE,
        CHESS_LIKE,
        NEGOTIATION,
        st.builds(Legal, st.integers(0, 10_000)),
        st.builds(Legal, st.integers(0, 10_000)),
        FREE_TEXT,
        NOT_TEXT,
    )


BOXED_INNER = st.one_of(
    NUMBERS,
    st.lists(
        st.sampled_from(
            ["{", "}", "\\frac", "\\sqrt", "^", "_", "x", "1", "-", "/", "(", ")", "[", "]", ",",
             "\\{", "\\}", "\\infty", "\\pi", "=", "\\text{", "\\left(", "\\right)", "!", "0.5",
             "\\binom{100000}{50000}", "\\\\", " ", "é"]
        ),
        max_size=25,
    ).map("".join),
    st.integers(1, 3000).map(lambda n: "x" * n),
    st.integers(1, 30).map(lambda d: "{" * d + "1" + "}" * d),
)  # fmt: skip
#: Answers known to trouble a math parser: CPython's int-conversion limit, huge powers and
#: factorials (they meet the CPU limit), division by zero, deep nesting, a long answer.
TROUBLE = st.sampled_from(
    ["\\binom{15000}{7500}", "\\binom{20000}{10000}", "9" * 4000, "10^{4301}", "9^{9^{9}}",
     "1000000!", "\\frac{1}{0}", "0/0", "\\sqrt{-1}", "\\sum_{k=1}^{10^{9}} k",
     "{" * 9 + "1" + "}" * 9, "x" * 500, "\\infty - \\infty", "1e100000"]
)  # fmt: skip
MATH = st.one_of(
    st.builds(lambda pre, answer: f"{pre}\\boxed{{{answer}}}", FREE_TEXT, TROUBLE),
    st.builds(lambda pre, answer: f"{pre}\\boxed{{{answer}}}", FREE_TEXT, TROUBLE),
    st.builds(
        lambda pre, box, inner, close, post: f"{pre}{box}{inner}{close}{post}",
        FREE_TEXT,
        st.sampled_from(["\\boxed{", "\\boxed {", "\\fbox{", "\\boxed", "boxed{"]),
        BOXED_INNER,
        st.sampled_from(["}", "", "}}", "\\}"]),
        st.sampled_from(["", ".", " \\boxed{", "</answer>"]),
    ),
    st.builds(lambda inner: f"<answer>{inner}</answer>", BOXED_INNER),
    st.builds(lambda inner: f"The answer is {inner}", BOXED_INNER),
    FREE_TEXT,
    NOT_TEXT,
)
ITEM_IDS = st.one_of(
    st.integers(0, 1200).map(lambda n: f"i{n:03d}"),
    st.sampled_from(["i", "i-1", "i99999", "i" + "9" * 30, "iabc", "I001", "i001i002", "i٣"]),
)
RECINTER = st.one_of(
    st.lists(ITEM_IDS, max_size=8).flatmap(lambda ids: SEPARATORS.map(lambda sep: sep.join(ids))),
    FREE_TEXT,
    NOT_TEXT,
)
REVIEW_IDS = st.one_of(
    st.integers(-1, 400).map(str),
    st.sampled_from(["", "x", "9" * 10, "9" * 5000, "١٢", "01"]),
)
MERCHANT = st.one_of(
    st.lists(
        st.builds(lambda rid, text: f"[r{rid}] {text}", REVIEW_IDS,
                  st.sampled_from(["", "Sorry, we will refund the delivery.", "thanks", "[r"])),
        max_size=4,
    ).map("\n".join),
    st.sampled_from(["none", "None.", "no replies", "[r]", "[r1]"]),
    FREE_TEXT,
    NOT_TEXT,
)  # fmt: skip
USER = st.one_of(
    st.builds(
        lambda click, buy, rating, review: "\n".join(
            line for line in (click, buy, rating, review) if line
        ),
        st.one_of(ITEM_IDS.map(lambda i: f"CLICK: {i}"),
                  st.sampled_from(["CLICK: none", "CLICK:", "CLICK: i001, i002", "click: leave", ""])),
        st.one_of(ITEM_IDS.map(lambda i: f"BUY: {i}"), st.sampled_from(["BUY: none", "BUY:", ""])),
        st.sampled_from(["RATING: 0", "RATING: 6", "RATING: 5", "RATING: -1", "RATING: ٣",
                         "RATING: " + "9" * 5000, ""]),
        st.sampled_from(["REVIEW: great", "REVIEW:", ""]),
    ),
    FREE_TEXT,
    NOT_TEXT,
)  # fmt: skip
MED_IDS = st.one_of(st.integers(-1, 99_999).map(str), st.sampled_from(["", "9" * 5000, "x", "٣"]))
MEDDIALOG = st.one_of(
    st.builds(
        lambda utterance, entities, acts, triplets, demos: "\n".join(
            [utterance, entities, acts, triplets, demos]
        ),
        st.sampled_from(["How long has it hurt?", "", "医生：", "Doctor:", "胃炎"]),
        st.sampled_from(["ENTITIES: 胃炎, 奥美拉唑", "ENTITIES: nonsense, , ;", "ENTITIES:", ""]),
        st.sampled_from(["ACTS: inquire", "ACTS: teleport, diagnosis", "ACTS: 问诊", "ACTS:", ""]),
        st.lists(MED_IDS, max_size=3).map(lambda ids: "TRIPLETS: " + ", ".join("T" + i for i in ids)),
        st.lists(MED_IDS, max_size=3).map(lambda ids: "DEMOS: " + ", ".join("D" + i for i in ids)),
    ),
    FREE_TEXT,
    NOT_TEXT,
)  # fmt: skip
MEDCONSULT = st.one_of(
    st.builds(
        lambda diagnosis, treatment, request: "\n".join(x for x in (request, diagnosis, treatment) if x),
        st.sampled_from(["DIAGNOSIS: gastritis", "DIAGNOSIS: gastritis, enteritis", "DIAGNOSIS:",
                         "DIAGNOSIS: the flu", "诊断：胃炎", "diagnosis: " + "x" * 3000, ""]),
        st.sampled_from(["TREATMENT: omeprazole", "TREATMENT: penicillin, amoxicillin",
                         "TREATMENT:", "治疗：奥美拉唑", ""]),
        st.sampled_from(["REQUEST TEST: gastroscopy", "REQUEST TEST: moon scan", "REQUEST TEST:",
                         "Where does it hurt?", "Any allergies?", ""]),
    ),
    FREE_TEXT,
    NOT_TEXT,
)  # fmt: skip
STANCE_ENTRIES = st.builds(
    lambda name, value: f"{name}={value}",
    st.sampled_from(["humour", "verbosity", "technical depth", "warmth", "fake", "", "HUMOUR",
                     "cooking-"]),
    st.sampled_from(["0", "1", "0.5", "2", "-1", "1.0000", "0.50000", "x", "", "9" * 400]),
)  # fmt: skip
PREFINFER = st.one_of(
    st.builds(
        lambda think, answer, stances, close: f"{think}<answer>{answer}{stances}{close}",
        st.sampled_from(["<think>hm</think>", "", "<think>"]),
        st.sampled_from(["Likes short, warm replies.", "", " ", "<answer>"]),
        st.lists(STANCE_ENTRIES, max_size=4).map(lambda e: "\nSTANCES: " + "; ".join(e)),
        st.sampled_from(["</answer>", "", "</answer><answer>"]),
    ),
    FREE_TEXT,
    NOT_TEXT,
)  # fmt: skip

IMAGEEDIT_OPS = st.fixed_dictionaries(
    {
        "op": st.sampled_from(
            ["recolour", "recolor", "move", "remove", "resize", "add", "paint", ""]
        )
    },
    optional={
        "id": st.one_of(st.integers(-2, 12), st.sampled_from(["#1", "x", None, True, 1.5])),
        "colour": st.sampled_from(["red", "RED", "teal", "", 3]),
        "size": st.sampled_from(["small", "huge", None]),
        "to": st.sampled_from([[0, 0], [3, 2], [4, 0], [0], [-1, 1], "0,0", [True, 1]]),
        "at": st.sampled_from([[1, 1], [9, 9], None]),
        "kind": st.sampled_from(["umbrella", "dragon", "sun_hat", ""]),
        "material": st.sampled_from(["metal", "cheese"]),
    },
)
IMAGEEDIT = st.one_of(
    st.lists(IMAGEEDIT_OPS, max_size=4).map(json.dumps),
    st.lists(IMAGEEDIT_OPS, max_size=2).map(
        lambda ops: f"Here you go:\n```json\n{json.dumps(ops)}\n```"
    ),
    st.sampled_from(["[", "[]", "{}", '{"op": "remove"}', "[[[[[[", "[" * 5000, '{"program": 3}']),
    FREE_TEXT,
    NOT_TEXT,
)


@dataclass(frozen=True)
class Family:
    """How to fuzz one family: its action strategy, example count, actions per example, kwargs."""

    actions: st.SearchStrategy[Any]
    examples: int
    steps: int = 12
    kwargs: tuple[tuple[str, Any], ...] = ()


def _family(env_id: str) -> Family:
    """How ``env_id`` is fuzzed (by family)."""
    if env_id.startswith("TextArena/"):
        return Family(game_actions(), 20)
    if env_id.startswith("Math"):
        # a short CPU limit keeps costly answers cheap here; the outcome is still never an error
        kwargs = (("verify_timeout_s", 0.3), ("max_turns", 2), ("max_invalid_actions", 1))
        return Family(MATH, 15, steps=3, kwargs=kwargs)
    if env_id == "RecInterMerchant-v0":
        return Family(MERCHANT, 6)
    if env_id == "RecInterUser-v0":
        return Family(USER, 8)
    if env_id.startswith("RecInter"):
        return Family(RECINTER, 8)
    if env_id.startswith("MedConsult"):
        return Family(MEDCONSULT, 10)
    if env_id.startswith("MedDialog"):
        return Family(MEDDIALOG, 10)
    if env_id.startswith("PrefInfer"):
        return Family(PREFINFER, 8)
    if env_id.startswith("ImageEdit"):  # (text observations: this fuzz reads text)
        return Family(IMAGEEDIT, 10, kwargs=(("observation", "text"), ("max_invalid_actions", 3)))
    raise AssertionError(f"no action strategy for {env_id}; add its family to this fuzz")


SINGLE_IDS = [i for i in list_envs(multi_agent=False) if not i.startswith("SWE")]
AEC_IDS = [aec_id(game) for game in GAMES]


def _legal_move(game: Any, legal: Legal) -> str:
    from arenagym.envs.textarena.rules import legal_moves

    moves = legal_moves(game)
    return moves[legal.pick % len(moves)] if moves else "[0]"


def _resolve(env: Any, action: Any) -> Any:
    if isinstance(action, Legal):
        session = getattr(env.unwrapped, "_session", None)
        game = getattr(session, "game", None)
        return _legal_move(game, action) if game is not None else "[0]"
    return action


def _check_step(env_id: str, action: Any, step: tuple[Any, ...]) -> bool:
    observation, reward, terminated, truncated, info = step
    context = f"{env_id}: action {action!r:.200}"
    assert isinstance(observation, str), context
    assert math.isfinite(reward), context
    assert reward == pytest.approx(sum(info["reward_components"].values())), context
    assert info.get("stop_reason") != "env_error", f"{context} -> {info.get('error')}"
    if info.get("invalid_action"):
        assert observation.startswith("Invalid action:"), context
    return bool(terminated or truncated)


def _fuzz(run: Callable[[int, list[Any]], None], family: Family) -> None:
    @settings(
        max_examples=family.examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.integers(0, 2**31 - 1), st.lists(family.actions, min_size=1, max_size=family.steps))
    def fuzz(seed: int, moves: list[Any]) -> None:
        run(seed, moves)

    fuzz()


@pytest.mark.parametrize("env_id", SINGLE_IDS)
def test_wrong_actions_in_the_env_syntax_never_end_as_env_error(env_id: str) -> None:
    family = _family(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the passive checker's notes on odd action types)
        env = gym.make(env_id, **dict(family.kwargs))

    def run(seed: int, moves: list[Any]) -> None:
        env.reset(seed=seed)
        for move in moves:
            action = _resolve(env, move)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                step = env.step(action)
            if _check_step(env_id, action, step):
                env.reset(seed=seed + 1)

    try:
        _fuzz(run, family)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", AEC_IDS)
def test_wrong_moves_of_both_players_never_end_an_aec_game_as_env_error(env_id: str) -> None:
    env = make_multi_agent(env_id)

    def run(seed: int, moves: list[Any]) -> None:
        env.reset(seed=seed)
        for move in moves:
            agent = env.agent_selection
            action = _legal_move(env._session.game, move) if isinstance(move, Legal) else move
            env.step(action)
            context = f"{env_id}: {agent} played {action!r:.200}"
            for name in env.possible_agents:
                info = env.infos[name]
                assert info.get("stop_reason") != "env_error", f"{context} -> {info.get('error')}"
                assert isinstance(env.observe(name), str), context
            if info_of_mover := env.infos[agent]:
                assert isinstance(info_of_mover.get("invalid_action"), bool), context
            if all(env.terminations.values()) or all(env.truncations.values()):
                env.reset(seed=seed + 1)

    try:
        _fuzz(run, Family(game_actions(), 20))
    finally:
        env.close()


def test_every_single_agent_family_has_a_strategy() -> None:
    """A new family must bring its own wrong-syntax strategy here, not fall back to random text."""
    for env_id in SINGLE_IDS:
        _family(env_id)
    assert {gym_id(game) for game in GAMES} <= set(SINGLE_IDS)
