"""``python -m florenz_scaling.cli`` is the ``florenz-scaling`` console script."""

import sys

from florenz_scaling.cli import main

sys.exit(main())
