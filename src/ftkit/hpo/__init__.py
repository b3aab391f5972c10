"""Hyperparameter tuning (`ftkit tune`): an outer loop over the one `fit`.

    space.py         the search space (defaults per task/strategy, or `tune: space:` in the YAML)
    objective.py     the local executor: an Optuna study stored in OUT/study.db, pruning hook
    ray_executor.py  the same trials on a Ray cluster (Ray Tune + OptunaSearch + ASHA)
    report.py        trials.csv, trials.png, parameter importances, the summary table
    tune.py          the flow: study -> trials (time budget) -> refit the best -> tune.json
"""
