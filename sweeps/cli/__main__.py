"""``python -m sweeps.cli``."""

import sys

from sweeps.cli.main import main

sys.exit(main())
