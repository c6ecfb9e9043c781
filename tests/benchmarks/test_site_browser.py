"""The static web leaderboard in a real browser: headless Chromium driven by Selenium.

Debian's ``chromium`` and ``chromium-driver`` (``scripts/setup-browser``, run by ``make test``);
without them these tests skip, saying why. The screenshot goes to ``$ARENAGYM_ARTIFACTS`` (default:
the test's tmp folder), so that CI can keep it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arenagym.benchmarks.leaderboard import build_leaderboards
from arenagym.benchmarks.site import write_site
from arenagym.benchmarks.store import EpisodeRow, ResultsStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _why_not() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (scripts/ensure-venv test)"
    if CHROMIUM is None or DRIVER is None:
        return "Chromium or chromedriver is missing: run scripts/setup-browser (Debian's chromium, chromium-driver)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1600"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _store() -> ResultsStore:
    store = ResultsStore(":memory:")
    try:
        from arenagym.benchmarks.transcripts import new_turn
    except ImportError:  # a store from before transcripts: the page says there is none
        new_turn = None
    for agent, base in (("solver", 0.8), ("guesser", 0.3)):
        for task, kwargs in (("bleu", {"score_metric": "BLEU-2"}), ("acc", {})):
            for seed in range(2):
                for ep in range(3):
                    row = EpisodeRow(
                        suite="web", task=task, env_id="E-v0", env_kwargs=kwargs, agent=agent,
                        seed=seed, episode=ep, reset_seed=ep, metric="clean_reward",
                        score=base + 0.05 * ep, reward=base, clean_reward=base, turns=1,
                        stop_reason="solved", agent_spec="random", duration_s=0.25,
                    )  # fmt: skip
                    turns = None
                    if new_turn is not None:
                        turns = [new_turn(1, f"question {seed}-{ep}", f"ANSWER-{agent}-{ep}")]
                    store.add(row, transcript=turns) if turns else store.add(row)
    return store


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def test_the_site_loads_holds_the_figures_and_links_down_to_a_transcript(
    browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    store = _store()
    index = write_site(store, tmp_path / "site", draws=200)
    browser.get(index.as_uri())
    assert browser.title.startswith("arenagym leaderboard")
    assert _severe(browser) == []
    browser.find_element(By.LINK_TEXT, "web").click()
    assert browser.title.startswith("Suite web")
    assert _severe(browser) == []

    (board,) = build_leaderboards(store)
    for result in board.agents:
        for task, score in result.scores.items():
            cell = browser.find_element(
                By.CSS_SELECTOR, f'td.score[data-agent="{result.agent}"][data-task="{task}"] a'
            )
            assert cell.text == f"{score.mean:.3f}"
        overall = browser.find_element(
            By.CSS_SELECTOR, f'td.overall[data-agent="{result.agent}"] a'
        )
        assert overall.text == f"{result.overall:.3f}"
    headers = browser.find_element(By.CSS_SELECTOR, "table.leaderboard thead").text
    assert "BLEU-2" in headers  # named by its metric
    assert browser.find_elements(By.CSS_SELECTOR, "figure svg")  # the plots are there

    artifacts = Path(os.environ.get("ARENAGYM_ARTIFACTS") or tmp_path / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "leaderboard-suite.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    browser.find_element(
        By.CSS_SELECTOR, 'td.score[data-agent="solver"][data-task="bleu"] a'
    ).click()
    assert browser.title.startswith("solver · bleu")
    assert _severe(browser) == []
    links = browser.find_elements(By.CSS_SELECTOR, "a.episode")
    assert len(links) == 6
    links[0].click()
    assert "seed 0 episode 0" in browser.title
    assert _severe(browser) == []
    transcript = browser.find_element(By.ID, "transcript").find_element(By.XPATH, "..").text
    if hasattr(store, "transcript"):
        assert "ANSWER-solver-0" in transcript and "question 0-0" in transcript
    else:
        assert "No transcript stored" in transcript
    browser.find_element(By.LINK_TEXT, "All suites").click()
    assert browser.title.startswith("arenagym leaderboard")
