"""The size registry: analytic P and P_t agree with the real modules; the paper's sizes match the paper."""

from __future__ import annotations

import pytest

from florenz_scaling.spec.sizes import PAPER_SIZES, SIZES, TINY_SIZES, count_params, flops_table

torch = pytest.importorskip("torch")
from florenz_scaling.model.florenz import build_model, count_module_params  # noqa: E402


@pytest.mark.parametrize("name", list(SIZES))
def test_analytic_counts_match_the_module_on_meta(name: str) -> None:
    model = build_model(name, device="meta")
    total, trainable = count_module_params(model)
    counts = count_params(SIZES[name])
    assert total == counts["total"]
    assert trainable == counts["trainable"]


@pytest.mark.parametrize(
    "name,expected_p,expected_pt",
    [
        ("F-0.4B", 0.43e9, 338e6),
        ("F-1.0B", 1.03e9, 677e6),
        ("F-3.5B", 3.48e9, 1.10e9),
        ("F-11.2B", 11.22e9, 2.53e9),
    ],
)
def test_paper_sizes_match_the_paper(name: str, expected_p: float, expected_pt: float) -> None:
    s = SIZES[name]
    assert abs(s.params / expected_p - 1) < 0.03
    assert abs(s.trainable_params / expected_pt - 1) < 0.03


def test_cross_attention_share_of_gemma_sizes() -> None:
    # The reference: cross-attention ≈ 0.30B in F-3.5B and ≈ 1.41B in F-11.2B.
    assert abs(count_params(SIZES["F-3.5B"])["xattn"] / 0.30e9 - 1) < 0.03
    assert abs(count_params(SIZES["F-11.2B"])["xattn"] / 1.41e9 - 1) < 0.03


def test_tiny_ladder_spans_the_cpu_range_and_names_are_honest() -> None:
    florence = [s for s in TINY_SIZES if s.family == "florence"]
    assert len(florence) >= 5
    assert min(s.params for s in florence) < 0.3e6 and max(s.params for s in florence) > 15e6
    for s in TINY_SIZES:
        named = float(s.name.split("-")[1].rstrip("M")) * 1e6
        assert abs(s.params / named - 1) < 0.15, s.name
    assert any(s.family == "gemma" for s in TINY_SIZES)


def test_the_forward_macs_cache_covers_every_registered_size() -> None:
    missing = set(SIZES) - set(flops_table())
    assert not missing, f"run `python -m florenz_scaling.model.flops` after a registry change: {missing}"


def test_a_size_missing_from_the_cache_is_an_error_naming_the_refresh_command(monkeypatch) -> None:
    import florenz_scaling.spec.sizes as sizes

    monkeypatch.setattr(sizes, "flops_table", lambda: {})
    with pytest.raises(KeyError, match=r"python -m florenz_scaling\.model\.flops"):
        _ = SIZES["T-0.2M"].fwd_gmacs


def test_cached_forward_macs_match_a_fresh_measurement() -> None:
    from florenz_scaling.model.flops import measure_fwd_gmacs

    table = flops_table()
    for name in ["T-0.2M", "TG-1.2M", "F-0.4B"]:
        assert measure_fwd_gmacs(SIZES[name]) == pytest.approx(table[name], rel=1e-6)


def test_forward_macs_are_in_the_papers_range() -> None:
    # The reference estimates F ≈ 56 / 151 / 466 / 1462 GMACs with fvcore, which omits attention products.
    for s, paper in zip(PAPER_SIZES, (56, 151, 466, 1462), strict=True):
        assert 0.95 < s.fwd_gmacs / paper < 1.2, s.name
