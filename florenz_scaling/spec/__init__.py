"""What to run: the sweep schema, its loader and the model-size registry (stdlib, yaml and numpy-free).

``load`` turns YAML and dotted overrides into frozen dataclasses with errors that name the field;
``sections`` and ``sweep`` are the schema; ``sizes`` is the size registry with analytic P/P_t and cached F.
"""

from florenz_scaling.spec.load import (
    SpecError,
    apply_overrides,
    dump_yaml,
    from_dict,
    parse_override,
    to_plain,
)
from florenz_scaling.spec.resources import Profile
from florenz_scaling.spec.sections import (
    EXECUTORS,
    LANGUAGES,
    LAWS,
    TASKS,
    BudgetSpec,
    CostSpec,
    DataSpec,
    ExtraRun,
    FitSpec,
    GenerateSpec,
    GridSpec,
    LaunchSpec,
    Pair,
    Pretrained,
    Resources,
    TrainSpec,
    WandbSpec,
)
from florenz_scaling.spec.sweep import RunSpec, SweepSpec, load_run, load_sweep

__all__ = [
    "EXECUTORS",
    "LANGUAGES",
    "LAWS",
    "TASKS",
    "BudgetSpec",
    "CostSpec",
    "DataSpec",
    "ExtraRun",
    "FitSpec",
    "GenerateSpec",
    "GridSpec",
    "LaunchSpec",
    "Pair",
    "Pretrained",
    "Profile",
    "Resources",
    "RunSpec",
    "SpecError",
    "SweepSpec",
    "TrainSpec",
    "WandbSpec",
    "apply_overrides",
    "dump_yaml",
    "from_dict",
    "load_run",
    "load_sweep",
    "parse_override",
    "to_plain",
]
