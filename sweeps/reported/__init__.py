"""The course report's published runs: the registry (``*.toml`` here), reproduction, formats."""
