r"""Answer extraction and math-verify equivalence for Math-v0, and the per-check time limit.

The equivalence table runs every (gold, response) pair through ``MathScorer.score`` — extraction
from free text plus the math-verify check — and asserts the exact reward. The time-limit tests
check that a pathological answer (``9^{9^{9^{9}}}``) cannot hang a step, in the main thread (CPU
interval timers) and in a worker thread (a worker process under the same limit), and that the size
bound decides before any time limit, so a verdict does not depend on the machine's load.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arenagym.envs.core.parsing import last_boxed
from arenagym.envs.math import verifier
from arenagym.envs.math.scoring import MathScorer, RewardConfig
from arenagym.envs.math.verifier import (
    DEFAULT_EXTRACTION,
    AnswerChecker,
    Verdict,
    check_extraction_methods,
    extract_answer,
)

PATHOLOGICAL = r"9^{9^{9^{9}}}"

# (gold, response, expected reward) — every response is a full model reply, extracted as the env
# extracts it (last \boxed, then <answer> tags, then "the answer is").
EQUIVALENCE: list[tuple[str, str, float]] = [
    # integers and negatives
    ("42", r"So the total is \boxed{42}.", 1.0),
    ("42", r"\boxed{43}", 0.0),
    ("0", r"\boxed{0}", 1.0),
    ("-7", r"\boxed{-7}", 1.0),
    ("-7", r"\boxed{- 7}", 1.0),
    ("-7", r"\boxed{7}", 0.0),
    ("7", r"\boxed{-7}", 0.0),
    ("1000", r"\boxed{1{,}000}", 1.0),
    ("6", r"\boxed{6.0}", 1.0),
    ("6", r"\boxed{6.01}", 0.0),
    # fractions in every form
    (r"\frac{1}{2}", r"\boxed{1/2}", 1.0),
    (r"\frac{1}{2}", r"\boxed{0.5}", 1.0),
    (r"\frac{1}{2}", r"\boxed{\dfrac12}", 1.0),
    (r"\frac{1}{2}", r"\boxed{\tfrac{1}{2}}", 1.0),
    (r"\frac{1}{2}", r"\boxed{\frac{2}{4}}", 1.0),
    (r"\frac{1}{2}", r"\boxed{\frac{1}{3}}", 0.0),
    ("0.5", r"\boxed{\frac12}", 1.0),
    ("1/2", r"\boxed{0.5}", 1.0),
    (r"-\frac{3}{4}", r"\boxed{-0.75}", 1.0),
    (r"-\frac{3}{4}", r"\boxed{\frac{-3}{4}}", 1.0),
    (r"-\frac{3}{4}", r"\boxed{-3/4}", 1.0),
    (r"-\frac{3}{4}", r"\boxed{0.75}", 0.0),
    # decimals
    ("0.25", r"\boxed{\frac{1}{4}}", 1.0),
    ("3.14", r"\boxed{3.14}", 1.0),
    ("3.14", r"\boxed{3.15}", 0.0),
    ("2.50", r"\boxed{2.5}", 1.0),
    (r"\frac{1}{3}", r"\boxed{0.333}", 0.0),
    # surds
    (r"2\sqrt{3}", r"\boxed{\sqrt{12}}", 1.0),
    (r"2\sqrt{3}", r"\boxed{\sqrt{3}\cdot 2}", 1.0),
    (r"2\sqrt{3}", r"\boxed{3\sqrt{2}}", 0.0),
    (r"\frac{\sqrt{2}}{2}", r"\boxed{\frac{1}{\sqrt{2}}}", 1.0),
    # equations against values
    ("3", r"\boxed{x=3}", 1.0),
    ("3", r"\boxed{x = 3}", 1.0),
    ("x=3", r"\boxed{3}", 1.0),
    ("3", r"\boxed{x = 4}", 0.0),
    # sets in different orders
    (r"\{1, 2, 3\}", r"\boxed{\{3, 1, 2\}}", 1.0),
    (r"\{-2, 3\}", r"\boxed{\{3,-2\}}", 1.0),
    (r"\{1, 2, 3\}", r"\boxed{\{1, 2\}}", 0.0),
    # intervals: the ends matter
    ("[1, 3)", r"\boxed{[1,3)}", 1.0),
    ("[1, 3)", r"\boxed{(1, 3)}", 0.0),
    ("[1, 3)", r"\boxed{[1, 3]}", 0.0),
    (r"(-\infty, 2]", r"\boxed{(-\infty,2]}", 1.0),
    (r"(-\infty, 2]", r"\boxed{(-\infty, 2)}", 0.0),
    (r"[0, \infty)", r"\boxed{[0,\infty)}", 1.0),
    # tuples / ordered pairs
    ("(-1, -4)", r"\boxed{(-1,-4)}", 1.0),
    ("(2, -1)", r"\boxed{(2, -1)}", 1.0),
    ("(1, 2)", r"\boxed{(2, 1)}", 0.0),
    ("(1, 2, 3)", r"\boxed{(1, 2, 3)}", 1.0),
    # expressions
    ("(x+1)^2", r"\boxed{x^2+2x+1}", 1.0),
    ("(x+1)^2", r"\boxed{x^2+2x+2}", 0.0),
    ("x^2-1", r"\boxed{(x-1)(x+1)}", 1.0),
    (r"\frac{x}{2}", r"\boxed{x/2}", 1.0),
    ("2x+1", r"\boxed{1+2x}", 1.0),
    (r"\frac{\pi}{2}", r"\boxed{\frac{1}{2}\pi}", 1.0),
    ("9", r"\boxed{3^{2}}", 1.0),
    # extraction methods
    ("42", "<answer>42</answer>", 1.0),
    ("42", "<ANSWER> 42 </ANSWER>", 1.0),
    ("42", "The answer is 42.", 1.0),
    (r"\frac{1}{2}", r"Therefore the answer is $\frac{1}{2}$.", 1.0),
    ("12", "Final answer: 12\n(checked twice)", 1.0),
    # precedence: boxed beats tags beats the phrase, wherever they stand
    ("4", r"<answer>3</answer> but really \boxed{4}", 1.0),
    ("3", r"<answer>3</answer> but really \boxed{4}", 0.0),
    ("6", r"The answer is 5. <answer>6</answer>", 1.0),
    ("6", r"\boxed{6} and the answer is 5.", 1.0),
    # several boxed answers: the last wins
    ("2", r"First \boxed{1}, then corrected to \boxed{2}.", 1.0),
    ("1", r"First \boxed{1}, then corrected to \boxed{2}.", 0.0),
    ("2", "The answer is 1.\nNo wait, the answer is 2.", 1.0),
    # nested braces inside \boxed
    (r"\frac{\sqrt{2}}{2}", r"\boxed{\frac{\sqrt{2}}{2}}", 1.0),
    (r"\{1, 2\}", r"\boxed{\left\{1, 2\right\}}", 1.0),
    # unclosed \boxed: no answer at all
    ("5", r"so it is \boxed{5", 0.0),
    # wrong / empty / unparseable answers
    ("5", r"\boxed{}", 0.0),
    ("5", r"\boxed{\text{five}}", 0.0),
    ("5", "I am not sure.", 0.0),
]


@pytest.fixture(scope="module")
def scorer() -> MathScorer:
    return MathScorer(verify_timeout_s=10.0)


def test_equivalence_table_is_large_enough() -> None:
    assert len(EQUIVALENCE) >= 50
    assert {expected for _, _, expected in EQUIVALENCE} == {0.0, 1.0}


@pytest.mark.parametrize(("gold", "response", "expected"), EQUIVALENCE)
def test_equivalence(scorer: MathScorer, gold: str, response: str, expected: float) -> None:
    score = scorer.score("a problem", gold, response)
    assert score.reward == expected
    assert score.clean_reward == expected
    assert score.components == {"correct": expected, "format": 0.0}
    assert not score.timed_out
    assert not score.flipped


# ------------------------------------------------------------------------ extraction
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so x = \boxed{\dfrac12}.", r"\dfrac12"),
        (r"\boxed{1} then \boxed{2}", "2"),
        (r"\boxed{a}\boxed{b}\boxed{c}", "c"),
        (r"\boxed{\frac{a^{2}}{b_{1}}}", r"\frac{a^{2}}{b_{1}}"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed {7}", "7"),
        (r"\fbox{7}", "7"),
        (r"\boxed{  8  }", "8"),
        (r"\boxed{5", None),
        (r"\boxed{}", None),
        (r"\boxed{  } <answer>4</answer>", "4"),
        ("<answer>3</answer> and \\boxed{4}", "4"),
        ("<answer>1</answer><answer> 2 </answer>", "2"),
        ("<answer>\n12\n</answer>", "12"),
        ("<answer></answer> the answer is 3", "3"),
        ("The answer is 5. <answer>6</answer>", "6"),
        ("The answer is $\\frac{1}{2}$.", r"\frac{1}{2}"),
        ("the final answer: 12", "12"),
        ("Final Answer = 12", "12"),
        ("The answer is 5.\nActually the answer is 7.", "7"),
        ("The answer is 3.5.", "3.5"),
        ("the answer is x = 3", "x = 3"),
        ("The answer is", None),
        ("The answer is .", None),
        ("no answer here", None),
        ("", None),
    ],
)
def test_extract_answer_default_order(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_unclosed_last_boxed_does_not_fall_back_to_an_earlier_one() -> None:
    """Regression: a cut-off reply was graded on the earlier answer it went on to replace."""
    text = r"First \boxed{1}, then corrected to \boxed{2"
    assert extract_answer(text, ("boxed",)) is None
    # with the other methods still on, they are tried next
    assert extract_answer(text + " <answer>3</answer>") == "3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\boxed{a \boxed{b}}", r"a \boxed{b}"),
        (r"\boxed{\boxed{5}}", r"\boxed{5}"),
        (r"\boxed{a \fbox{b} c} then", r"a \fbox{b} c"),
        (r"\boxed{1} and \boxed{x \boxed{2}}", r"x \boxed{2}"),
        (r"\boxed{x \boxed{2}} and \boxed{3}", "3"),
        (r"\boxed{1} then \boxed{2", None),
        (r"\boxed{1} then \boxed{a \boxed{b}", None),  # the outer box is never closed
        (r"\boxed{a \boxed{b} c", None),
        (r"\boxed{1} \boxed{\{2}", r"\{2"),  # escaped braces do not count
        (r"\boxed{1} \boxed{2\}", None),
        (r"\boxed{1}\boxed{}", ""),
        ("no box", None),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


def test_nested_box_is_graded_as_the_outer_answer(scorer: MathScorer) -> None:
    score = scorer.score("p", "5", r"so \boxed{\boxed{5}}")
    assert score.extracted_answer == r"\boxed{5}"
    assert score.clean_reward == 1.0


BOTH = "<answer>3</answer> and then \\boxed{4}; the answer is 5"


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        (DEFAULT_EXTRACTION, "4"),
        (("boxed",), "4"),
        (("answer_tag",), "3"),
        (("answer_is",), "5"),
        (("answer_tag", "boxed"), "3"),
        (("answer_is", "boxed", "answer_tag"), "5"),
    ],
)
def test_extraction_methods_and_their_order(methods: tuple[str, ...], expected: str) -> None:
    assert extract_answer(BOTH, methods) == expected


def test_only_the_configured_methods_are_used() -> None:
    assert extract_answer("The answer is 5.", ("boxed", "answer_tag")) is None
    assert extract_answer(r"\boxed{5}", ("answer_tag", "answer_is")) is None


def test_scorer_uses_its_extraction_order() -> None:
    tag_first = MathScorer(answer_extraction=("answer_tag", "boxed"))
    assert tag_first.score("p", "3", BOTH).reward == 1.0
    assert tag_first.score("p", "4", BOTH).reward == 0.0
    boxed_only = MathScorer(answer_extraction=["boxed"])
    score = boxed_only.score("p", "5", "The answer is 5.")
    assert (score.has_answer, score.extracted_answer, score.reward) == (False, None, 0.0)


@pytest.mark.parametrize("methods", [(), "boxed", ["boxed", "latex"], ["nope"]])
def test_bad_extraction_methods_raise(methods: Any) -> None:
    with pytest.raises(ValueError, match="answer_extraction"):
        check_extraction_methods(methods)
    with pytest.raises(ValueError, match="answer_extraction"):
        MathScorer(answer_extraction=methods)


def test_no_answer_scores_zero_with_zero_format(scorer: MathScorer) -> None:
    formatted = MathScorer(RewardConfig(format_reward=0.2))
    for s in (scorer, formatted):
        score = s.score("p", "5", "I think it might be five-ish")
        assert score.has_answer is False
        assert score.extracted_answer is None
        assert score.reward == 0.0
        assert score.clean_reward == 0.0
        assert score.components == {"correct": 0.0, "format": 0.0}
    with_answer = formatted.score("p", "5", r"\boxed{4}")
    assert with_answer.components == {"correct": 0.0, "format": 0.2}
    assert with_answer.reward == pytest.approx(0.2)


def test_verdict_reports_the_parsed_answer() -> None:
    checker = AnswerChecker(timeout_s=10)
    assert checker.check(r"\frac{1}{2}", "0.5") == Verdict(True, "1/2")
    assert checker.check("3", "x=3") == Verdict(True, "Eq(x, 3)")
    assert checker.check("[1, 3)", "(1, 3)") == Verdict(False, "Interval.open(1, 3)")


def test_unparseable_gold_raises() -> None:
    with pytest.raises(ValueError, match="reference answer"):
        AnswerChecker(timeout_s=10).check("", "5")


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_checker_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        AnswerChecker(timeout_s=timeout)


# ------------------------------------------------------------------------ time limit
def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a (non-main) thread and return its result or raise its exception."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as error:  # re-raised in the test's thread
            result["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the check hung in a worker thread"
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture(autouse=True)
def no_remembered_timeouts() -> Iterator[None]:
    """Each test checks its answers afresh: checks that timed out in another test are forgotten."""
    verifier._TIMED_OUT.clear()
    yield
    verifier._TIMED_OUT.clear()


@pytest.fixture
def fresh_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[verifier._WorkerPool]:
    """A private worker pool (so no test sees another test's warm workers), shut down after."""
    pool = verifier._WorkerPool(size=1)
    monkeypatch.setattr(verifier, "_POOL", pool)
    yield pool
    pool.shutdown()


def test_time_limit_in_main_thread() -> None:
    assert threading.current_thread() is threading.main_thread()
    checker = AnswerChecker(timeout_s=1.0)
    checker.check("1", "1")  # math-verify imported, so the limit measures the check only
    start = time.monotonic()
    verdict = checker.check("5", PATHOLOGICAL)
    elapsed = time.monotonic() - start
    assert verdict == Verdict(False, "", timed_out=True)
    assert elapsed < 1.0 + 3.0
    # the alarm is disarmed and the checker still works
    assert checker.check("5", "5") == Verdict(True, "5")
    assert checker.check(r"\frac{1}{2}", "0.5").correct is True


def test_time_limit_through_the_scorer() -> None:
    scorer = MathScorer(RewardConfig(format_reward=0.1), verify_timeout_s=1.0)
    start = time.monotonic()
    score = scorer.score("p", "5", rf"so it is \boxed{{{PATHOLOGICAL}}}")
    assert time.monotonic() - start < 1.0 + 3.0
    assert score.timed_out is True
    assert score.has_answer is True
    assert score.clean_reward == 0.0
    assert score.components == {"correct": 0.0, "format": 0.1}
    assert scorer.score("p", "5", r"\boxed{5}").reward == pytest.approx(1.1)


def test_time_limit_in_worker_thread(fresh_pool: verifier._WorkerPool) -> None:
    generous = AnswerChecker(timeout_s=30.0)
    tight = AnswerChecker(timeout_s=1.5)

    def run() -> list[tuple[Verdict, float]]:
        out = []
        for checker, gold, answer in (
            (generous, "5", "5"),  # starts the worker and imports math-verify there
            (tight, "5", PATHOLOGICAL),
            (generous, r"\frac{1}{2}", "0.5"),  # right after: a fresh worker does it
        ):
            start = time.monotonic()
            out.append((checker.check(gold, answer), time.monotonic() - start))
        return out

    (warm, _), (slow, slow_s), (after, _) = _in_thread(run)
    assert warm == Verdict(True, "5")
    assert slow == Verdict(False, "", timed_out=True)
    assert 1.4 <= slow_s < 1.5 + 4.0
    assert after == Verdict(True, "1/2")


def test_worker_thread_limit_does_not_count_worker_start(fresh_pool: verifier._WorkerPool) -> None:
    """Regression: a fresh worker used to import math-verify inside its first timed check (~1 s),
    so with a short limit every check in a thread timed out, and each overrun started another
    cold worker. Workers now warm up before they report ready."""
    checker = AnswerChecker(timeout_s=0.25)

    def run() -> list[Verdict]:
        return [checker.check("5", "5"), checker.check("5", PATHOLOGICAL), checker.check("5", "6")]

    assert _in_thread(run) == [
        Verdict(True, "5"),
        Verdict(False, "", timed_out=True),
        Verdict(False, "6"),  # the replacement worker is warm too
    ]


def test_worker_pool_usable_after_shutdown(fresh_pool: verifier._WorkerPool) -> None:
    """Regression: shutdown() left killed workers in the idle queue, so the next check took a dead
    one (EnvInfrastructureError) and the count of started workers went to -1."""
    checker = AnswerChecker(timeout_s=10.0)

    def run() -> list[Verdict]:
        first = checker.check("5", "5")
        fresh_pool.shutdown()
        assert (fresh_pool._started, fresh_pool._idle.empty(), fresh_pool._all) == (0, True, set())
        return [first, checker.check("5", "5"), checker.check("6", "5")]

    assert _in_thread(run) == [Verdict(True, "5"), Verdict(True, "5"), Verdict(False, "5")]
    assert fresh_pool._started == 1
    assert len(fresh_pool._all) == 1


def test_waiting_check_takes_the_slot_of_a_killed_worker(
    fresh_pool: verifier._WorkerPool,
) -> None:
    """A check waiting for the only worker goes on when that worker is killed for overrunning
    (it used to wait for an idle worker that never came back)."""
    tight = AnswerChecker(timeout_s=1.0)
    generous = AnswerChecker(timeout_s=30.0)
    results: dict[str, Verdict] = {}

    def slow() -> None:
        results["slow"] = tight.check("5", PATHOLOGICAL)

    def waiting() -> None:
        results["waiting"] = generous.check("5", "5")

    first = threading.Thread(target=slow, daemon=True)
    first.start()
    deadline = time.monotonic() + 30
    while fresh_pool._started < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fresh_pool._started == 1  # the pool is full, so the next check has to wait
    second = threading.Thread(target=waiting, daemon=True)
    second.start()
    first.join(60)
    second.join(60)
    assert not first.is_alive() and not second.is_alive(), "a check hung waiting for a worker"
    assert results == {
        "slow": Verdict(False, "", timed_out=True),
        "waiting": Verdict(True, "5"),
    }
    assert fresh_pool._started == 1


# ------------------------------------------------------- size bound before the time bound
#: The reproducer of non-determinism under load: parsing these took about a second (500) and a
#: few seconds (3000) of wall-clock time, so a busy machine timed the second one out (no parsed
#: answer) where an idle one read it.
LONG_ANSWERS = ["x" * 500, "x" * 3000]


@pytest.mark.parametrize(
    ("answer", "note"),
    [
        ("x" * 401, "the answer has 401 characters, over the limit of 400"),
        ("{" * 9 + "1" + "}" * 9, "the answer nests brackets 9 deep, over the limit of 8"),
        (
            r"\frac{1}{" * 20 + "2" + "}" * 20,
            "the answer nests brackets 20 deep, over the limit of 8",
        ),
    ],
)
def test_size_bound_is_checked_before_anything_is_parsed(
    answer: str, note: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: Any) -> Any:
        raise AssertionError("an answer over the size bound was handed to math-verify")

    monkeypatch.setattr(verifier, "_check_unlimited", never)
    monkeypatch.setattr(verifier._POOL, "check", never)
    expected = Verdict(False, "", note=note)
    assert AnswerChecker(timeout_s=5).check("5", answer) == expected
    assert _in_thread(lambda: AnswerChecker(timeout_s=5).check("5", answer)) == expected


def test_answers_within_the_bound_are_read() -> None:
    checker = AnswerChecker(timeout_s=10)
    assert checker.check("8", "{" * 8 + "8" + "}" * 8).parsed != ""
    assert checker.check("1", "1" + " " * 399).correct is True


@pytest.mark.parametrize("answer", LONG_ANSWERS)
def test_long_answer_verdict_does_not_depend_on_the_clock(
    answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    normal = AnswerChecker(timeout_s=5).check("x", answer)
    assert normal.note.startswith(f"the answer has {len(answer)} characters")
    tiny = AnswerChecker(timeout_s=1e-6)  # a limit no check can meet
    assert tiny.check("x", answer) == normal
    assert _in_thread(lambda: tiny.check("x", answer)) == normal

    def slow(gold: str, text: str) -> Any:  # a machine so slow that any parse overruns
        deadline = time.process_time() + 10.0
        while time.process_time() < deadline:
            pass
        raise AssertionError("unreachable")

    monkeypatch.setattr(verifier, "_check_unlimited", slow)
    assert AnswerChecker(timeout_s=0.1).check("x", answer) == normal


def test_the_limit_counts_cpu_time_not_time_spent_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that waits (as on a machine busy with other processes) does not time out."""
    real = verifier._check_unlimited
    verifier._warm_up()

    def descheduled(gold: str, answer: str) -> tuple[bool, str, str]:
        time.sleep(1.5)  # wall-clock time passes, this process's CPU time does not
        return real(gold, answer)

    monkeypatch.setattr(verifier, "_check_unlimited", descheduled)
    start = time.monotonic()
    assert AnswerChecker(timeout_s=0.5).check("5", "5") == Verdict(True, "5")
    assert time.monotonic() - start >= 1.5


def test_a_timed_out_check_times_out_again_at_once() -> None:
    checker = AnswerChecker(timeout_s=0.5)
    checker.check("1", "1")
    assert checker.check("5", PATHOLOGICAL) == Verdict(False, "", timed_out=True)
    start = time.monotonic()
    assert checker.check("5", PATHOLOGICAL) == Verdict(False, "", timed_out=True)
    assert time.monotonic() - start < 0.2
    assert _in_thread(lambda: checker.check("5", PATHOLOGICAL)) == Verdict(
        False, "", timed_out=True
    )
    assert checker.check("5", "5") == Verdict(True, "5")


@pytest.mark.parametrize("in_thread", [False, True])
def test_an_answer_math_verify_fails_on_is_wrong_with_a_note(
    in_thread: bool, fresh_pool: verifier._WorkerPool
) -> None:
    """Regression: math-verify raised ValueError (CPython's int-conversion limit) on this answer,
    and the error ended the episode as an env_error."""
    checker = AnswerChecker(timeout_s=30)
    check = lambda: checker.check("5", r"\binom{15000}{7500}")  # noqa: E731
    verdict = _in_thread(check) if in_thread else check()
    assert verdict.correct is False and not verdict.timed_out
    assert verdict.note.startswith("math-verify failed on the answer: ValueError")


_COLD_START = """
import sys
from arenagym.envs.math.verifier import AnswerChecker
verdict = AnswerChecker(timeout_s=float(sys.argv[1])).check("5", "5")
print(verdict.correct, verdict.timed_out)
"""


def _cold_main_thread_check(timeout_s: float) -> str:
    """The first check of a fresh interpreter, in its main thread, with limit ``timeout_s``."""
    done = subprocess.run(
        [sys.executable, "-c", _COLD_START, str(timeout_s)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_main_thread_limit_does_not_count_the_math_verify_import() -> None:
    """Regression: importing math-verify and sympy (~1 s) counted against the first check's limit
    in the main thread, so a short limit timed out at a cold start."""
    assert _cold_main_thread_check(0.5) == "True False"


def test_main_thread_tiny_limit_at_a_cold_start() -> None:
    assert _cold_main_thread_check(0.05) == "True False"


# ------------------------------------------------------------------------ fuzzing
FRAGMENTS = st.sampled_from(
    [
        "\\boxed{", "\\fbox{", "}", "{", "\\{", "\\}", "\\frac", "\\sqrt", "^", "_", "\\infty",
        "<answer>", "</answer>", "The answer is ", "Final answer:", "\n", "$", "x=", "[", "]",
        "(", ")", ",", ".", "1", "-2", "0.5", "\\\\", "\\text{", "\\left(", "\\right]", "=", "/",
        "\\pi", "a", "wait", " ", "é", "\u2028",
    ]
)  # fmt: skip
TEXTS = st.one_of(st.text(max_size=120), st.lists(FRAGMENTS, max_size=30).map("".join))
FUZZ_SCORER = MathScorer(RewardConfig(mode="correct+rpr", format_reward=0.1), verify_timeout_s=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_extract_answer_never_raises(text: str) -> None:
    answer = extract_answer(text)
    assert answer is None or (answer and answer == answer.strip() and answer in text)
    for method in DEFAULT_EXTRACTION:
        single = extract_answer(text, (method,))
        assert single is None or single in text


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, st.sampled_from(["5", r"\frac{1}{2}", "[1, 3)", r"\{1, 2\}", "(x+1)^2"]))
def test_score_never_raises(text: str, gold: str) -> None:
    score = FUZZ_SCORER.score("p", gold, text)
    assert score.reward == pytest.approx(sum(score.components.values()))
    assert score.clean_reward in (0.0, 1.0)
    assert 0.0 <= score.rpr <= 1.0
    assert score.has_answer == (score.extracted_answer is not None)
    assert score.components["format"] == (0.1 if score.has_answer else 0.0)
