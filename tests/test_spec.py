"""A wrong sweep spec fails at load, before anything runs, with a message naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from florenz_scaling.cli import main
from florenz_scaling.spec import SpecError, TrainSpec, load_sweep

DEMO = Path(__file__).resolve().parents[1] / "sweeps" / "demo.yaml"


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def base() -> dict:
    return yaml.safe_load(DEMO.read_text())


# (description, mutation of the demo spec or an override list, the field the error must name)
BAD = [
    ("unknown top-level key", {"sizez": ["T-0.2M"]}, "sizez"),
    ("unknown nested key", {"train": {"lrr": 1e-3}}, "train.lrr"),
    ("wrong type", {"train": {"micro_batch": "eight"}}, "train.micro_batch"),
    ("bool given as int", {"data": {"decoder_prefix": 1}}, "data.decoder_prefix"),
    ("unknown size", {"sizes": ["T-0.2M", "F-99B"]}, "sizes[1]"),
    ("batch not divisible", {"train": {"micro_batch": 5}}, "grid.global_batch"),
    ("world size breaks divisibility", {"train": {"world_size": 3}}, "grid.global_batch"),
    (
        "held-out language not in dataset",
        {
            "data": {
                "languages": ["en", "de", "fr", "es", "ru"],
                "translation_languages": ["de", "fr", "es", "ru"],
            }
        },
        "data.groups.UC[1]",
    ),
    ("held-out task unknown", {"data": {"groups": {"UC": [["describe", "es"]]}}}, "data.groups.UC[0]"),
    (
        "caption language outside the list",
        {"data": {"languages": ["en", "fr", "es", "zh", "ru", "de"], "caption_languages": ["en", "it"]}},
        "data.caption_languages[1]",
    ),
    ("bad ZeRO stage", {"train": {"zero_stage": 4}}, "train.zero_stage"),
    ("bad precision literal", {"train": {"precision": "fp8"}}, "train.precision"),
    ("grid and budget both", {"budget": {"compute_gmacs": [10.0], "global_batch": 16}}, "budget"),
    (
        "steps and seen samples both",
        {"grid": {"steps": [10], "seen_samples": [160], "global_batch": 16}},
        "grid.steps",
    ),
    ("negative learning rate", {"train": {"lr": -1.0}}, "train.lr"),
    ("image size not a multiple of 32", {"data": {"image_size": 50}}, "data.image_size"),
    ("vocabulary too large for tiny sizes", {"data": {"vocab_size": 4096}}, "data.vocab_size"),
    (
        "unknown resource field per size",
        {"launch": {"per_size": {"T-0.2M": {"gpus": 2}}}},
        "launch.per_size.T-0.2M.gpus",
    ),
    ("utilisation above 1", {"cost": {"utilisation": 1.5}}, "cost.utilisation"),
    ("webdataset without a path", {"data": {"kind": "webdataset"}}, "data.path"),
    ("unknown fit law", {"fit": {"laws": ["compute", "kaplan"]}}, "fit.laws[1]"),
    (
        "Gemma checkpoint for a BART size",
        {"pretrained": {"T-0.2M": {"gemma": "/models/gemma-2-2b"}}},
        "pretrained.T-0.2M.gemma",
    ),
    (
        "checkpoint for an unknown size",
        {"pretrained": {"F-9B": {"florence": "/models/florence-2"}}},
        "pretrained.F-9B",
    ),
    (
        "misspelt checkpoint kind",
        {"pretrained": {"T-0.2M": {"florance": "/models/florence-2"}}},
        "pretrained.T-0.2M.florance",
    ),
    ("infinite learning rate", {"train": {"lr": float("inf")}}, "train.lr"),
    ("NaN learning rate", {"train": {"lr": float("nan")}}, "train.lr"),
    (
        "newline in an sbatch option name",
        {"launch": {"resources": {"additional": {"qos\nsrun rm": "x"}}}},
        "launch.resources.additional.qos\nsrun rm",
    ),
    (
        "upper-case sbatch option name",
        {"launch": {"resources": {"additional": {"QOS": "high"}}}},
        "launch.resources.additional.QOS",
    ),
    (
        "newline in an sbatch option value",
        {"launch": {"resources": {"additional": {"qos": "high\ntouch x"}}}},
        "launch.resources.additional.qos",
    ),
    (
        "newline in the partition",
        {"launch": {"resources": {"partition": "debug\n#SBATCH --time=0"}}},
        "launch.resources.partition",
    ),
    ("tab in the account", {"launch": {"resources": {"account": "lab\tx"}}}, "launch.resources.account"),
    (
        "newline in a per-size constraint",
        {"launch": {"per_size": {"T-0.2M": {"constraint": "a\nb"}}}},
        "launch.per_size.T-0.2M.constraint",
    ),
    ("group name that is a path", {"data": {"groups": {"a/b": [["caption", "en"]]}}}, "data.groups.a/b"),
]


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return out


@pytest.mark.parametrize("desc,change,field", BAD, ids=[b[0] for b in BAD])
def test_bad_spec_names_the_field(tmp_path: Path, desc: str, change: dict, field: str) -> None:
    path = write(tmp_path, merge(base(), change))
    with pytest.raises(SpecError) as err:
        load_sweep(path)
    assert err.value.field_path == field, str(err.value)
    assert field in str(err.value)


def test_duplicate_keys_are_refused_with_their_line(tmp_path: Path) -> None:
    text = DEMO.read_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("lr:"))
    twice = "\n".join(
        lines[: at + 1] + [lines[at].replace(lines[at].split(":")[1], " 0.5")] + lines[at + 1 :]
    )
    (tmp_path / "two_lr.yaml").write_text(twice)
    with pytest.raises(SpecError, match=rf"duplicate key on line {at + 2}") as err:
        load_sweep(tmp_path / "two_lr.yaml")
    assert err.value.field_path == "lr"
    grid = text[text.index("grid:") :].split("\n\n")[0].split("\n")
    grid_block = "\n".join(line for line in grid if line.startswith(("grid:", " ")))
    (tmp_path / "two_grids.yaml").write_text(text + "\n" + grid_block + "\n")
    with pytest.raises(SpecError, match="duplicate key") as err:
        load_sweep(tmp_path / "two_grids.yaml")
    assert err.value.field_path == "grid"


def test_non_finite_overrides_are_refused() -> None:
    for value in ("1e400", ".inf", "-.inf", ".nan"):
        with pytest.raises(SpecError, match="finite") as err:
            load_sweep(DEMO, [f"train.lr={value}"])
        assert err.value.field_path == "train.lr"


def test_errors_suggest_a_fix(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="did you mean 'lr'"):
        load_sweep(write(tmp_path, merge(base(), {"train": {"lrr": 1e-3}})))
    with pytest.raises(SpecError, match="fix: change the global batch"):
        load_sweep(DEMO, ["train.micro_batch=5"])


def test_dotted_overrides_apply_and_are_typed() -> None:
    spec = load_sweep(DEMO, ["train.lr=2e-4", "grid.steps=[5, 10]", "data.caption_languages=[en]"])
    assert spec.train.lr == 2e-4 and isinstance(spec.train.lr, float)
    assert spec.grid.steps == (5, 10)
    assert spec.data.pairs()[0] == ("caption", "en") and len(spec.data.pairs()) == 6


def test_override_typo_is_an_unknown_key() -> None:
    with pytest.raises(SpecError) as err:
        load_sweep(DEMO, ["trian.lr=1"])
    assert err.value.field_path == "trian"


def test_specs_are_frozen() -> None:
    spec = load_sweep(DEMO)
    with pytest.raises(AttributeError):
        spec.train.lr = 1.0  # type: ignore[misc]
    assert TrainSpec().lr == 1e-4  # the paper's pre-training default


def test_cli_reports_bad_spec_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["plan", str(DEMO), "-o", "train.zero_stage=7", "--out", str(out)])
    assert code == 2
    assert "train.zero_stage" in capsys.readouterr().err
    assert not out.exists(), "nothing may be written for a bad spec"


@pytest.mark.parametrize("sweep", sorted((DEMO.parent).glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_sweeps_load(sweep: Path) -> None:
    assert load_sweep(sweep).name
