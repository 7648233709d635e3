"""Running a study: session, objective, trial runners, budget, pruning, samplers, workers."""
