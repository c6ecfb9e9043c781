"""Tests for arenagym.agents.baselines: the random-text floor and the rule-based math solver."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from math_verify import parse, verify

from arenagym.agents import baselines
from arenagym.agents.agent import Agent
from arenagym.agents.baselines import MathSolverAgent, RandomTextAgent
from arenagym.agents.specs import load_agent
from arenagym.envs.math.procedural import FAMILIES, generate

# Tuple and set answers cost ~0.1 s each to parse with math-verify, so they get fewer seeds.
_SEEDS = {family: 4 if family in ("linear_system", "quadratic") else 10 for family in FAMILIES}


def _solved(agent: MathSolverAgent, problem_text: str, gold: str) -> bool:
    agent.reset("Solve the problem.")
    reply = agent.act(problem_text)
    return verify(parse("\\boxed{" + gold + "}"), parse(reply))


@pytest.mark.parametrize("family", MathSolverAgent.FAMILIES)
def test_solver_solves_the_families_it_claims(family: str) -> None:
    agent = MathSolverAgent()
    outcomes = [
        _solved(agent, problem.problem, problem.answer)
        for difficulty in range(1, 6)
        for seed in range(_SEEDS[family])
        for problem in [generate(family, difficulty, np.random.default_rng([seed, difficulty]))]
    ]
    assert sum(outcomes) / len(outcomes) >= 0.95, outcomes


def test_solver_claims_only_known_families() -> None:
    assert set(MathSolverAgent.FAMILIES) <= set(FAMILIES)
    assert {"arithmetic", "fractions", "linear_equation", "linear_system", "quadratic"} <= set(
        MathSolverAgent.FAMILIES
    )


def test_solver_reply_is_reasoning_then_one_box() -> None:
    reply = MathSolverAgent().act("Solve the system: 2x + y = 3, x - y = 0. Give (x, y).")
    assert reply.count("\\boxed{") == 1
    assert not reply.startswith("\\boxed")
    assert verify(parse("\\boxed{(1, 1)}"), parse(reply))


@pytest.mark.parametrize(
    ("text", "gold"),
    [
        ("What is 1 + 1?", "2"),
        ("Solve for x: 3x - 7 = 11.", "6"),
        ("Find all real solutions of x^2 - x - 6 = 0.", "\\{-2, 3\\}"),
        ("Find all real solutions of x^2 - 2x - 1 = 0.", "\\{1-\\sqrt{2}, 1+\\sqrt{2}\\}"),
        ("Find all real solutions of x^2 - 6x + 9 = 0.", "\\{3\\}"),
        ("Solve the system: 2x + y = 3, x - y = 0. Give (x, y).", "(1, 1)"),
        ("Solve the system: x + y = 5, x - y = -1. Give (y, x).", "(3, 2)"),
        ("If x + y = 10 and x - y = 2, what is y?", "4"),
        ("What is 15% of 240?", "36"),
        ("Compute (2/3) ÷ (4/5).", "\\frac{5}{6}"),
        ("Compute 2.5 + 1.", "3.5"),
        ("In how many ways can a committee of 3 be chosen from 8 people?", "56"),
        ("What is the coefficient of x^2 in the expansion of (2x - 1)^4?", "24"),
    ],
)
def test_solver_reads_hand_written_statements(text: str, gold: str) -> None:
    assert _solved(MathSolverAgent(), text, gold)


@pytest.mark.parametrize(
    "text",
    [
        "Who wrote Hamlet?",
        "",
        "A train travels 60 miles in 2 hours. What is its average speed in miles per hour?",
        "If 2x + 3 = 7, what is 4x + 1?",
        "If x + y = 10 and x - y = 2, what is xy?",
        "Find the sum of all solutions to x^2 - 5x + 6 = 0.",
        "Find the positive solution of x^2 = 4.",
        "Solve x^3 - 6x^2 + 11x - 6 = 0.",
        "Solve 2x + 3y = 6, 4x + 6y = 12. Give (x, y).",
        "How many positive divisors does 36 have?",
        "What is $\\frac{1}{2} + \\frac{1}{3}$?",
        "Let f(x) = 2x + 1. Find f(3).",
        "What is 20% of 50 plus 10?",
        "Compute 1/(2 - 2).",
        "Evaluate 9^9^9^9.",
        "Incorrect, try again.",
    ],
)
def test_solver_boxes_nothing_it_cannot_read(text: str) -> None:
    agent = MathSolverAgent()
    agent.reset("Solve the problem.")
    reply = agent.act(text)
    assert "\\boxed" not in reply
    assert reply == "I cannot solve this problem."


def test_solver_repeats_its_answer_after_feedback_and_forgets_on_reset() -> None:
    agent = MathSolverAgent()
    agent.reset("Solve.")
    first = agent.act("Solve for x: 2x + 1 = 9.")
    assert agent.act("Incorrect, try again.") == first
    assert agent.act("Who wrote Hamlet?") == "I cannot solve this problem."
    agent.reset("Solve.")
    assert "\\boxed" not in agent.act("Wrong answer. Try again.")


_MATHY = st.text(alphabet="0123456789xyt+-*/^()=., %$?×÷−", max_size=60)
_WORDY = st.lists(
    st.sampled_from(
        [
            "Solve",
            "for",
            "x:",
            "what",
            "percent",
            "of",
            "is",
            "committee",
            "chosen",
            "from",
            "coefficient",
            "expansion",
            "(1 + x)^5",
            "x^2",
            "=",
            "3",
            "12%",
            "$40",
            "and",
            "then",
            "increased",
            "by",
            "years",
            "every",
            "year",
            "letters",
            "word",
            "BANANA",
            "?",
            ".",
            "at least one",
            "girls",
            "boys",
            "exactly",
            "(x, y)",
            "2x + y = 3",
            "Incorrect",
        ]
    ),
    max_size=25,
).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.text(max_size=300), _MATHY, _WORDY))
def test_solver_never_raises_on_garbage(text: str) -> None:
    agent = MathSolverAgent()
    agent.reset("")
    reply = agent.act(text)
    assert isinstance(reply, str) and reply
    assert isinstance(agent.act("Incorrect, try again"), str)


def test_solver_survives_non_string_and_huge_input() -> None:
    agent = MathSolverAgent()
    assert isinstance(agent.act(None), str)  # type: ignore[arg-type]
    assert isinstance(agent.act("(" * 5000 + "1" + ")" * 5000), str)
    assert isinstance(agent.act("1+" * 3000 + "1"), str)
    assert isinstance(agent.act("9" * 100_000 + " + 1"), str)


def test_random_agent_is_deterministic_per_seed() -> None:
    def replies(seed: int) -> list[str]:
        agent = RandomTextAgent(seed=seed, max_length=50)
        out = []
        for episode in range(3):
            agent.reset(f"episode {episode}")
            out += [agent.act("observe") for _ in range(4)]
        return out

    assert replies(3) == replies(3)
    assert replies(3) != replies(4)
    assert all(isinstance(r, str) and len(r) <= 50 for r in replies(3))


def test_random_agent_text_mixes_characters() -> None:
    agent = RandomTextAgent(seed=0)
    text = "".join(agent.act("x") for _ in range(50))
    assert any(c.isalpha() and c.isascii() for c in text)
    assert any(c.isdigit() for c in text)
    assert any(c in "!?.,;:" for c in text)
    assert " " in text
    assert any(not c.isascii() for c in text)
    assert {len(agent.act("x")) for _ in range(30)} != {200}  # lengths vary


def test_random_agent_limits() -> None:
    assert RandomTextAgent(seed=1, max_length=0).act("x") == ""
    with pytest.raises(ValueError, match="max_length"):
        RandomTextAgent(max_length=-1)


@pytest.mark.parametrize(
    ("name", "cls"), [("random", RandomTextAgent), ("math-solver", MathSolverAgent)]
)
def test_agents_satisfy_the_protocol_and_load_by_name(name: str, cls: type) -> None:
    agent = load_agent(name)
    assert isinstance(agent, cls)
    assert isinstance(agent, Agent)
    agent.reset("system prompt")
    assert isinstance(agent.act("What is 2 + 2?"), str)


def test_random_agent_loads_with_kwargs() -> None:
    agent = load_agent("random", seed=5, max_length=10)
    assert agent.act("x") == RandomTextAgent(seed=5, max_length=10).act("x")


def test_module_doctests_pass() -> None:
    assert doctest.testmod(baselines).failed == 0
