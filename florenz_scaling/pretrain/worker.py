"""``python -m florenz_scaling.pretrain.worker JOB_JSON``: one build of ``build._build_parallel``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from florenz_scaling.pretrain.build import _from_json, build_component


def main(argv: list[str]) -> int:
    """Build the component the JSON job names (see ``build._build_parallel``)."""
    job = json.loads(argv[0])
    build_component(
        _from_json(job["component"]),
        job["size"],
        Path(job["cache"]),
        Path(job["data_dir"]),
        job["heldout"],
        job["threads"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
