"""Run folders: the contract every later feature (reports, tuning, comparisons) reads."""
