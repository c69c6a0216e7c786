"""The rehearsed model: which catalog model the lifecycle trains, serves, canaries and rolls back.

Without ``--contract`` it is dev's ``churn`` model. With ``--data FILE --contract FILE`` the user's
contract joins dev's catalog (``mlops-platform:models`` in ``stacks/Pulumi.dev.yaml``) as a model of
its own, named after the contract's ``name`` (resource names through
:func:`platform_contract.naming.model_names`, so ``my_dataset`` gets ``mlops-dev-my-dataset``), with
the endpoint settings of dev's ``churn`` entry; a contract whose name normalises to a model dev
already has (``housing``) takes that model's entry. The deployed stack then gives it its own model
package group, endpoint, alarms, capture prefix and DAGs.

The stack reads each entry's contract as ``<contracts folder>/<contract>.yaml``. The rehearsal's
contracts folder is ``<out>/contracts``: the repository's contracts plus the user's, written as
``<contract name>.yaml`` (the file stem is what the catalog's ``contract`` names, and what
registration compares with the archive's contract); ``MLOPS_CONTRACTS_DIR`` points the stack
config at it, the outputs file's ``contractsDir`` points the DAGs at it.

Every stage asks :func:`rehearsed_model` for the model's names instead of a constant.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform_contract.naming import ModelNames, model_names, model_slug

if TYPE_CHECKING:
    from rehearsal.run import RunContext

REPO = Path(__file__).resolve().parents[1]
DEV_PREFIX = "mlops-dev"
"""Name prefix of the dev stack (``mlops-<environment>``), the stack the rehearsal deploys."""
DEFAULT_MODEL = "churn"
"""The catalog model rehearsed without ``--contract``."""
TEMPLATE_MODEL = "churn"
"""The dev entry whose endpoint and monitoring settings a user's model gets."""
CONTRACTS_ENV = "MLOPS_CONTRACTS_DIR"
"""Environment variable of the stack config's contracts folder (``stacks.config.contracts``)."""


def dev_catalog() -> list[dict[str, Any]]:
    """dev's model catalog as written in ``stacks/Pulumi.dev.yaml`` (fresh copies of the entries)."""
    import yaml

    from stacks.synth import stack_config_file

    config = yaml.safe_load(stack_config_file("dev").read_text())["config"]
    return [copy.deepcopy(dict(m)) for m in config["mlops-platform:models"]]


def contract_of(ctx: RunContext) -> Any:
    """The rehearsed contract (``pipelines.contract.Contract``), loaded once into ``ctx.values["contract"]``."""
    from pipelines.contract import load_contract

    if "contract" not in ctx.values:
        options = ctx.options
        ctx.values["contract"] = load_contract(options.contract if options.contract else DEFAULT_MODEL)
    return ctx.values["contract"]


def contracts_folder(ctx: RunContext) -> Path:
    """``<out>/contracts``: the repository's contracts plus the user's as ``<name>.yaml`` (written once)."""
    folder = (ctx.out / "contracts").resolve()  # read by DAG workers whose cwd is the repository
    if ctx.values.get("contracts_dir") != str(folder):
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted((REPO / "contracts").glob("*.yaml")):
            shutil.copyfile(path, folder / path.name)
        if ctx.options.contract is not None:
            shutil.copyfile(ctx.options.contract, folder / f"{contract_of(ctx).name}.yaml")
        from rehearsal.tuning_stage import add_tuning, tuning_enabled

        if tuning_enabled(ctx):
            add_tuning(folder / f"{contract_of(ctx).name}.yaml", contract_of(ctx))
        ctx.values["contracts_dir"] = str(folder)
    return folder


def rehearsal_catalog(ctx: RunContext) -> list[dict[str, Any]]:
    """dev's catalog with the rehearsed model in it (fresh copies: callers may edit them).

    Raises:
        platform_contract.naming.InvalidNameError: the contract's name cannot name AWS resources.
    """
    catalog = dev_catalog()
    contract = contract_of(ctx)
    slug = model_slug(contract.name)
    from rehearsal.tuning_stage import catalog_limits, tuning_enabled

    for entry in catalog:
        if model_slug(str(entry["name"])) == slug:
            entry["contract"] = contract.name
            if tuning_enabled(ctx):
                entry["tuning"] = catalog_limits()
            return catalog
    template = next((e for e in catalog if e["name"] == TEMPLATE_MODEL), None)
    if template is None:
        raise LookupError(f"dev's model catalog has no {TEMPLATE_MODEL!r} entry to copy settings from")
    model_names(DEV_PREFIX, contract.name)  # fails here, with the rule, when a name would be invalid
    catalog.append(
        {
            "name": contract.name,
            "contract": contract.name,
            "endpoint": {**copy.deepcopy(template["endpoint"]), "modelPackageArn": ""},
            "monitoring": copy.deepcopy(template.get("monitoring") or {}),
            **({"tuning": catalog_limits()} if tuning_enabled(ctx) else {}),
        }
    )
    return catalog


def rehearsed_model(ctx: RunContext) -> ModelNames:
    """Every name of the model the lifecycle rehearses (set by the data stage; derived once).

    Raises:
        platform_contract.naming.InvalidNameError: the contract's name cannot name AWS resources.
    """
    names = ctx.values.get("model")
    if isinstance(names, ModelNames):
        return names
    slug = model_slug(contract_of(ctx).name)
    entry = next(e for e in rehearsal_catalog(ctx) if model_slug(str(e["name"])) == slug)
    names = model_names(DEV_PREFIX, str(entry["name"]))
    ctx.values["model"] = names
    return names


def catalog_overrides(ctx: RunContext, packages: dict[str, str]) -> dict[str, Any]:
    """The dev config of the rehearsal: the catalog with each model's ``modelPackageArn`` set.

    ``packages`` maps a catalog model name to its approved package (``""``: no endpoint declared);
    models not named keep the catalog's value. This is the change the promotion pipeline makes
    (``stacks.config.promote_key``); ``rehearsal.deploy`` replaces lists whole, so the whole catalog
    is passed.

    Raises:
        LookupError: a name of ``packages`` is not a model of the catalog.
    """
    catalog = rehearsal_catalog(ctx)
    known = {str(e["name"]) for e in catalog}
    unknown = sorted(set(packages) - known)
    if unknown:
        raise LookupError(f"no model {unknown} in the rehearsal's catalog ({', '.join(sorted(known))})")
    for entry in catalog:
        if entry["name"] in packages:
            entry["endpoint"] = {**entry["endpoint"], "modelPackageArn": packages[entry["name"]]}
    overrides: dict[str, Any] = {"mlops-platform:models": catalog}
    if ctx.options.ingest_features:  # feature groups with an online store, as staging and prod have
        overrides["mlops-platform:featureStore"] = {"onlineStore": True}
    return overrides


def model_entry(ctx: RunContext, name: str | None = None) -> dict[str, Any]:
    """The catalog entry of ``name`` (default: the rehearsed model) as written in the config."""
    wanted = name or rehearsed_model(ctx).model
    for entry in rehearsal_catalog(ctx):
        if entry["name"] == wanted:
            return entry
    raise LookupError(f"the rehearsal's catalog has no model {wanted!r}")
