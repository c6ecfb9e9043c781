"""RecInter-Market-v0: reward components, stop reasons, invalid actions, and the reward weights it
shares with RecInter-v0 (one definition)."""

from __future__ import annotations

import math

import pytest

from arenagym.envs.recinter.env import DEFAULT_REWARD_WEIGHTS, RecInterEnv, page_reward_components
from arenagym.envs.recinter.market import COMPLETED, make_market
from arenagym.envs.recinter.merchant import DEFAULT_SALES_WEIGHT, RecInterMerchantEnv
from arenagym.envs.recinter.simulator import PageOutcome


def _round(env: object, actions: dict[str, object]) -> tuple[dict, ...]:
    observations, rewards, terminations, truncations, infos = env.step(actions)  # type: ignore[attr-defined]
    for agent, reward in rewards.items():
        components = infos[agent]["reward_components"]
        assert math.isclose(sum(components.values()), reward, abs_tol=1e-12), (agent, components)
    return observations, rewards, terminations, truncations, infos


def test_rewards_are_their_components_and_the_episode_ends_completed() -> None:
    env = make_market(rounds=2, seed_sessions=10)
    env.reset(seed=1)
    actions = {"recommender": "i003, i001", "merchant_0": "none", "merchant_1": "none"}
    _, _, terminations, _, infos = _round(env, actions)
    assert not any(terminations.values()) and all("stop_reason" not in i for i in infos.values())
    assert set(infos["recommender"]["reward_components"]) == set(DEFAULT_REWARD_WEIGHTS)
    assert set(infos["merchant_0"]["reward_components"]) == {"sales", "sentiment"}
    assert not any(info["invalid_action"] for info in infos.values())
    _, _, terminations, truncations, infos = _round(env, actions)
    assert all(terminations.values()) and not any(truncations.values())
    assert {info["stop_reason"] for info in infos.values()} == {COMPLETED}
    env.close()
    env.close()


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("", "no item id"),
        (None, "actions are text"),
        (12, "got int"),
        ("i001, " * 20_000, "over the limit of 65536"),  # too long, even made of good ids
        ("\x00\x1b[31m", "no item id"),
    ],
)
def test_invalid_recommender_actions_are_penalised_and_explained(action: object, says: str) -> None:
    env = make_market(rounds=2, seed_sessions=5, invalid_action_penalty=0.25)
    env.reset(seed=0)
    observations, _, terminations, _, infos = _round(
        env, {"recommender": action, "merchant_0": "none", "merchant_1": "none"}
    )
    info = infos["recommender"]
    assert info["invalid_action"] and says in info["error"]
    assert info["reward_components"]["invalid_action"] == -0.25
    assert observations["recommender"].startswith(f"Invalid action: {info['error']}\n")
    assert not observations["merchant_0"].startswith("Invalid action")
    assert not any(terminations.values())


def test_a_missing_agent_is_an_invalid_action_not_an_error() -> None:
    env = make_market(rounds=2, seed_sessions=5)
    env.reset(seed=0)
    _, _, _, _, infos = _round(env, {"recommender": "i001"})
    for merchant in ("merchant_0", "merchant_1"):
        assert infos[merchant]["invalid_action"] and "no action was given" in infos[merchant]["error"]


def test_the_reward_weights_are_one_definition_shared_with_recinter_v0() -> None:
    outcome = PageOutcome(slate=(1, 2), clicked=1, liked=True, purchased=True)
    assert page_reward_components(outcome, DEFAULT_REWARD_WEIGHTS) == DEFAULT_REWARD_WEIGHTS
    weights = {"purchase": 2.0, "like": 0.0, "click": 0.5}
    assert RecInterEnv(reward_weights=weights).reward_weights == weights
    market = make_market(rounds=1, seed_sessions=10, reward_weights=weights)
    assert market.reward_weights == weights
    market.reset(seed=2)
    *_, infos = _round(
        market, {"recommender": "i001", "merchant_0": "none", "merchant_1": "none"}
    )
    components = infos["recommender"]["reward_components"]
    assert components["like"] == 0.0 and components["purchase"] % 2.0 == 0.0
    with pytest.raises(ValueError, match="reward_weights keys"):
        make_market(reward_weights={"view": 1.0})
    assert RecInterMerchantEnv().sales_weight == make_market().sales_weight == DEFAULT_SALES_WEIGHT


def test_the_system_prompt_states_the_weights() -> None:
    _, info = RecInterEnv(reward_weights={"click": 0.5}).reset(seed=0)
    assert "you earn 1 per purchase, 0.2 per like and 0.5 per click" in info["system_prompt"]
