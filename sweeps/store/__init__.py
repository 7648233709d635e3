"""Opening Optuna storages, the keys stored on studies, trials and runs, and ranking trials."""
