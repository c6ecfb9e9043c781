"""Steps per second of arenagym's TextArena wrappers against raw textarena, same games, same run.

Scripted games (random legal moves, recorded once) of the fixed-start two-player DFC games are
replayed three ways, each timed over the whole games including their resets (each builds a
fresh TextArena game per episode; the wrappers are built once, as a rollout worker would):

* raw textarena: the unwrapped TextArena env, ``step(action)`` then ``get_observation()``;
* PettingZoo: :class:`~arenagym.envs.textarena.aec.TextArenaAECEnv`, ``observe`` then ``step``;
* Gymnasium: :class:`~arenagym.envs.textarena.env.TextArenaEnv` (``gym.make``, seat 0), whose
  opponent replays the other seat's moves inside ``step``.

It prints moves per second and the overhead ratio (raw time / wrapper time; the goal is <= 1.1x).

    python -m arenagym.benchmarks.perf.textarena_step [--games 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

import arenagym.envs  # noqa: F401  (registers the ids)
from arenagym.envs.core.registration import make_multi_agent
from arenagym.envs.textarena.game import build_game
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


def time_raw(game: str, scripts: list[list[str]]) -> float:
    start = time.perf_counter()
    for moves in scripts:
        env = build_game(GAMES[game].textarena_id)  # a fresh game per episode, as the wrappers do
        env.reset(num_players=2, seed=0)
        env.get_observation()
        for move in moves:
            env.step(move)
            env.get_observation()
    return time.perf_counter() - start


def time_aec(game: str, scripts: list[list[str]]) -> float:
    env = make_multi_agent(aec_id(game))
    start = time.perf_counter()
    for moves in scripts:
        env.reset(seed=0)
        for move in moves:
            env.observe(env.agent_selection)
            env.step(move)
        assert all(env.terminations.values())
    return time.perf_counter() - start


def time_gym(game: str, scripts: list[list[str]]) -> float:
    env = gym.make(
        gym_id(game),
        seat=0,
        opponent="arenagym.benchmarks.perf.textarena_step:ReplayAgent",
        opponent_kwargs={"moves": []},
    )
    replay = env.unwrapped._opponent
    start = time.perf_counter()
    for moves in scripts:
        replay.moves = moves[1::2]
        env.reset(seed=0)
        terminated = False
        for move in moves[0::2]:
            *_, terminated, _truncated, _info = env.step(move)
        assert terminated
    env.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=10, help="recorded games per DFC game")
    parser.add_argument("--repeats", type=int, default=5, help="best of this many timings")
    args = parser.parse_args()
    scripts = {g: [m for s in range(args.games) if (m := record(g, s))] for g in FIXED_TWO_PLAYER}
    totals = {"raw": 0.0, "aec": 0.0, "gym": 0.0}
    print(
        f"{'game':<20}{'moves':>7}{'raw/s':>10}{'AEC/s':>10}{'Gym/s':>10}{'AEC x':>8}{'Gym x':>8}"
    )
    for game, games in scripts.items():
        moves = sum(len(m) for m in games)
        timers = [("raw", time_raw), ("aec", time_aec), ("gym", time_gym)]
        times = {name: float("inf") for name, _ in timers}
        for repeat in range(args.repeats):  # interleaved, in a rotating order; best of repeats
            for name, timer in timers[repeat % 3 :] + timers[: repeat % 3]:
                times[name] = min(times[name], timer(game, games))
        for name in totals:
            totals[name] += times[name]
        print(
            f"{game:<20}{moves:>7}{moves / times['raw']:>10.0f}{moves / times['aec']:>10.0f}"
            f"{moves / times['gym']:>10.0f}{times['aec'] / times['raw']:>8.2f}"
            f"{times['gym'] / times['raw']:>8.2f}"
        )
    print(
        f"{'all':<20}{'':>7}{'':>10}{'':>10}{'':>10}{totals['aec'] / totals['raw']:>8.2f}"
        f"{totals['gym'] / totals['raw']:>8.2f}   (wrapper time / raw time; goal <= 1.10)"
    )


if __name__ == "__main__":
    main()
