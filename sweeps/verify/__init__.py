"""Re-train and compare with repeated seeds: compare variants, confirm the best, reproduce a run."""
