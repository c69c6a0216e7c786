"""Check a whole dataset contract offline, before any run: every problem with its key and its fix.

Loading a contract (:func:`pipelines.contract.load_contract`) checks its shape; this goes further and
checks what the steps will need: gate metrics the evaluate step computes for the task, an estimator
and hyperparameters that fit the task, features that exist and have usable types, split shares that
leave rows to train on, a target and keys the data can honour, and behavioural checks on features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pipelines.errors import PipelineError

CLASSIFICATION_METRICS = frozenset({"auc", "f1", "precision", "recall", "log_loss", "calibration_error"})
"""Metrics :func:`pipelines.evaluate.classification_metrics` reports (a test keeps the two in step)."""
REGRESSION_METRICS = frozenset({"rmse", "mae", "r2"})
"""Metrics :func:`pipelines.evaluate.regression_metrics` reports."""
NUMERIC_TYPES = frozenset({"integer", "float", "boolean"})


@dataclass(frozen=True)
class ContractProblem:
    """One thing wrong with a contract: where (a dotted key), what, and how to fix it."""

    key: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}; fix: {self.fix}"


class ContractCheckError(PipelineError):
    """The contract has problems; the message lists each with its key and its fix."""

    exit_code: ClassVar[int] = 2

    def __init__(self, source: str, problems: list[ContractProblem]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"contract {source} has {len(problems)} problem(s):\n{lines}")
        self.problems = problems


def _metrics_for(task: str) -> frozenset[str]:
    return CLASSIFICATION_METRICS if task == "binary_classification" else REGRESSION_METRICS


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _shown(names: list[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


class _Checker:
    """Semantic checks over the raw mapping (so one run reports every problem, typed or not)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.problems: list[ContractProblem] = []
        self.columns: dict[str, dict[str, Any]] = {}
        for column in _list(data.get("columns")):
            if isinstance(column, dict) and isinstance(column.get("name"), str):
                self.columns.setdefault(column["name"], column)
        self.task = str(data.get("task", ""))

    def add(self, key: str, message: str, fix: str) -> None:
        self.problems.append(ContractProblem(key, message, fix))

    def type_of(self, name: str) -> str | None:
        column = self.columns.get(name)
        return None if column is None else str(column.get("type"))

    def run(self) -> list[ContractProblem]:
        self.check_columns()
        self.check_target()
        self.check_keys()
        features = self.check_features()
        self.check_split()
        self.check_training()
        self.check_evaluation(features)
        return self.problems

    def check_columns(self) -> None:
        seen: set[str] = set()
        for i, column in enumerate(_list(self.data.get("columns"))):
            name = _dict(column).get("name")
            if name in seen:
                self.add(
                    f"columns[{i}].name",
                    f"column '{name}' is declared twice",
                    "keep one declaration per column",
                )
            seen.add(str(name))
            low, high = _dict(column).get("min"), _dict(column).get("max")
            if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
                self.add(
                    f"columns[{i}]",
                    f"column '{name}' has min {low} > max {high}",
                    "swap or correct the bounds",
                )
            if _dict(column).get("categories") is not None and _dict(column).get("type") in {
                "float",
                "datetime",
            }:
                self.add(
                    f"columns[{i}].categories",
                    f"column '{name}' is a {column.get('type')} with categories",
                    "declare it as string/integer, or use min/max instead of categories",
                )

    def check_target(self) -> None:
        target = self.data.get("target")
        if not isinstance(target, str) or not target:
            self.add(
                "target",
                "no target column",
                f"set target to the column to predict (one of: {_shown(list(self.columns))})",
            )
            return
        if target not in self.columns:
            self.add(
                "target",
                f"'{target}' is not a declared column",
                f"set target to one of: {_shown(list(self.columns))}",
            )
            return
        column = self.columns[target]
        if column.get("nullable"):
            self.add(
                "target",
                f"target '{target}' is nullable",
                f"set nullable: false on column '{target}' (rows need a label)",
            )
        if self.task == "regression" and column.get("type") not in {"integer", "float"}:
            self.add(
                "task",
                f"regression needs a numeric target, but '{target}' is {column.get('type')}",
                "use task: binary_classification for a two-valued target, or pick a numeric target",
            )
        if self.task == "binary_classification":
            categories = column.get("categories")
            positive = self.data.get("positive_class")
            if positive is None:
                self.add(
                    "positive_class",
                    "binary_classification needs positive_class",
                    f"set it to one of the values of '{target}'",
                )
            elif isinstance(categories, list):
                if len(categories) != 2:
                    self.add(
                        f"columns.{target}.categories",
                        f"a binary target needs exactly 2 categories, '{target}' declares {len(categories)}",
                        "list the two label values",
                    )
                if not any(positive == c or str(positive) == str(c) for c in categories):
                    self.add(
                        "positive_class",
                        f"{positive!r} is not among the categories {categories} of '{target}'",
                        "use one of them",
                    )
            elif column.get("type") in {"float", "datetime"}:
                self.add(
                    "task",
                    f"binary target '{target}' is a {column.get('type')}",
                    "declare it as integer, boolean or string with 2 categories",
                )

    def check_keys(self) -> None:
        keys = self.data.get("unique_keys", [])
        for i, key in enumerate(_list(keys)):
            if key not in self.columns:
                self.add(
                    f"unique_keys[{i}]",
                    f"'{key}' is not a declared column",
                    f"use declared columns (one of: {_shown(list(self.columns))})",
                )
                continue
            column = self.columns[key]
            if column.get("nullable"):
                self.add(
                    f"unique_keys[{i}]",
                    f"key column '{key}' is nullable, so rows cannot be told apart",
                    f"set nullable: false on '{key}' or choose another key",
                )
            if column.get("type") == "float":
                self.add(
                    f"unique_keys[{i}]",
                    f"key column '{key}' is a float (rounding breaks uniqueness)",
                    "use an integer or string identifier",
                )
            if key == self.data.get("target"):
                self.add(
                    f"unique_keys[{i}]", f"the target '{key}' cannot be a key", "remove it from unique_keys"
                )
        if len(set(map(str, _list(keys)))) != len(_list(keys)):
            self.add("unique_keys", "a key column is listed twice", "list each key column once")

    def check_features(self) -> set[str]:
        features = _dict(self.data.get("features"))
        names: set[str] = set()
        target = self.data.get("target")
        keys = set(map(str, _list(self.data.get("unique_keys"))))
        for group in ("numeric", "categorical"):
            for i, name in enumerate(_list(features.get(group))):
                key = f"features.{group}[{i}]"
                if name in names:
                    self.add(key, f"feature '{name}' is listed twice", "list each feature once, in one group")
                names.add(str(name))
                kind = self.type_of(str(name))
                if kind is None:
                    self.add(
                        key,
                        f"'{name}' is not a declared column",
                        f"declare it under columns or use one of: {_shown(list(self.columns))}",
                    )
                elif name == target:
                    self.add(key, f"the target '{name}' cannot be a feature", "remove it from the features")
                elif name in keys:
                    self.add(
                        key, f"key '{name}' is an identifier, not a feature", "remove it from the features"
                    )
                elif group == "numeric" and kind not in NUMERIC_TYPES:
                    self.add(
                        key,
                        f"numeric feature '{name}' is a {kind} column",
                        "move it to features.categorical (or declare a numeric type)",
                    )
                elif group == "categorical" and kind in {"float", "datetime"}:
                    self.add(
                        key,
                        f"categorical feature '{name}' is a {kind} column",
                        "move it to features.numeric (or derive a category from it)",
                    )
        for i, derived in enumerate(_list(features.get("derived"))):
            derived = _dict(derived)
            name = str(derived.get("name"))
            if name in self.columns or name in names:
                self.add(
                    f"features.derived[{i}].name",
                    f"derived feature '{name}' clashes with a column or feature",
                    "give it a new name",
                )
            names.add(name)
            for j, source in enumerate(_list(derived.get("inputs"))):
                kind = self.type_of(str(source))
                if kind is None:
                    self.add(
                        f"features.derived[{i}].inputs[{j}]",
                        f"'{source}' is not a declared column",
                        "use a declared numeric column",
                    )
                elif kind not in NUMERIC_TYPES:
                    self.add(
                        f"features.derived[{i}].inputs[{j}]",
                        f"'{source}' is a {kind} column",
                        "derived features take numeric columns",
                    )
        if not names:
            self.add(
                "features", "no features", "list columns under features.numeric and/or features.categorical"
            )
        return names

    def check_split(self) -> None:
        split = _dict(self.data.get("split"))
        validation, test = split.get("validation", 0.15), split.get("test", 0.15)
        for name, value in (("validation", validation), ("test", test)):
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1:
                self.add(
                    f"split.{name}",
                    f"{value!r} is not a share between 0 and 1",
                    "use a fraction such as 0.15",
                )
                return
        if test == 0:
            self.add(
                "split.test",
                "the test share is 0, so the evaluate step has no rows",
                "set split.test to e.g. 0.15",
            )
        if validation + test >= 0.9:
            self.add(
                "split",
                f"validation + test = {validation + test:g} leaves {1 - validation - test:.0%} of rows to train on",
                "keep validation + test below 0.9 (the training split is the rest)",
            )

    def check_training(self) -> None:
        from pipelines.train import ESTIMATORS

        training = _dict(self.data.get("training"))
        estimator = str(training.get("estimator", "logistic_regression"))
        if estimator not in ESTIMATORS:
            fitting = sorted(n for n, (_, _, t) in ESTIMATORS.items() if t == self.task) or sorted(ESTIMATORS)
            self.add(
                "training.estimator", f"unknown estimator '{estimator}'", f"use one of: {', '.join(fitting)}"
            )
            return
        module, class_name, task = ESTIMATORS[estimator]
        if self.task and task != self.task:
            fitting = sorted(n for n, (_, _, t) in ESTIMATORS.items() if t == self.task)
            self.add(
                "training.estimator",
                f"'{estimator}' is for {task}, the contract is {self.task}",
                f"use one of: {', '.join(fitting)}",
            )
            return
        import importlib

        cls = getattr(importlib.import_module(module), class_name)
        valid = set(cls().get_params())
        params: dict[str, Any] = {}
        for name, value in _dict(training.get("hyperparameters")).items():
            if name == "seed":
                if not isinstance(value, int) or isinstance(value, bool):
                    self.add(
                        "training.hyperparameters.seed",
                        f"seed {value!r} is not an integer",
                        "use an integer seed",
                    )
            elif name not in valid:
                self.add(
                    f"training.hyperparameters.{name}",
                    f"{class_name} has no hyperparameter '{name}'",
                    f"use one of: {_shown(sorted(valid), 40)} (or seed)",
                )
            else:
                params[name] = value
        validate = getattr(cls(**{}), "_validate_params", None)
        for name, value in params.items():
            try:
                instance = cls(**{name: value})
                if validate is not None:
                    instance._validate_params()
            except (ValueError, TypeError) as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                self.add(
                    f"training.hyperparameters.{name}",
                    f"{value!r} is not valid: {first}",
                    f"see {class_name}'s documentation for '{name}'",
                )

    def check_evaluation(self, features: set[str]) -> None:
        evaluation = _dict(self.data.get("evaluation"))
        metrics = _metrics_for(self.task)
        for bound in ("min", "max"):
            for name in _dict(evaluation.get(bound)):
                if name not in metrics:
                    self.add(
                        f"evaluation.{bound}.{name}",
                        f"'{name}' is not a metric of {self.task or 'this task'}",
                        f"use one of: {', '.join(sorted(metrics))}",
                    )
        lows, highs = _dict(evaluation.get("min")), _dict(evaluation.get("max"))
        for name in set(lows) & set(highs):
            if (
                isinstance(lows[name], int | float)
                and isinstance(highs[name], int | float)
                and lows[name] > highs[name]
            ):
                self.add(
                    f"evaluation.min.{name}",
                    f"min {lows[name]} is above max {highs[name]}, no model can pass",
                    "lower the min or raise the max",
                )
        champion = _dict(evaluation.get("champion"))
        metric = champion.get("metric")
        if metric is not None and metric not in metrics:
            self.add(
                "evaluation.champion.metric",
                f"'{metric}' is not a metric of {self.task or 'this task'}",
                f"use one of: {', '.join(sorted(metrics))}",
            )
        margin = champion.get("margin", 0.01)
        if not isinstance(margin, int | float) or not 0 <= margin < 1:
            self.add(
                "evaluation.champion.margin",
                f"{margin!r} is not a relative margin in [0, 1)",
                "use e.g. 0.01 (1%)",
            )
        for i, check in enumerate(_list(evaluation.get("behavioural"))):
            check = _dict(check)
            column = check.get("column")
            key = f"evaluation.behavioural[{i}]"
            if column not in features:
                self.add(
                    f"{key}.column",
                    f"'{column}' is not a model feature",
                    f"use one of: {_shown(sorted(features))}",
                )
                continue
            spec = self.columns.get(str(column), {})
            if check.get("kind") == "invariance":
                categories = spec.get("categories")
                if not _list(check.get("values")):
                    self.add(
                        f"{key}.values",
                        "an invariance check needs values to try",
                        f"list values of '{column}'",
                    )
                elif isinstance(categories, list):
                    unknown = [
                        v
                        for v in check["values"]
                        if v not in categories and str(v) not in map(str, categories)
                    ]
                    if unknown:
                        self.add(
                            f"{key}.values",
                            f"{unknown} are not categories of '{column}'",
                            f"use values from {categories}",
                        )
            elif check.get("kind") == "directional":
                if spec.get("type") not in NUMERIC_TYPES:
                    self.add(
                        f"{key}.column",
                        f"a directional check needs a numeric feature, '{column}' is {spec.get('type')}",
                        "use a numeric feature",
                    )
                if not check.get("delta"):
                    self.add(
                        f"{key}.delta",
                        "delta is 0, so nothing moves",
                        "set delta to the change to apply, e.g. 10",
                    )


def _pydantic_problems(data: dict[str, Any]) -> list[ContractProblem]:
    from pydantic import ValidationError

    from pipelines.contract import DatasetContract

    try:
        DatasetContract.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"]) or "(root)"
            fix = {
                "extra_forbidden": "remove it or check its spelling (see docs/pipeline-contracts.md)",
                "missing": "add it",
                "literal_error": "use one of the values named",
                "string_pattern_mismatch": "use lower-case letters, digits, '_' and '-', starting with a letter or digit",
            }.get(item["type"], "correct the value")
            problems.append(ContractProblem(key, str(item["msg"]).removeprefix("Value error, "), fix))
        return problems
    return []


def check_contract_data(data: Any) -> list[ContractProblem]:
    """Every problem of a contract mapping (empty when it is ready to run)."""
    if not isinstance(data, dict):
        return [
            ContractProblem(
                "(root)", "the contract is not a mapping", "write key: value pairs at the top level"
            )
        ]
    semantic = _Checker(data).run()
    structural = _pydantic_problems(data)
    # the model's own cross-field errors repeat what the semantic checks say with their keys
    structural = [p for p in structural if p.key != "(root)" or not semantic]
    return structural + semantic


def check_contract_file(path: Path) -> list[ContractProblem]:
    """Read a contract file and return its problems."""
    import yaml

    if not path.is_file():
        return [ContractProblem("(file)", f"{path} not found", "give the path of a contract YAML file")]
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        return [
            ContractProblem("(file)", f"not valid YAML: {error}", "fix the YAML syntax at the line shown")
        ]
    return check_contract_data(data)


def require_valid_contract(path: Path) -> None:
    """Raise :class:`ContractCheckError` listing every problem of the contract at ``path``."""
    problems = check_contract_file(path)
    if problems:
        raise ContractCheckError(str(path), problems)
