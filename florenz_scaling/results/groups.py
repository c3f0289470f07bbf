"""The evaluation groups of the paper in their reading order, for every table and figure that lists them."""

from __future__ import annotations

from collections.abc import Iterable

# The paper's order (Fig. 3, Tables 2–3): generalisation first.
GROUP_ORDER = ("UC", "ST", "SC")


def group_order(groups: Iterable[str]) -> list[str]:
    """The distinct groups given, in the paper's order; unknown ones after, alphabetically; "" dropped."""
    present = {g for g in groups if isinstance(g, str) and g}
    return [g for g in GROUP_ORDER if g in present] + sorted(present - set(GROUP_ORDER))
