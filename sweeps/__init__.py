"""Everything Optuna: search spaces as data, studies, pruning, storages and the CLI.

The only layer that wires ``mnist_models`` (training) and ``tracking`` (MLflow) together. Its
sub-packages, from the top down (each imports only those below it; import-linter checks):

- ``cli``: one module per command and the table of commands.
- ``verify`` and ``reported``: re-train and compare with repeated seeds (compare, confirm,
  reproduce a logged run) and the course report's published runs (registry, reproduction,
  printed-figure formats; the entries are ``reported/*.toml``).
- ``engine``: running a study (session, objective, trial runners, budget, pruning, samplers,
  recovery, workers, signals, progress).
- ``results``: what a study shows (the report on its MLflow parent run, the HTML page, the
  best configuration, the list of studies).
- ``store``: opening Optuna storages, the keys stored on studies and trials, ranking trials.
- ``spec``: the search space and the sweep file (the packaged ``*.toml`` files are beside this).
- ``console``: the one console every layer prints through.
"""
