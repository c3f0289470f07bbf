"""Laws a sweep writes out in ``fit.laws``: checked at spec load (naming the field and the law), then fitted,
plotted and reported by ``run`` like the built-ins."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from plot_sweeps import LAW, make_sweep

from florenz_scaling.cli.run import _fit, _plot, _report
from florenz_scaling.files import SweepDir
from florenz_scaling.spec import SpecError, load_sweep

# log L = log A − alpha·log N − beta·log D: the synthetic sweep's own size-data law, written out.
POWER = {
    "expr": "A * N**(-alpha) * D**(-beta)",
    "params": {
        "A": {"bounds": [1e-3, 1e6], "start": [10, 100], "scale": "log"},
        "alpha": {"bounds": [0, 2], "start": [0.05, 0.2], "role": "exponent"},
        "beta": {"bounds": [0, 2], "start": [0.05, 0.2], "role": "exponent"},
    },
    "response": "log",
}


def spec_file(tmp_path: Path, laws: object) -> Path:
    doc = {
        "name": "written-laws",
        "sizes": ["T-0.5M", "T-1.3M", "T-3.7M", "T-10M"],
        "grid": {"steps": [100, 200, 400, 800], "global_batch": 32},
        "fit": {"laws": laws, "bootstrap": 200},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_written_law_loads_and_names_are_still_checked(tmp_path: Path) -> None:
    spec = load_sweep(spec_file(tmp_path, {"compute": None, "power": POWER}))
    assert spec.fit.law_names == ("compute", "power")
    assert spec.fit.written_laws == {"power": POWER}
    assert load_sweep(spec_file(tmp_path, ["compute", "chinchilla"])).fit.written_laws == {}
    with pytest.raises(SpecError, match=r"fit\.laws\.nope.*unknown law 'nope'"):
        load_sweep(spec_file(tmp_path, {"nope": None}))


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"expr": "A * N.__class__"}, "fit.laws.power.expr", "law 'power'.*Attribute 'N.__class__'"),
        ({"expr": "__import__('os')"}, "fit.laws.power.expr", "law 'power'.*call"),
        ({"expr": "open('x') * N"}, "fit.laws.power.expr", "law 'power'.*call .open"),
        ({"expr": "A * N**(-gamma)"}, "fit.laws.power.expr", "law 'power'.*unknown name 'gamma'"),
        ({"expr": "A * U**(-alpha)"}, "fit.laws.power.expr", "unknown name 'U'"),
        ({"expr": "[x for x in N]"}, "fit.laws.power.expr", "law 'power'.*ListComp"),
        ({"expr": "lambda: N"}, "fit.laws.power.expr", "law 'power'.*Lambda"),
        ({"expr": "A * N**(-alpha"}, "fit.laws.power.expr", "not an expression"),
        ({"response": "log2"}, "fit.laws.power.response", "log2"),
        ({"inputs": ["N", "U"]}, "fit.laws.power.inputs", "'U' is not a column"),
        ({"shared": ["gamma"]}, "fit.laws.power.shared", "'gamma' is not a parameter"),
        ({"colour": 1}, "fit.laws.power.colour", "unknown key"),
        ({"params": {"A": {"bounds": [1, 0]}}}, "fit.laws.power.params.A.bounds", "empty"),
        ({"params": {"A": {"bounds": [0, 1], "scale": "log"}}}, "fit.laws.power.params.A.bounds", "positive"),
        ({"params": {"A": {"bounds": [0, 1], "start": [2]}}}, "fit.laws.power.params.A.start[0]", "outside"),
        ({"params": {"A": {"bounds": [0, "x"]}}}, "fit.laws.power.params.A.bounds[1]", "not a number"),
        ({"params": {"exp": {"bounds": [0, 1]}}}, "fit.laws.power.params.exp", "cannot name a parameter"),
    ],
)
def test_a_bad_written_law_is_refused_at_load(tmp_path: Path, change: dict, field: str, text: str) -> None:
    law = {**POWER, **change}
    with pytest.raises(SpecError, match=text) as e:
        load_sweep(spec_file(tmp_path, {"power": law}))
    assert e.value.field_path == field


def test_written_law_may_not_take_a_built_in_name(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="built-in law"):
        load_sweep(spec_file(tmp_path, {"chinchilla": POWER}))


def test_run_fits_plots_and_reports_a_written_law(tmp_path: Path) -> None:
    root = make_sweep(tmp_path / "sweep", fits=False)
    spec = load_sweep(spec_file(tmp_path, {"compute": None, "power": POWER}))
    sd, say = SweepDir(root), io.StringIO()

    def log(msg: str) -> None:
        say.write(msg + "\n")

    _fit(spec, sd, log)
    _plot(sd, log)
    report = _report(sd, log)
    fits = {p.name for p in sd.fits.glob("*.json")}
    assert {"power-SC.json", "power-UC.json", "power-ST.json", "compute-SC.json"} <= fits
    for group, (_, b1, b2) in LAW.items():
        fit = json.loads((sd.fits / f"power-{group}.json").read_text())
        assert fit["law"] == "power" and fit["extras"]["law_definition"]["power"]["expr"] == POWER["expr"]
        # The synthetic sweep's exponents (of params and seen samples) are recovered: each within one width
        # of its 95% interval (about 4 standard errors; covering all 6 at once would hold 0.95^6 = 74%).
        for name, true in (("alpha", -b1), ("beta", -b2)):
            lo, hi = fit["ci"][name]
            assert lo <= fit["params"][name] <= hi
            assert abs(fit["params"][name] - true) <= hi - lo, (group, name, fit["params"][name], lo, hi)
    html = report.read_text()
    assert "<h3>power</h3>" in html and "power: " in html  # its own fits table, and its verdict per group
