"""The TextArena family: PettingZoo/Gymnasium APIs, seeding, isolation of `random`, invalid moves."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import warnings
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test

import arenagym.envs
from arenagym.envs.core.registration import make_multi_agent
from arenagym.envs.textarena import make_textarena_env
from arenagym.envs.textarena.env import load_opponent
from arenagym.envs.textarena.games import GAMES, aec_id, gym_id

pytest.importorskip("textarena")

NAMES = list(GAMES)
OPPONENTS = "arenagym.envs.textarena.opponents:"


def play_aec(game: str, seed: int, spec: str = "RandomLegalOpponent") -> list[Any]:
    """A whole game between two scripted players, as a JSON-able transcript."""
    env = make_multi_agent(aec_id(game))
    env.reset(seed=seed)
    players = {a: load_opponent(OPPONENTS + spec, {"seed": 1}) for a in env.possible_agents}
    for agent, player in players.items():
        player.reset(env.infos[agent]["system_prompt"])
    record: list[Any] = []
    for agent in env.agent_iter():
        obs, reward, terminated, truncated, info = env.last()
        record.append(
            [agent, str(obs), reward, terminated, truncated, json.dumps(info, default=str)]
        )
        if terminated or truncated:
            env.step(None)
            continue
        players[agent].observe_game(env.game_view(agent))
        env.step(players[agent].act(obs))
    env.close()
    return record


@pytest.mark.parametrize("game", NAMES)
def test_pettingzoo_api_test(game: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Observation is not a NumPy array": it is text
        api_test(make_multi_agent(aec_id(game)), num_cycles=30)


@pytest.mark.parametrize("game", NAMES)
def test_gymnasium_check_env(game: str) -> None:
    env = gym.make(gym_id(game))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert not [w for w in caught if not issubclass(w.category, (DeprecationWarning, ResourceWarning))]
    env.close()
    env.close()


@pytest.mark.parametrize("game", NAMES)
def test_same_seed_same_game_and_legal_play(game: str) -> None:
    first = play_aec(game, seed=11)
    assert first == play_aec(game, seed=11)
    assert first[-1][3] or first[-1][4]  # the game ended
    # In Minesweeper hitting a mine, and in Sudoku any digit but the hidden solution's, is
    # TextArena's "invalid move"; scripted players see only what is visible, so they can err there.
    if game not in ("Minesweeper", "Sudoku"):
        for seed in (11, 12, 13, 14):  # the scripted players' "legal" moves are legal
            steps = first if seed == 11 else play_aec(game, seed=seed)
            errors = [json.loads(step[5]).get("error", "") for step in steps]
            errors = [e for e in errors if e]
            if game == "UltimateTicTacToe":  # TextArena can leave a player with no legal move
                errors = [e for e in errors if "must be in the form" not in e]  # ("[pass]")
            assert not errors, (seed, errors)


def test_random_starts_differ_by_seed() -> None:
    for game in (g for g, spec in GAMES.items() if spec.start == "random"):
        starts = set()
        for seed in range(4):
            env = make_multi_agent(aec_id(game))
            env.reset(seed=seed)
            starts.add((str(env.observe("player_0")), env.infos["player_0"]["task_id"]))
        assert len(starts) == 4, game


def test_gym_env_same_seed_same_transcript() -> None:
    def play(seed: int) -> list[Any]:
        env = gym.make(gym_id("Battleship"), render_mode="ansi")
        obs, info = env.reset(seed=seed)
        cells = [f"[{r}{c}]" for r in "ABCDE" for c in range(5)]
        steps: list[Any] = [obs, info["task_id"]]
        for cell in cells:
            obs, reward, terminated, truncated, info = env.step(cell)
            steps.append([obs, reward, terminated, info.get("stop_reason")])
            if terminated or truncated:
                break
        transcript = env.render()
        env.close()
        return [*steps, transcript]

    assert play(5) == play(5)
    assert play(5) != play(6)


def test_global_random_is_untouched_and_thread_safe() -> None:
    random.seed(2024)
    before = random.getstate()
    expected = play_aec("KuhnPoker", seed=3)
    play_aec("Battleship", seed=4)
    assert random.getstate() == before

    results: list[list[Any]] = []
    stop = threading.Event()

    def noise() -> None:  # another thread using the global generator all along
        while not stop.is_set():
            random.seed(random.random())

    def worker() -> None:
        for _ in range(3):
            results.append(play_aec("KuhnPoker", seed=3))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    noisy = threading.Thread(target=noise)
    noisy.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    noisy.join()
    assert len(results) == 12 and all(r == expected for r in results)


def test_aec_invalid_moves_follow_textarena_rule() -> None:
    env = make_multi_agent(aec_id("TicTacToe"))
    env.reset(seed=0)
    env.step("no idea")
    assert env.agent_selection == "player_0" and env.infos["player_0"]["invalid_action"]
    assert not any(env.terminations.values())
    env.step(123)  # not text: also an invalid move, and the second one
    assert all(env.terminations.values())
    assert env.infos["player_0"]["stop_reason"] == "invalid_action"
    assert env.infos["player_1"]["stop_reason"] == "won"
    assert env._cumulative_rewards == {"player_0": -1.0, "player_1": 1.0}


def test_aec_invalid_moves_are_penalised_components_and_the_loser_is_told_why() -> None:
    env = make_multi_agent(aec_id("TicTacToe"), invalid_action_penalty=0.5)
    env.reset(seed=0)
    env.step("[4]")
    assert env.infos["player_0"]["reward_components"] == {"outcome": 0.0}
    env.step("")  # player_1's warning: the penalty, as a reward component
    assert env.rewards == {"player_0": 0.0, "player_1": -0.5}
    assert env.infos["player_1"]["reward_components"] == {"outcome": 0.0, "invalid_action": -0.5}
    env.step(None)  # and its second one in a row loses the game
    assert env.infos["player_1"]["reward_components"] == {"outcome": -1.0, "invalid_action": -0.5}
    assert env.rewards == {"player_0": 1.0, "player_1": -1.5}
    assert "lost the game" in env.observe("player_1") and "NoneType" in env.observe("player_1")
    with pytest.raises(ValueError, match="invalid_action_penalty"):
        make_multi_agent(aec_id("TicTacToe"), invalid_action_penalty=-1)


@pytest.mark.parametrize("game", ["TicTacToe", "Chess", "Sudoku"])
def test_gym_garbage_ends_the_game_without_exceptions(game: str) -> None:
    env = gym.make(gym_id(game), seat=0)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("🙂 garbage")
    assert info["invalid_action"] and not terminated and reward == 0.0
    obs, reward, terminated, _, info = env.step(None)  # type: ignore[arg-type]
    assert terminated and info["stop_reason"] == "invalid_action"
    assert obs.startswith("Invalid action:") and reward == sum(info["reward_components"].values())
    assert info["reward_components"]["outcome"] <= 0.0
    env.close()


def test_gym_env_seat_and_opponent_kwargs() -> None:
    env = gym.make(gym_id("TicTacToe"), seat=1, opponent=OPPONENTS + "SearchOpponent")
    _, info = env.reset(seed=0)
    assert info["seat"] == 1 and info["opponent_moves"] == 1 and "/seat=1" in info["task_id"]
    seats = {gym.make(gym_id("Nim")).reset(seed=s)[1]["seat"] for s in range(8)}
    assert seats == {0, 1}
    with pytest.raises(ValueError, match="seat"):
        gym.make(gym_id("Nim"), seat=2)


def test_other_textarena_ids_and_bad_ids() -> None:
    env = make_textarena_env("Nim-v0-large", multi_agent=True)
    env.reset(seed=0)
    assert env.possible_agents == ["player_0", "player_1"]
    with pytest.raises(ValueError, match="did you mean"):
        make_textarena_env("TicTacToe-v9", multi_agent=True)


@pytest.mark.parametrize("move", ["[a2a2]", "[e2e2]", "[e2e2q]", "[h8h8]"])
def test_chess_same_square_move_is_an_invalid_move_of_the_mover(move: str) -> None:
    """Regression: ``[e2e2]`` passes Chess's move pattern, then python-chess raises "invalid uci",
    and the game used to end as ``env_error`` for both players (a loser could void the game)."""
    env = make_multi_agent(aec_id("Chess"))
    env.reset(seed=0)
    env.step(move)
    assert not any(env.terminations.values()) and env.agent_selection == "player_0"
    assert (
        env.infos["player_0"]["invalid_action"]
        and "could not be played" in env.infos["player_0"]["error"]
    )
    assert "invalid uci" in str(env.observe("player_0"))  # the player is told what was wrong
    env.step("[e2e4]")  # a valid move afterwards is played as usual
    assert env.agent_selection == "player_1" and not env.infos["player_0"]["invalid_action"]
    env.step(move.replace("2", "7"))  # the other player's same-square move: its warning
    assert env.agent_selection == "player_1" and env.infos["player_1"]["invalid_action"]
    env.step(move.replace("2", "7"))  # and its second one in a row loses the game
    assert all(env.terminations.values())
    assert env.infos["player_1"]["stop_reason"] == "invalid_action"
    assert env.infos["player_0"]["stop_reason"] == "won"
    assert env._cumulative_rewards == {"player_0": 1.0, "player_1": -1.0}

    gym_env = gym.make(gym_id("Chess"), seat=0)
    gym_env.reset(seed=0)
    observation, reward, terminated, truncated, info = gym_env.step(move)
    assert info["invalid_action"] and not (terminated or truncated) and reward == 0.0
    assert "invalid uci" in observation
    _, reward, terminated, _, info = gym_env.step(move)
    assert terminated and info["stop_reason"] == "invalid_action"
    assert info["reward_components"]["outcome"] == -1.0
    gym_env.close()


def test_any_exception_of_the_game_code_is_an_invalid_move() -> None:
    env = make_multi_agent(aec_id("Checkers"))
    env.reset(seed=0)
    env._session.game.step = lambda action: 1 / 0  # TextArena's game code raises on a move
    env.step("[5 0 4 1]")
    assert not any(env.terminations.values()) and env.agent_selection == "player_0"
    assert env.infos["player_0"]["invalid_action"]
    assert "division by zero" in env.infos["player_0"]["error"]
    env.step("[5 0 4 1]")
    assert env.infos["player_0"]["stop_reason"] == "invalid_action"
    assert env.infos["player_1"]["stop_reason"] == "won"


def test_a_game_that_cannot_go_on_is_an_env_error_not_an_exception() -> None:
    env = make_multi_agent(aec_id("Checkers"))
    env.reset(seed=0)
    env._session.game.step = lambda action: 1 / 0
    env._session.game.state.step = lambda *args, **kwargs: 1 / 0  # and its state is broken too
    env.step("[5 0 4 1]")
    assert all(env.terminations.values())
    assert env.infos["player_0"]["stop_reason"] == "env_error"
    assert "could not go on" in env.infos["player_0"]["error"]


def test_a_failure_after_the_game_ended_keeps_the_result() -> None:
    env = make_multi_agent(aec_id("TicTacToe"))
    env.reset(seed=0)
    game = env._session.game
    real_step = game.step

    def step_then_fail(action: str) -> Any:
        result = real_step(action)
        if game.state.done:
            raise RuntimeError("rendering the final board failed")
        return result

    game.step = step_then_fail
    for move in ["[0]", "[3]", "[1]", "[4]", "[2]"]:
        env.step(move)
    assert env.infos["player_0"]["stop_reason"] == "won"
    assert env._cumulative_rewards == {"player_0": 1.0, "player_1": -1.0}


def test_import_is_lazy_and_works_without_textarena() -> None:
    code = (
        "import sys, time\n"
        "sys.modules['textarena'] = None  # as if it were not installed\n"
        "import gymnasium as gym\n"
        "t = time.perf_counter(); import arenagym.envs; took = time.perf_counter() - t\n"
        "assert 'TextArena/Chess-v0' in arenagym.envs.list_envs()\n"
        "try:\n"
        "    gym.make('TextArena/Chess-v0')\n"
        "except ImportError as error:\n"
        "    assert 'arenagym[textarena]' in str(error), error\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
        "print(took)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert float(result.stdout.strip()) < 1.0
    assert "textarena" not in sys.modules or arenagym.envs  # (it is imported in this process)


def test_checkers_ends_when_the_player_to_move_has_no_legal_move() -> None:
    """TextArena 0.7.4's Checkers raises on this ending (``set_winners(player_id=...)``); the
    session routes it to ``set_winner``, so the game ends with a winner, not an env error."""
    from arenagym.envs.textarena.opponents import FirstLegalOpponent

    env = make_multi_agent(aec_id("Checkers"))
    env.reset(seed=2356488672)  # first-legal against itself runs into a player with no move
    players = {agent: FirstLegalOpponent() for agent in env.possible_agents}
    final: dict[str, tuple[float, Any, Any]] = {}
    for agent in env.agent_iter():
        observation, reward, terminated, truncated, info = env.last()
        if terminated or truncated:
            final[agent] = (reward, info.get("stop_reason"), info.get("game_reason"))
            env.step(None)
            continue
        players[agent].observe_game(env.game_view(agent))
        env.step(players[agent].act(str(observation)))
    assert sorted(reason for _, reason, _ in final.values()) == ["lost", "won"]
    assert all("has no moves left" in str(game_reason) for *_, game_reason in final.values())
    assert sorted(reward for reward, *_ in final.values()) == [-1.0, 1.0]


def test_the_invalid_move_warning_is_reported_not_the_board_shown_after_it() -> None:
    from arenagym.envs.textarena.opponents import RandomLegalOpponent

    env = make_multi_agent(aec_id("Minesweeper"))  # hitting a mine is an invalid move there
    env.reset(seed=0)
    player = RandomLegalOpponent(seed=0)
    errors = []
    for agent in env.agent_iter():
        observation, _reward, terminated, truncated, info = env.last()
        if info.get("invalid_action"):
            errors.append(info["error"])
        if terminated or truncated:
            env.step(None)
            continue
        player.observe_game(env.game_view(agent))
        env.step(player.act(str(observation)))
    assert errors and "attempted an invalid move" in errors[0] and "hit a mine" in errors[0]
    assert "Current Board" not in errors[0]
