"""The PettingZoo AEC env of a TextArena game (``TextArena/<Game>-AEC-v0``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pettingzoo import AECEnv

from arenagym.envs.core.spaces import UnicodeText
from arenagym.envs.textarena.game import GameError, GameSession, MoveResult, import_textarena
from arenagym.envs.textarena.games import GAMES


class TextObservation(str):
    """An observation: a ``str`` that, like a NumPy scalar, states its ``dtype``.

    PettingZoo's ``api_test`` compares ``observation.dtype`` with ``observation_space.dtype``.
    Text observations are Unicode text, whose NumPy dtype is ``np.dtype(str)`` — the dtype that
    :class:`~arenagym.envs.core.spaces.UnicodeText` declares — so every observation carries it.
    Everything else is a plain ``str`` (comparison, hashing, JSON, slicing).

    >>> obs = TextObservation("[GAME] Your move.")
    >>> obs == "[GAME] Your move.", obs.dtype == UnicodeText(8).dtype
    (True, True)
    """

    __slots__ = ()
    dtype: ClassVar[np.dtype[Any]] = np.dtype(str)


@dataclass(frozen=True)
class GameView:
    """What a game-aware agent (a scripted opponent) may read before it acts.

    ``game`` is the unwrapped TextArena env (read it, do not step it); ``seed`` is a number fixed
    by the episode's seed and the seat, for agents that randomise.
    """

    game_name: str
    textarena_id: str
    player_id: int
    game: Any
    seed: int


def offer_view(agent: Any, view: GameView) -> None:
    """Call ``agent.observe_game(view)`` if the agent has that (optional) hook."""
    observe = getattr(agent, "observe_game", None)
    if callable(observe):
        observe(view)


def system_prompt(game_name: str, player: int, num_players: int) -> str:
    """The system prompt of a seat: what the game is and how to answer."""
    seat = f" You are Player {player}." if num_players > 1 else ""
    return (
        f"You are playing {game_name} from TextArena.{seat} The game describes its rules and "
        "the format of a move; reply with exactly one move in that format (usually in square "
        "brackets, e.g. [4]). An invalid move earns one warning; a second one loses the game."
    )


class TextArenaAECEnv(AECEnv):
    r"""A TextArena game as a PettingZoo turn-based (AEC) env.

    ## Description
    One of TextArena's text games (for the 18 DFC games see
    :data:`~arenagym.envs.textarena.games.GAMES`), played seat by seat. Agents are
    ``player_0``, ``player_1`` (one agent for single-player games); ``agent_selection`` is the
    player TextArena says is to move. A fresh TextArena env is built on every reset and seeded
    with the reset seed through a generator of its own, so ``reset(seed=s)`` always gives the
    same game and never touches Python's global ``random``.

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: the move as text, in the game's format
    (e.g. ``"[4]"`` in TicTacToe, ``"[e2e4]"`` in Chess). Anything else is an invalid move.

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`; observations are :class:`TextObservation`
    (a ``str`` with a ``dtype``): the messages TextArena sent that player since its last move,
    one ``[SENDER] text`` line each (on the first move: the rules and the board).

    ## Rewards
    TextArena's, when the game ends: +1 / -1 for the winner / loser, 0 for a draw (single-player
    games: 1 when solved, else the fraction done); 0 before. An invalid move also costs its
    player ``invalid_action_penalty`` (0 by default). Accumulated per the AEC API in
    ``_cumulative_rewards``. After every step each live agent's
    ``infos[agent]["reward_components"]`` sum to ``rewards[agent]``: ``{"outcome": r}``, plus
    ``"invalid_action"`` (minus the penalty) for the player whose move was invalid.

    ## Starting State
    TextArena's starting position for the seed (fixed or random: see the game's DFC group);
    player 0 moves first.

    ## Episode End
    When TextArena ends the game: a win, draw or loss (``infos[a]["stop_reason"]`` is ``won``,
    ``lost``, ``draw`` — or ``solved``/``failed`` alone), or TextArena's invalid-move rule: an
    invalid move earns a warning (``infos[a]["invalid_action"] = True``, the same player moves
    again); ``max_invalid_actions + 1`` in a row lose the game (``stop_reason="invalid_action"``
    for that player, whose last observation says why). A move on which TextArena's own game code
    raises (e.g. ``[e2e2]`` in Chess) is such an invalid move of its player; only a game that
    cannot go on after that ends with ``stop_reason="env_error"`` (and ``infos[a]["error"]``)
    for everyone. ``max_moves`` moves in all truncate the game (``stop_reason="max_turns"``).

    ## Arguments
    * ``game``: the arenagym game name (``"TicTacToe"``) or any TextArena id (``"Nim-v0"``).
    * ``game_kwargs``: keyword arguments for the TextArena env (e.g. ``{"piles": [1, 2]}``).
    * ``max_invalid_actions`` (1): TextArena's error allowance per turn.
    * ``invalid_action_penalty`` (0.0): subtracted from the reward of an invalid move (>= 0).
    * ``max_moves`` (2000), ``max_action_length`` (4096), ``max_observation_length`` (65536),
      ``render_mode`` (``None`` or ``"ansi"``: the whole transcript).

    ## Examples
    >>> from arenagym.envs.core.registration import make_multi_agent
    >>> env = make_multi_agent("TextArena/TicTacToe-AEC-v0")
    >>> env.reset(seed=0)
    >>> env.agent_selection, "Tic Tac Toe" in env.observe("player_0")
    ('player_0', True)
    >>> for move in ["[0]", "[3]", "[1]", "[4]", "[2]"]:
    ...     env.step(move)
    >>> env.terminations, env.infos["player_0"]["stop_reason"], env._cumulative_rewards
    ({'player_0': True, 'player_1': True}, 'won', {'player_0': 1.0, 'player_1': -1.0})
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "textarena_v0",
        "render_modes": ["ansi"],
        "is_parallelizable": False,
    }

    def __init__(
        self,
        game: str,
        game_kwargs: dict[str, Any] | None = None,
        max_invalid_actions: int = 1,
        invalid_action_penalty: float = 0.0,
        max_moves: int = 2000,
        max_action_length: int = 4096,
        max_observation_length: int = 65_536,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        import_textarena()  # a clear ImportError naming the extra when it is missing
        spec = GAMES.get(game)
        self.game_name = game if spec else game.split("-v")[0]
        self.textarena_id = spec.textarena_id if spec else game
        num_players = spec.num_players if spec else _num_players(game)
        if not isinstance(max_invalid_actions, int) or max_invalid_actions < 0:
            raise ValueError(
                f"max_invalid_actions must be an int >= 0, got {max_invalid_actions!r}"
            )
        if (
            isinstance(invalid_action_penalty, bool)
            or not isinstance(invalid_action_penalty, int | float)
            or not invalid_action_penalty >= 0
        ):
            raise ValueError(
                "invalid_action_penalty is subtracted from the reward, so it must be a number "
                f">= 0; got {invalid_action_penalty!r}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be 'ansi' or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.invalid_action_penalty = float(invalid_action_penalty)
        self.max_moves = max_moves
        self.max_action_length = max_action_length
        self.possible_agents = [f"player_{i}" for i in range(num_players)]
        self.agents = []
        text = UnicodeText(max_observation_length)
        actions = UnicodeText(max_action_length)
        self.observation_spaces = {agent: text for agent in self.possible_agents}
        self.action_spaces = {agent: actions for agent in self.possible_agents}
        self._session = GameSession(
            self.textarena_id,
            num_players,
            dict(game_kwargs or {}),
            error_allowance=max_invalid_actions,
            rng=random.Random(),
        )
        self._seeder = random.Random()
        self._seeder_seed: int | None = None  # the last reset seed, put in _seeder when needed
        self._moves = 0
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self._system_prompts = [
            system_prompt(self.game_name, i, num_players) for i in range(num_players)
        ]
        # Observations are built when asked for (observe/last), from the messages each player
        # was sent since its last move (GameSession.pending), and kept until the next step.
        # With render_mode (the transcript needs every message as it comes) or a limit too small
        # to show a message they are collected eagerly instead, as text per agent.
        self._eager = render_mode is not None or max_observation_length < 2
        self._observations: dict[str, str] = {}
        self._transcript: list[str] = []
        self._closed = False

    # ------------------------------------------------------------------------- PettingZoo
    def observation_space(self, agent: str) -> UnicodeText:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> UnicodeText:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        if type(seed) is int:  # seeding a generator is costly: done once it is drawn from
            self._seeder_seed = seed
        elif seed is not None:
            self._seeder.seed(seed)
            self._seeder_seed = None
        elif self._seeder_seed is not None:
            self._seeder.seed(self._seeder_seed)
            self._seeder_seed = None
        game_seed = self._seeder.randrange(2**31) if seed is None else int(seed)
        session = self._session
        session.reset(game_seed)
        self.agents = list(self.possible_agents)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        task_id = f"{self.textarena_id}/seed={game_seed}"
        prompts = self._system_prompts
        self.infos = {
            agent: {"system_prompt": prompts[i], "task_id": task_id, "invalid_action": False}
            for i, agent in enumerate(self.agents)
        }
        if self._eager:
            self._observations = {agent: "" for agent in self.agents}
            self._collect()
        else:
            self._observations = {}
        self._moves = 0
        self._transcript = [f"[game] {self.textarena_id} seed={game_seed}"]
        self.agent_selection = self.possible_agents[int(session.game.state.current_player_id)]
        self._skip_agent_selection = None

    def observe(self, agent: str) -> TextObservation:
        observation = self._observations.get(agent)
        if type(observation) is not TextObservation:
            if observation is None:  # not built yet since the last step (the lazy mode)
                index = self._index.get(agent)
                pending = self._session.pending
                observation = ""
                if index is not None and index < len(pending):
                    observation = "\n".join(pending[index])
                    limit = self.observation_spaces[agent].max_length
                    if len(observation) > limit:  # (as if clipped message by message)
                        observation = "…" + observation[-(limit - 1) :]
            observation = self._observations[agent] = TextObservation(observation)
        return observation

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        self.rewards = rewards = dict.fromkeys(self.agents, 0.0)
        infos = self.infos
        for info in infos.values():
            info.pop("error", None)
            info["invalid_action"] = False
            info["reward_components"] = {"outcome": 0.0}
        session = self._session
        # the agent has acted on what it was shown
        if self._eager:
            self._observations[agent] = ""
        else:
            self._observations = {}
            session.pending[self._index[agent]] = []
        if self.render_mode is not None:
            shown = action if isinstance(action, str) else repr(action)
            self._transcript.append(f"[{agent}] {shown}")
        try:
            result = session.step(action, self.max_action_length)
        except GameError as error:  # TextArena's game broke beyond repair: end it, blame nobody
            if self._eager:
                self._collect()
            for name in self.agents:
                self.terminations[name] = True
                infos[name].update(
                    stop_reason="env_error", error=str(error), reward_components={"outcome": 0.0}
                )
            self._accumulate_rewards()
            return
        self._moves += 1
        if result.invalid and result.done:
            mover = session.pending[self._index[agent]]
            # TextArena tells the loser nothing (at most its own move echoed): say what went wrong
            if not result.reason or result.reason not in "\n".join(mover):
                mover.append(
                    "[GAME] Your invalid move lost the game (too many invalid moves in a row). "
                    f"Reason: {result.reason}"
                )
        if self._eager:
            self._collect()
        if result.invalid:
            infos[agent]["invalid_action"] = True
            infos[agent]["error"] = result.reason
            penalty = -self.invalid_action_penalty or 0.0  # (never -0.0)
            infos[agent]["reward_components"]["invalid_action"] = penalty
            rewards[agent] = penalty
        if result.done:
            self._end_game(agent, result)
        elif self._moves >= self.max_moves:
            for name in self.agents:
                self.truncations[name] = True
                infos[name]["stop_reason"] = "max_turns"
        else:
            self.agent_selection = self.possible_agents[int(session.game.state.current_player_id)]
        cumulative = self._cumulative_rewards  # (AECEnv._accumulate_rewards, inlined)
        for name, reward in rewards.items():
            cumulative[name] += reward

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the moves and everything shown to the players so far."""
        if self.render_mode != "ansi":
            return None
        return "\n".join(self._transcript)

    def close(self) -> None:
        """Drop the game (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._session.close()

    # --------------------------------------------------------------------------- arenagym
    def game_view(self, agent: str) -> GameView:
        """The :class:`GameView` of ``agent``'s seat (for game-aware agents)."""
        player = self.possible_agents.index(agent)
        return GameView(
            self.game_name,
            self.textarena_id,
            player,
            self._session.game,
            (self._session.seed * 7919 + player) % 2**31,
        )

    # ---------------------------------------------------------------------------- helpers
    def _collect(self) -> None:
        for index, agent in enumerate(self.possible_agents):
            text = self._session.take_observation(index)
            if text:
                if self.render_mode is not None:
                    self._transcript.append(f"[to {agent}] {text}")
                previous = self._observations.get(agent, "")
                joined = f"{previous}\n{text}" if previous else text
                limit = self.observation_spaces[agent].max_length
                if len(joined) > limit:
                    joined = "…" + joined[-(limit - 1) :]
                self._observations[agent] = joined

    def _end_game(self, mover: str, result: MoveResult) -> None:
        session = self._session
        single = len(self.possible_agents) == 1
        for index, name in enumerate(self.possible_agents):
            reward = session.reward(index)
            self.rewards[name] = reward
            self.terminations[name] = True
            if result.invalid and name == mover:
                reason = "invalid_action"
            elif single:
                reason = "solved" if reward >= 1.0 else "failed"
            else:
                reason = "won" if reward > 0 else "lost" if reward < 0 else "draw"
            components = self.infos[name]["reward_components"]  # (the penalty of step(), if any)
            components["outcome"] = reward
            self.rewards[name] = float(sum(components.values()))
            self.infos[name].update(stop_reason=reason, game_reason=session.reason)


def _num_players(textarena_id: str) -> int:
    """Players of a TextArena game outside the 18: 1 or 2, by trying a reset."""
    from arenagym.envs.textarena.game import build_game

    game = build_game(textarena_id)
    for players in (2, 1):
        try:
            with _quiet_random():
                game.reset(num_players=players, seed=0)
            return players
        except Exception:  # the game refuses this number of players
            continue
    raise ValueError(f"TextArena game {textarena_id!r} is neither one- nor two-player")


def _quiet_random() -> Any:
    from arenagym.envs.textarena import seeding

    return seeding.using(random.Random(0))
