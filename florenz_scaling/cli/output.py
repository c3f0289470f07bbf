"""What several commands write the same way."""

from __future__ import annotations

from pathlib import Path

from florenz_scaling.files import write_atomic


def write_json_text(path: Path, text: str, say: bool = True) -> None:
    """``text`` (JSON) to ``path`` with the one atomic writer, its folder made; ``say`` prints where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text + "\n")
    if say:
        print(f"wrote {path}")
