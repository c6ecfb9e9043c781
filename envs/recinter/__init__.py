"""RecInter: a recommender marketplace where simulated users' actions reshape items in real time.

After RecInter (an agent-based simulation platform for recommender systems with interactive
feedback), with RecSim's seeded procedural world and Agent4Rec's profiled users. One simulator
(:mod:`~arenagym.envs.recinter.simulator`) serves four views: the recommender (``RecInter-v0``),
a merchant answering reviews (``RecInterMerchant-v0``), a user to be imitated
(``RecInterUser-v0``) and the whole market as a PettingZoo ``ParallelEnv``
(``RecInter-Market-v0``).
"""

from arenagym.envs.core.registration import register_env

register_env(
    "RecInter-v0",
    "arenagym.envs.recinter.env:RecInterEnv",
    "Recommend slates to simulated shoppers whose clicks, purchases and reviews reshape the items",
)
register_env(
    "RecInterMerchant-v0",
    "arenagym.envs.recinter.merchant:RecInterMerchantEnv",
    "Play a RecInter merchant replying to new reviews; rewarded by its sales and sentiment",
)
register_env(
    "RecInterUser-v0",
    "arenagym.envs.recinter.user:RecInterUserEnv",
    "Play a RecInter shopper from their profile; scored against the hidden user model's choices",
)
register_env(
    "RecInter-Market-v0",
    "arenagym.envs.recinter.market:make_market",
    "RecInter marketplace as a PettingZoo ParallelEnv: the recommender and merchants, one round a step",
    multi_agent=True,
)
