"""What a study shows: its report on the MLflow parent run, the HTML page, the best config."""
