"""Study files (``recipes/studies/<name>.yaml``): which recipes, sizes, seeds, budgets and analyses.

A study is read into typed dataclasses and checked before anything runs; a bad field raises
``ConfigError`` naming the field (``presets.quick.seeds``), the value and what is allowed.

- ``sizes``: name -> ``{scale: scales/mini}`` (a fragment applied on top of each recipe) or
  ``{recipe_dir: paper/compact}`` (the arm's recipe of the same name under that folder, for the
  paper's GPU scales, whose variants differ per scale).
- ``experiments``: name -> ``{kind: grid, arms: {arm: recipe}}`` (every arm at every size; an arm
  may be ``{recipe: lstm, overrides: [train.batch_size=8]}``: its own settings, applied after the
  size's scale, the study's and the preset's overrides, e.g. an LSTM tuned apart) or
  ``{kind: ablation, ref, new, components}`` (add-one / remove-one arms between two recipes).
- ``presets``: name -> sizes (a list for every experiment, or experiment -> list), seeds, the
  token budget per size (null: the size's own), evaluations per run and extra overrides.
- ``overrides``: ``--set`` strings for every run (research runs: ``train.target_loss=null``, a
  fixed budget and no stop at a target).
- ``executor``: local workers / threads and a ``slurm`` section (submitit parameters).
- ``analyses``: a list of ``{kind: curves|ceg|attribution|scaling|allocation, experiment, ...}``;
  ``paper`` holds the published values shown beside the measured ones (``sources`` cites them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lit_algos.config.recipes import find_recipe, list_recipes, recipes_dirs, resolve_recipe_dict
from lit_algos.errors import ConfigError, LitAlgosError
from lit_algos.sweeps.ablation import COMPONENTS, default_components

EXPERIMENT_KINDS = ("grid", "ablation")
ANALYSIS_KINDS = ("curves", "ceg", "attribution", "scaling", "allocation")
EXECUTORS = ("local", "slurm")


@dataclass(frozen=True)
class Size:
    name: str
    scale: str | None = None  # a scale fragment (recipes/scales/*), applied as overrides
    recipe_dir: str | None = None  # or: the arm's recipe of the same file name under this folder


@dataclass(frozen=True)
class Experiment:
    name: str
    kind: str  # grid | ablation
    arms: dict[str, str] = field(default_factory=dict)  # grid: arm -> recipe
    arm_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)  # grid: arm -> its own --set
    ref: str | None = None  # ablation: the old stack
    new: str | None = None  # ablation: the new stack
    components: tuple[str, ...] = ()  # ablation: empty = every component of the map


CLAIMS = ("verdicts", "directions")  # what a preset's report may claim


@dataclass(frozen=True)
class Tune:
    """A learning-rate sweep per arm, run before the study's own runs (``lit_algos.studies.tuning``):
    every learning rate of the arm (AdamW's, and Muon's for Muon) times each of ``lr_scale``, at
    one size, ``seeds`` seeds each; the scale with the lowest final loss is used at every size."""

    size: str
    lr_scale: tuple[float, ...]
    seeds: int = 1
    experiments: tuple[str, ...] = ()  # grid experiments whose arms are tuned (empty: every grid one)


@dataclass(frozen=True)
class TokensPerParam:
    """Token budgets that grow with model size: each size trains ``ratio`` tokens per
    non-embedding parameter of ``recipe`` at that size (every arm of the size the same tokens)."""

    ratio: float
    recipe: str


@dataclass(frozen=True)
class Preset:
    name: str
    sizes: dict[str, tuple[str, ...]]  # experiment -> size names
    seeds: int
    tokens: dict[str, int | None]  # size -> train.max_tokens (None: the size's own budget)
    evals: int | None = None  # evaluations per run (eval_every_tokens = tokens // evals)
    overrides: tuple[str, ...] = ()
    workers: int | None = None  # local executor defaults for this preset (the CLI's flags win)
    threads: int | None = None
    tune: Tune | None = None
    tokens_per_param: TokensPerParam | None = None  # budgets for the sizes ``tokens`` leaves out
    claims: str = "verdicts"  # "directions": the report says this preset shows directions only


@dataclass(frozen=True)
class Analysis:
    kind: str
    experiment: str
    options: dict[str, Any] = field(default_factory=dict)  # reference, pairs, arm, E, margin, method
    paper: dict[str, Any] = field(default_factory=dict)  # published values, cited in the study's sources


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    sources: tuple[str, ...]
    sizes: dict[str, Size]
    experiments: dict[str, Experiment]
    presets: dict[str, Preset]
    default_preset: str
    overrides: tuple[str, ...]
    analyses: tuple[Analysis, ...]
    executor: dict[str, Any] = field(default_factory=dict)  # workers, threads, slurm: {...}
    path: str = ""

    def preset(self, name: str | None) -> Preset:
        name = name or self.default_preset
        if name not in self.presets:
            raise ConfigError(
                "preset", name, f"Allowed presets of study {self.name!r}: {', '.join(self.presets)}."
            )
        return self.presets[name]


# ---- reading ---------------------------------------------------------------------------------


def studies_dirs() -> list[Path]:
    return [d / "studies" for d in recipes_dirs()]


def list_studies() -> list[str]:
    found = set()
    for d in studies_dirs():
        if d.is_dir():
            found.update(p.stem for p in d.glob("*.yaml"))
    return sorted(found)


def find_study(name: str) -> Path:
    candidates = [Path(name)] + [d / f"{name}.yaml" for d in studies_dirs()]
    for path in candidates:
        if path.is_file():
            return path
    raise LitAlgosError(
        f"Study {name!r} not found: it is neither a YAML file nor a name under recipes/studies/. "
        f"Known studies: {', '.join(list_studies()) or 'none'}."
    )


def load_study(name: str) -> Study:
    """Read and check a study file (a name under recipes/studies/ or a path)."""
    path = find_study(name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as err:
        raise LitAlgosError(f"Study file {path} cannot be read: {err}.") from None
    except yaml.YAMLError as err:
        raise LitAlgosError(f"Study file {path} is not valid YAML: {err}".replace("\n", " ")) from None
    except RecursionError:
        raise LitAlgosError(
            f"Study file {path} nests its mappings or lists too deeply; fix the file."
        ) from None
    try:
        return parse_study(data, default_name=path.stem, path=str(path))
    except ConfigError as err:
        raise err.in_source(f"study {path}") from None


def _mapping(path: str, value: Any, what: str = "a mapping") -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(path, value, f"Expected {what}.")
    return value


def _keys(path: str, value: dict, allowed: tuple[str, ...]) -> None:
    for key in value:
        if key not in allowed:
            raise ConfigError(
                f"{path}.{key}" if path else key,
                value[key],
                f"Unknown key; valid keys here: {', '.join(allowed)}.",
            )


def _str(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(path, value, "Expected a non-empty string.")
    return value


def _strs(path: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(path, value, "Expected a list of strings.")
    return tuple(value)


def _overrides(path: str, value: Any) -> tuple[str, ...]:
    """A list of ``--set`` strings, each 'key.path=value'."""
    overrides = _strs(path, value or [])
    for i, item in enumerate(overrides):
        if "=" not in item:
            raise ConfigError(
                f"{path}[{i}]", item, "Expected an override 'key.path=value', e.g. train.target_loss=null."
            )
    return overrides


def _int(path: str, value: Any, lo: int = 1, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise ConfigError(path, value, f"Expected an integer >= {lo}{' or null' if allow_none else ''}.")
    return value


def _check_recipe(path: str, recipe: str) -> None:
    try:
        find_recipe(recipe)
    except LitAlgosError:
        raise ConfigError(
            path, recipe, f"Allowed: a recipe name; known recipes: {', '.join(list_recipes())}."
        ) from None


def parse_study(data: Any, default_name: str = "study", path: str = "") -> Study:
    data = _mapping("", data, "a mapping at the top level")
    top = ("name", "description", "sources", "sizes", "experiments", "presets", "default_preset", "overrides",
           "analyses", "executor")  # fmt: skip
    _keys("", data, top)
    sizes = {}
    for name, spec in _mapping("sizes", data.get("sizes") or {}).items():
        spec = _mapping(f"sizes.{name}", spec, "a mapping with scale or recipe_dir")
        _keys(f"sizes.{name}", spec, ("scale", "recipe_dir"))
        if ("scale" in spec) == ("recipe_dir" in spec):
            raise ConfigError(
                f"sizes.{name}", spec, "Give exactly one of scale (a scale fragment) or recipe_dir."
            )
        if "scale" in spec:
            _check_recipe(f"sizes.{name}.scale", _str(f"sizes.{name}.scale", spec["scale"]))
        sizes[name] = Size(name, spec.get("scale"), spec.get("recipe_dir"))
    if not sizes:
        raise ConfigError(
            "sizes", data.get("sizes"), "Name at least one size, e.g. {mini: {scale: scales/mini}}."
        )
    experiments = {}
    for name, spec in _mapping("experiments", data.get("experiments") or {}).items():
        experiments[name] = _experiment(f"experiments.{name}", name, spec, sizes)
    if not experiments:
        raise ConfigError("experiments", data.get("experiments"), "Name at least one experiment.")
    presets = {}
    for name, spec in _mapping("presets", data.get("presets") or {}).items():
        presets[name] = _preset(f"presets.{name}", name, spec, sizes, experiments)
    if not presets:
        raise ConfigError("presets", data.get("presets"), "Name at least one preset (e.g. quick and full).")
    default = data.get("default_preset", "full" if "full" in presets else next(iter(presets)))
    if default not in presets:
        raise ConfigError("default_preset", default, f"Allowed: {', '.join(presets)}.")
    analyses = []
    raw = data.get("analyses") or []
    if not isinstance(raw, list):
        raise ConfigError("analyses", raw, "Expected a list of {kind, experiment, ...} mappings.")
    for i, spec in enumerate(raw):
        analyses.append(_analysis(f"analyses[{i}]", spec, experiments))
    executor = _mapping("executor", data.get("executor") or {})
    _keys("executor", executor, ("workers", "threads", "slurm"))
    if "workers" in executor:
        _int("executor.workers", executor["workers"])
    if "threads" in executor:
        _int("executor.threads", executor["threads"], allow_none=True)
    _mapping("executor.slurm", executor.get("slurm") or {})
    overrides = _overrides("overrides", data.get("overrides"))
    return Study(
        name=_str("name", data.get("name", default_name)),
        description=str(data.get("description", "")),
        sources=_strs("sources", data.get("sources") or []),
        sizes=sizes,
        experiments=experiments,
        presets=presets,
        default_preset=default,
        overrides=overrides,
        analyses=tuple(analyses),
        executor=executor,
        path=path,
    )


def _arm(path: str, value: Any) -> tuple[str, tuple[str, ...]]:
    """A grid arm: a recipe name, or ``{recipe, overrides}``."""
    if not isinstance(value, dict):
        return _str(path, value), ()
    _keys(path, value, ("recipe", "overrides"))
    recipe = _str(f"{path}.recipe", value.get("recipe"))
    return recipe, _overrides(f"{path}.overrides", value.get("overrides"))


def _experiment(path: str, name: str, spec: Any, sizes: dict) -> Experiment:
    spec = _mapping(path, spec)
    kind = spec.get("kind", "grid")
    if kind not in EXPERIMENT_KINDS:
        raise ConfigError(f"{path}.kind", kind, f"Allowed: {', '.join(EXPERIMENT_KINDS)}.")
    if kind == "grid":
        _keys(path, spec, ("kind", "arms"))
        arms = _mapping(f"{path}.arms", spec.get("arms"), "a mapping arm -> recipe")
        if not arms:
            raise ConfigError(f"{path}.arms", arms, "Name at least one arm (arm: recipe).")
        recipes, arm_overrides = {}, {}
        for arm, value in arms.items():
            recipe, overrides = _arm(f"{path}.arms.{arm}", value)
            if not any(s.recipe_dir for s in sizes.values()) or "/" not in recipe:
                _check_recipe(f"{path}.arms.{arm}", recipe)
            recipes[arm] = recipe
            if overrides:
                arm_overrides[arm] = overrides
        return Experiment(name, kind, arms=recipes, arm_overrides=arm_overrides)
    _keys(path, spec, ("kind", "ref", "new", "components"))
    ref, new = _str(f"{path}.ref", spec.get("ref")), _str(f"{path}.new", spec.get("new"))
    _check_recipe(f"{path}.ref", ref)
    _check_recipe(f"{path}.new", new)
    components = _strs(f"{path}.components", spec.get("components") or [])
    for i, comp in enumerate(components):
        if comp not in COMPONENTS:
            raise ConfigError(
                f"{path}.components[{i}]", comp, f"Allowed components: {', '.join(COMPONENTS)}."
            )
    return Experiment(name, kind, ref=ref, new=new, components=components)


def _preset(path: str, name: str, spec: Any, sizes: dict, experiments: dict) -> Preset:
    spec = _mapping(path, spec)
    _keys(path, spec, ("sizes", "seeds", "tokens", "evals", "overrides", "workers", "threads", "tune",
                       "tokens_per_param", "claims"))  # fmt: skip
    raw = spec.get("sizes")
    if isinstance(raw, (list, str)):
        raw = {exp: raw for exp in experiments}
    raw = _mapping(f"{path}.sizes", raw, "a list of size names, or experiment -> list of size names")
    chosen = {}
    for exp, names in raw.items():
        if exp not in experiments:
            raise ConfigError(
                f"{path}.sizes.{exp}", names, f"Not an experiment. Allowed: {', '.join(experiments)}."
            )
        names = _strs(f"{path}.sizes.{exp}", names)
        for i, size in enumerate(names):
            if size not in sizes:
                raise ConfigError(
                    f"{path}.sizes.{exp}[{i}]",
                    size,
                    f"Not a size of this study. Allowed: {', '.join(sizes)}.",
                )
        chosen[exp] = names
    missing = [e for e in experiments if e not in chosen]
    if missing:
        raise ConfigError(
            f"{path}.sizes", raw, f"Give sizes for every experiment; missing: {', '.join(missing)}."
        )
    tokens = {}
    for size, value in _mapping(f"{path}.tokens", spec.get("tokens") or {}).items():
        if size not in sizes:
            raise ConfigError(
                f"{path}.tokens.{size}", value, f"Not a size of this study. Allowed: {', '.join(sizes)}."
            )
        tokens[size] = _int(f"{path}.tokens.{size}", value, lo=1, allow_none=True)
    overrides = _overrides(f"{path}.overrides", spec.get("overrides"))
    return Preset(
        name=name,
        sizes=chosen,
        seeds=_int(f"{path}.seeds", spec.get("seeds", 1)),
        tokens=tokens,
        evals=_int(f"{path}.evals", spec.get("evals"), lo=2, allow_none=True),
        overrides=overrides,
        workers=_int(f"{path}.workers", spec.get("workers"), allow_none=True),
        threads=_int(f"{path}.threads", spec.get("threads"), allow_none=True),
        tune=_tune(f"{path}.tune", spec["tune"], sizes, experiments)
        if spec.get("tune") is not None
        else None,
        tokens_per_param=_per_param(f"{path}.tokens_per_param", spec.get("tokens_per_param")),
        claims=_choice(f"{path}.claims", spec.get("claims", "verdicts"), CLAIMS),
    )


def _choice(path: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(path, value, f"Allowed: {', '.join(allowed)}.")
    return value


def _positive(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigError(path, value, "Expected a finite number > 0.")
    return float(value)


def _tune(path: str, spec: Any, sizes: dict, experiments: dict) -> Tune:
    spec = _mapping(path, spec)
    _keys(path, spec, ("size", "lr_scale", "seeds", "experiments"))
    size = _str(f"{path}.size", spec.get("size"))
    if size not in sizes:
        raise ConfigError(f"{path}.size", size, f"Not a size of this study. Allowed: {', '.join(sizes)}.")
    raw = spec.get("lr_scale")
    if not isinstance(raw, list) or len(raw) < 2:
        raise ConfigError(
            f"{path}.lr_scale", raw, "Expected a list of at least two multipliers, e.g. [0.5, 1, 2]."
        )
    scales = tuple(_positive(f"{path}.lr_scale[{i}]", v) for i, v in enumerate(raw))
    if 1.0 not in scales:
        raise ConfigError(
            f"{path}.lr_scale", raw, "Include 1 (the recipe's own learning rate) among the multipliers."
        )
    grids = [name for name, e in experiments.items() if e.kind == "grid"]
    tuned = _strs(f"{path}.experiments", spec.get("experiments") or grids)
    for i, name in enumerate(tuned):
        if name not in grids:
            raise ConfigError(
                f"{path}.experiments[{i}]", name, f"Allowed: grid experiments {', '.join(grids)}."
            )
    return Tune(size, scales, _int(f"{path}.seeds", spec.get("seeds", 1)), tuple(tuned))


def _per_param(path: str, spec: Any) -> TokensPerParam | None:
    if spec is None:
        return None
    spec = _mapping(path, spec, "a mapping {ratio, recipe}")
    _keys(path, spec, ("ratio", "recipe"))
    recipe = _str(f"{path}.recipe", spec.get("recipe"))
    _check_recipe(f"{path}.recipe", recipe)
    return TokensPerParam(_positive(f"{path}.ratio", spec.get("ratio")), recipe)


def _analysis(path: str, spec: Any, experiments: dict) -> Analysis:
    spec = dict(_mapping(path, spec))
    kind = spec.pop("kind", None)
    if kind not in ANALYSIS_KINDS:
        raise ConfigError(f"{path}.kind", kind, f"Allowed: {', '.join(ANALYSIS_KINDS)}.")
    exp_name = spec.pop("experiment", None)
    if exp_name not in experiments:
        raise ConfigError(f"{path}.experiment", exp_name, f"Allowed: {', '.join(experiments)}.")
    exp = experiments[exp_name]
    arms = arm_names(exp)
    paper = _mapping(f"{path}.paper", spec.pop("paper", None) or {})
    allowed = {
        "curves": (),
        "ceg": ("reference", "method", "margin"),
        "attribution": (),
        "scaling": ("pairs", "E", "margin", "points"),
        "allocation": ("arm",),
    }[kind]
    _keys(path, spec, (*allowed, "kind", "experiment", "paper"))
    if kind == "attribution" and exp.kind != "ablation":
        raise ConfigError(f"{path}.experiment", exp_name, "Attribution needs an experiment of kind ablation.")
    for key in ("reference", "arm"):
        if key in spec and spec[key] not in arms:
            raise ConfigError(f"{path}.{key}", spec[key], f"Allowed arms of {exp_name}: {', '.join(arms)}.")
    if kind == "ceg" and "reference" not in spec:
        raise ConfigError(f"{path}.reference", None, f"Name the reference arm. Allowed: {', '.join(arms)}.")
    if kind == "ceg" and spec.get("method", "interp") not in ("interp", "paper"):
        raise ConfigError(f"{path}.method", spec["method"], "Allowed: interp, paper.")
    if kind == "allocation" and "arm" not in spec:
        raise ConfigError(f"{path}.arm", None, f"Name the arm to fit. Allowed: {', '.join(arms)}.")
    for i, pair in enumerate(spec.get("pairs") or []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in arms for p in pair)):
            raise ConfigError(
                f"{path}.pairs[{i}]", pair, f"Expected [ref, new] with arms of {exp_name}: {', '.join(arms)}."
            )
    if kind == "scaling" and not spec.get("pairs"):
        raise ConfigError(f"{path}.pairs", spec.get("pairs"), "Give at least one [ref, new] pair of arms.")
    if kind == "scaling" and spec.get("points", "final") not in ("final", "frontier"):
        raise ConfigError(
            f"{path}.points",
            spec["points"],
            "Allowed: final (each run's last evaluation), frontier (the lowest loss reached by any "
            "evaluation of any size at each compute).",
        )
    if spec.get("E") is not None and not isinstance(spec["E"], (int, float)):
        raise ConfigError(f"{path}.E", spec["E"], "Expected a number (the fixed irreducible loss) or null.")
    return Analysis(kind, exp_name, options=spec, paper=paper)


def ablation_components(exp: Experiment) -> list[str]:
    """The experiment's components, or the default list (every component, ``moe`` in place of
    ``mlp`` when the new recipe's feed-forward is an MoE)."""
    if exp.components:
        return list(exp.components)

    return default_components(resolve_recipe_dict(exp.new))


def arm_names(exp: Experiment) -> list[str]:
    """The arms of an experiment: a grid's names; an ablation's ref, new, ref+c and new-c."""
    if exp.kind == "grid":
        return list(exp.arms)
    comps = ablation_components(exp)
    return [exp.ref, exp.new, *(f"{exp.ref}+{c}" for c in comps), *(f"{exp.new}-{c}" for c in comps)]


def study_dir(study: Study, preset: Preset, runs_dir: Path) -> Path:
    """Where the report goes: <runs dir>/studies/<name> for the default preset, else <name>-<preset>."""
    suffix = "" if preset.name == study.default_preset else f"-{preset.name}"
    return Path(runs_dir) / "studies" / f"{study.name}{suffix}"


__all__ = ["Study", "Preset", "Experiment", "Size", "Analysis", "load_study", "parse_study", "list_studies",
           "study_dir", "arm_names"]  # fmt: skip
