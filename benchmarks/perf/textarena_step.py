"""Steps per second of arenagym's TextArena wrappers against raw textarena, same games, same run.

Scripted games (random legal moves, recorded once) of the fixed-start two-player DFC games are
replayed four ways, each timed over the whole games including their resets (a fresh TextArena
game per episode; the wrappers are built once, as a rollout worker would):

* raw textarena, the baseline: the unwrapped engine (``ta.make("<Game>-v0-raw")``),
  ``step(action)``, then ``get_observation()`` turned into the text an LLM reads (the new
  messages as ``[SENDER] message`` lines, as TextArena's ``LLMObservationWrapper`` writes them,
  without repeating the history) — the same text the wrappers produce, so the ratio is the cost
  of the wrappers alone;
* textarena as ``ta.make("<Game>-v0")`` gives it (its default wrappers, which re-render the whole
  history into every observation), shown for reference;
* PettingZoo: :class:`~arenagym.envs.textarena.aec.TextArenaAECEnv`, ``observe`` then ``step``;
* Gymnasium: :class:`~arenagym.envs.textarena.env.TextArenaEnv` (``gym.make``, seat 0), whose
  opponent replays the other seat's moves inside ``step``.

Times are process CPU time (``time.process_time``), best of ``--repeats`` interleaved runs, so
that other work on a shared machine disturbs the ratios less. It prints moves per second and
the overhead ratio (wrapper time / raw time; the goal is <= 1.10 over all games).

    python -m arenagym.benchmarks.perf.textarena_step [--games 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym

import arenagym.envs  # noqa: F401  (registers the ids)
from arenagym.envs.core.registration import make_multi_agent
from arenagym.envs.textarena.game import build_game, import_textarena
from arenagym.envs.textarena.games import GAMES, aec_id, gym_id
from arenagym.envs.textarena.opponents import RandomLegalOpponent

FIXED_TWO_PLAYER = [g.name for g in GAMES.values() if g.num_players == 2 and g.start == "fixed"]


class ReplayAgent:
    """Plays a recorded list of moves (the opponent seat of the Gymnasium replay)."""

    def __init__(self, moves: list[str]) -> None:
        self.moves = moves
        self.index = 0

    def reset(self, system_prompt: str) -> None:
        self.index = 0

    def act(self, observation: str) -> str:
        move = self.moves[self.index]
        self.index += 1
        return move


def record(game: str, seed: int) -> list[str]:
    """The moves of one random-legal game of ``game``; ``[]`` unless every move was valid."""
    env = make_multi_agent(aec_id(game))
    env.reset(seed=seed)
    players = {a: RandomLegalOpponent(seed=seed) for a in env.possible_agents}
    moves: list[str] = []
    clean = True
    for agent in env.agent_iter():
        _obs, _r, terminated, truncated, info = env.last()
        clean = clean and not info.get("invalid_action")
        if terminated or truncated:
            env.step(None)
            continue
        players[agent].observe_game(env.game_view(agent))
        moves.append(players[agent].act(str(env.observe(agent))))
        env.step(moves[-1])
    if info.get("stop_reason") == "env_error" or not clean:
        return []  # a TextArena bug, or a stuck position (no legal move): not a clean script
    return moves


def as_text(env: Any, messages: list[tuple[int, str, Any]]) -> str:
    """New messages as the text an LLM reads (``LLMObservationWrapper``'s lines, no history)."""
    roles = env.state.role_mapping
    return "\n".join(
        f"[{'GAME' if sender == -1 else roles.get(sender, f'Player {sender}')}] {message}"
        for sender, message, _kind in messages
    )


def time_raw(game: str, scripts: list[list[str]]) -> float:
    start = time.process_time()
    for moves in scripts:
        env = build_game(GAMES[game].textarena_id)  # a fresh game per episode, as the wrappers do
        env.reset(num_players=2, seed=0)
        as_text(env, env.get_observation()[1])
        for move in moves:
            env.step(move)
            as_text(env, env.get_observation()[1])
    return time.process_time() - start


def time_default(game: str, scripts: list[list[str]]) -> float:
    textarena = import_textarena()
    start = time.process_time()
    for moves in scripts:
        env = textarena.make(GAMES[game].textarena_id)  # its wrappers keep history: fresh each
        env.reset(num_players=2, seed=0)
        for move in moves:
            env.get_observation()
            env.step(move)
    return time.process_time() - start


def time_aec(game: str, scripts: list[list[str]]) -> float:
    env = make_multi_agent(aec_id(game))
    start = time.process_time()
    for moves in scripts:
        env.reset(seed=0)
        for move in moves:
            env.observe(env.agent_selection)
            env.step(move)
        assert all(env.terminations.values())
    return time.process_time() - start


def time_gym(game: str, scripts: list[list[str]]) -> float:
    env = gym.make(
        gym_id(game),
        seat=0,
        opponent="arenagym.benchmarks.perf.textarena_step:ReplayAgent",
        opponent_kwargs={"moves": []},
    )
    replay = env.unwrapped._opponent
    start = time.process_time()
    for moves in scripts:
        replay.moves = moves[1::2]
        env.reset(seed=0)
        terminated = False
        for move in moves[0::2]:
            *_, terminated, _truncated, _info = env.step(move)
        assert terminated
    env.close()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=10, help="recorded games per DFC game")
    parser.add_argument("--repeats", type=int, default=5, help="best of this many timings")
    args = parser.parse_args()
    scripts = {g: [m for s in range(args.games) if (m := record(g, s))] for g in FIXED_TWO_PLAYER}
    totals = {"raw": 0.0, "default": 0.0, "aec": 0.0, "gym": 0.0}
    print(
        f"{'game':<26}{'moves':>6}{'raw/s':>8}{'make/s':>8}{'AEC/s':>8}{'Gym/s':>8}"
        f"{'AEC x':>7}{'Gym x':>7}"
    )
    for game, games in scripts.items():
        moves = sum(len(m) for m in games)
        timers = [
            ("raw", time_raw),
            ("default", time_default),
            ("aec", time_aec),
            ("gym", time_gym),
        ]
        times = {name: float("inf") for name, _ in timers}
        for repeat in range(args.repeats):  # interleaved, in a rotating order; best of repeats
            for name, timer in timers[repeat % 4 :] + timers[: repeat % 4]:
                times[name] = min(times[name], timer(game, games))
        for name in totals:
            totals[name] += times[name]
        rates = [moves / times[name] for name in totals]
        print(
            f"{game:<26}{moves:>6}"
            + "".join(f"{rate:>8.0f}" for rate in rates)
            + f"{times['aec'] / times['raw']:>7.2f}{times['gym'] / times['raw']:>7.2f}"
        )
    print(
        f"{'all (wrapper / raw)':<58}{totals['aec'] / totals['raw']:>7.2f}"
        f"{totals['gym'] / totals['raw']:>7.2f}   goal <= 1.10"
    )
    print(
        f"{'all (wrapper / ta.make default)':<58}{totals['aec'] / totals['default']:>7.2f}"
        f"{totals['gym'] / totals['default']:>7.2f}"
    )


if __name__ == "__main__":
    main()
