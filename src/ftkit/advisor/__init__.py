"""`ftkit advise`: before any compute is spent, should this data be fine-tuned, with which model
and strategy, how long will it take and will it fit in memory?

For outer loops (`ftkit auto`):

    profiles = profile_strategies(cfg, ["full", "lora"])       # measured on this machine
    estimate_fit(profiles["full"], epochs=2, n_train=1000)     # seconds by part, seconds/step,
                                                              # eval seconds per example
    recommend(facts, rows, budget=1800)                       # the decision and its reasons
    advise_run(cfg, budget=1800)                              # all of it (advice.json's content)
"""
from ftkit.advisor.estimate import epochs_within, estimate_fit, seconds_per_epoch, trials_within
from ftkit.advisor.recommend import recommend
from ftkit.advisor.run import advise_run, parse_budget, profile_strategies, strategy_row

__all__ = ["advise_run", "profile_strategies", "estimate_fit", "seconds_per_epoch", "epochs_within",
           "trials_within", "recommend", "strategy_row", "parse_budget"]
