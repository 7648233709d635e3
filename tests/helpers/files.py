"""A minimal valid sweep file, which the sweep-file and bad-input tests vary one key at a time."""

GOOD_SWEEP_TOML = """
[sweep]
trials = 3
[fixed]
epochs = 2
[space.lr]
type = "float"
low = 0.001
high = 0.005
log = true
"""
