"""SageMaker model registry calls the platform makes that moto lacks.

* ``PutModelPackageGroupPolicy`` / ``GetModelPackageGroupPolicy`` / ``DeleteModelPackageGroupPolicy``:
  a resource policy stored per model package group (the stack shares the registry with the deploy
  accounts through it), validated as a resource-based policy document;
* ``DeleteModelPackage``: removes a model package (by name or ARN). Its version number is never reused:
  moto numbers a new version ``len(versions in group) + 1``, which after a deletion would give an
  existing version's number (and ARN) again; the extension counts deleted versions so numbering goes on
  as AWS's does.
* Model cards: moto stores ``CreateModelCard``/``UpdateModelCard`` as given. The extension refuses what
  SageMaker refuses: a name outside ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$``, an unknown status, content
  over 100,000 characters or not in the model card JSON schema (:func:`model_card_problems`), an update
  of both content and status in one call, and a content update of an Archived card; and an update that
  leaves out the content or the status keeps it (moto's new version lost it). A card's
  ``SecurityConfig.KmsKeyId`` must name an enabled symmetric key of the account and region
  (:func:`card_key_problem`); whether the *caller* may use it (kms:GenerateDataKey to create or update,
  kms:Decrypt to read, through SageMaker) is the IAM authorizer's check (rehearsal/iam/actions.py), so
  with IAM enforced a card whose key the caller cannot use is refused with AccessDenied.

API: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_PutModelPackageGroupPolicy.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelCard.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelCard.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/model-cards-json-schema.html
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

POLICY_MAX_LENGTH = 20480  # PolicyString: Length Constraints: Minimum length of 1. Maximum length of 20480.
_POLICY_VERSIONS = {"2012-10-17", "2008-10-17"}


def _validation_error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message)


def _group_name(value: str) -> str:
    """A group name, or the name in a ``arn:aws:sagemaker:...:model-package-group/<name>`` ARN."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def policy_problems(text: str) -> list[str]:
    """What makes ``text`` not a resource-based policy SageMaker would store (empty when valid)."""
    if not 1 <= len(text) <= POLICY_MAX_LENGTH:
        return [f"the policy must be 1 to {POLICY_MAX_LENGTH} characters, got {len(text)}"]
    try:
        document = json.loads(text)
    except ValueError as exc:
        return [f"the policy is not valid JSON: {exc}"]
    if not isinstance(document, dict):
        return ["the policy must be a JSON object"]
    problems: list[str] = []
    if document.get("Version") not in _POLICY_VERSIONS:
        problems.append(f"Version must be one of {sorted(_POLICY_VERSIONS)}")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        return [*problems, "Statement must be a non-empty list of statements"]
    for index, statement in enumerate(statements):
        where = f"Statement[{index}]"
        if not isinstance(statement, dict):
            problems.append(f"{where} must be an object")
            continue
        if statement.get("Effect") not in {"Allow", "Deny"}:
            problems.append(f"{where}.Effect must be Allow or Deny")
        if "Principal" not in statement and "NotPrincipal" not in statement:
            problems.append(f"{where} needs a Principal (a resource policy names who it grants access to)")
        if "Action" not in statement and "NotAction" not in statement:
            problems.append(f"{where} needs an Action")
        else:
            actions = statement.get("Action", statement.get("NotAction"))
            actions = [actions] if isinstance(actions, str) else actions
            wrong = [a for a in actions or [] if not str(a).startswith("sagemaker:") and a != "*"]
            if wrong or not actions:
                problems.append(f"{where}: actions must be sagemaker:* actions, got {wrong or actions}")
        if "Resource" not in statement and "NotResource" not in statement:
            problems.append(f"{where} needs a Resource")
        else:
            resources = statement.get("Resource", statement.get("NotResource"))
            resources = [resources] if isinstance(resources, str) else resources
            wrong = [r for r in resources or [] if not str(r).startswith("arn:aws:sagemaker:")]
            if wrong or not resources:
                problems.append(f"{where}: resources must be SageMaker ARNs, got {wrong or resources}")
    return problems


MODEL_CARD_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MODEL_CARD_STATUSES = ("Draft", "PendingReview", "Approved", "Archived")
MODEL_CARD_CONTENT_MAX = 100_000
_CARD_SECTIONS = {
    "model_overview",
    "model_package_details",
    "intended_uses",
    "business_details",
    "training_details",
    "evaluation_details",
    "additional_information",
}
_RISK_RATINGS = {"High", "Medium", "Low", "Unknown"}
_METRIC_TYPES = {"number", "string", "boolean", "linear_graph", "bar_chart", "matrix"}
_APPROVAL_STATUSES = {"Approved", "Rejected", "PendingManualApproval"}


def _metric_problems(where: str, metric: Any) -> list[str]:
    if not isinstance(metric, dict):
        return [f"{where} must be an object"]
    missing = [k for k in ("name", "type", "value") if k not in metric]
    if missing:
        return [f"{where} lacks {missing}"]
    kind, value = metric["type"], metric["value"]
    if kind not in _METRIC_TYPES:
        return [f"{where}.type {kind!r} is not one of {sorted(_METRIC_TYPES)}"]
    expected = {"number": (int, float), "string": (str,), "boolean": (bool,)}.get(kind)
    if expected and (not isinstance(value, expected) or (kind == "number" and isinstance(value, bool))):
        return [f"{where}.value must be a {kind}, got {type(value).__name__}"]
    return []


def model_card_problems(text: str) -> list[str]:
    """What makes ``text`` not model card content SageMaker accepts (empty when valid): size, JSON, and the
    schema's top-level sections, risk ratings, approval statuses and evaluation metric shapes."""
    if len(text) > MODEL_CARD_CONTENT_MAX:
        return [f"Content must be at most {MODEL_CARD_CONTENT_MAX} characters, got {len(text)}"]
    try:
        content = json.loads(text)
    except ValueError as exc:
        return [f"Content is not valid JSON: {exc}"]
    if not isinstance(content, dict):
        return ["Content must be a JSON object"]
    problems = [
        f"unknown section {k!r} (allowed: {sorted(_CARD_SECTIONS)})"
        for k in content
        if k not in _CARD_SECTIONS
    ]
    for section in _CARD_SECTIONS & set(content):
        if section != "evaluation_details" and not isinstance(content[section], dict):
            problems.append(f"{section} must be an object")
    uses = content.get("intended_uses")
    if isinstance(uses, dict) and "risk_rating" in uses and uses["risk_rating"] not in _RISK_RATINGS:
        problems.append(
            f"intended_uses.risk_rating {uses['risk_rating']!r} is not one of {sorted(_RISK_RATINGS)}"
        )
    package = content.get("model_package_details")
    status = package.get("model_approval_status") if isinstance(package, dict) else None
    if status is not None and status not in _APPROVAL_STATUSES:
        problems.append(
            f"model_package_details.model_approval_status {status!r} is not one of {sorted(_APPROVAL_STATUSES)}"
        )
    details = content.get("evaluation_details", [])
    if not isinstance(details, list):
        return [*problems, "evaluation_details must be an array"]
    for i, detail in enumerate(details):
        where = f"evaluation_details[{i}]"
        if not isinstance(detail, dict) or not isinstance(detail.get("name"), str):
            problems.append(f"{where} must be an object with a name")
            continue
        for j, group in enumerate(detail.get("metric_groups", [])):
            at = f"{where}.metric_groups[{j}]"
            if (
                not isinstance(group, dict)
                or "name" not in group
                or not isinstance(group.get("metric_data"), list)
            ):
                problems.append(f"{at} needs a name and a metric_data array")
                continue
            for k, metric in enumerate(group["metric_data"]):
                problems += _metric_problems(f"{at}.metric_data[{k}]", metric)
    return problems


def card_key_problem(account: str, region: str, key_ref: str) -> str | None:
    """Why ``key_ref`` cannot encrypt a model card (None when it can): no such key (id, ARN or alias) in
    the account and region, a key that is not Enabled, or one that is not a symmetric encryption key.
    SageMaker asks KMS for a data key of it when it stores the card, which fails for each of these."""
    from moto.kms.models import kms_backends

    if key_ref.startswith("arn:") and ":key/" in key_ref:
        region = key_ref.split(":")[3]
    backend = kms_backends[account][region]
    try:
        key = backend.keys.get(backend.any_id_to_key_id(key_ref))
    except Exception:  # moto raises NotFound flavours for unknown aliases
        key = None
    if key is None:
        return f"KMS key {key_ref!r} does not exist in account {account} region {region}"
    state = getattr(key, "key_state", "Enabled")
    if state != "Enabled":
        return f"KMS key {key_ref!r} is {state}, not Enabled"
    usage = getattr(key, "key_usage", None) or "ENCRYPT_DECRYPT"  # moto leaves it None when not given
    spec = str(getattr(key, "key_spec", None) or "SYMMETRIC_DEFAULT")
    if usage != "ENCRYPT_DECRYPT" or spec != "SYMMETRIC_DEFAULT":
        return f"KMS key {key_ref!r} is not a symmetric encryption key ({usage}, {spec})"
    return None


def _card_name(value: str) -> str:
    """A card name, or the name in a ``...:model-card/<name>`` ARN."""
    return (
        value.split(":model-card/", 1)[1] if value.startswith("arn:") and ":model-card/" in value else value
    )


@dataclass
class _Patch:
    owner: Any
    attribute: str
    original: Any
    existed: bool


class SageMakerRegistryExtras:
    """Extension: model package group policies, DeleteModelPackage and model card validation (see the
    module docstring)."""

    name = "sagemaker-registry"

    def __init__(self) -> None:
        self._policies: dict[str, str] = {}  # group ARN -> policy text
        self._deleted: dict[
            tuple[str, str, str], dict[str, Any]
        ] = {}  # (account, region, group) -> arn -> pkg
        self._lock = threading.RLock()
        self._patches: list[_Patch] = []

    def install(self, emulator: Emulator) -> None:
        """Add the missing SageMaker actions to moto's response class; make version numbers monotonic."""
        from moto.sagemaker.models import SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse

        extension = self

        def put_model_package_group_policy(response: Any) -> Any:
            return extension._put_policy(response)

        def get_model_package_group_policy(response: Any) -> Any:
            return extension._get_policy(response)

        def delete_model_package_group_policy(response: Any) -> Any:
            return extension._delete_policy(response)

        def delete_model_package(response: Any) -> Any:
            return extension._delete_package(response)

        original_create = SageMakerModelBackend.create_model_package

        def create_model_package(backend: Any, *args: Any, **kwargs: Any) -> str:
            group = kwargs.get("model_package_group_name")
            with extension._lock:
                ghosts = extension._deleted.get((backend.account_id, backend.region_name, str(group)), {})
                # moto counts the group's packages to number the next version: count the deleted ones too
                for arn, package in ghosts.items():
                    backend.model_packages[arn] = package
                try:
                    return original_create(backend, *args, **kwargs)
                finally:
                    for arn in ghosts:
                        backend.model_packages.pop(arn, None)

        self._patch(SageMakerResponse, "put_model_package_group_policy", put_model_package_group_policy)
        self._patch(SageMakerResponse, "get_model_package_group_policy", get_model_package_group_policy)
        self._patch(SageMakerResponse, "delete_model_package_group_policy", delete_model_package_group_policy)
        self._patch(SageMakerResponse, "delete_model_package", delete_model_package)
        self._patch(SageMakerModelBackend, "create_model_package", create_model_package)
        self._install_model_cards(SageMakerResponse)

    def _install_model_cards(self, response_class: Any) -> None:
        """Validate CreateModelCard/UpdateModelCard as SageMaker does before moto stores them."""
        original_create = response_class.create_model_card

        def create_model_card(response: Any) -> Any:
            name = str(response._get_param("ModelCardName") or "")
            if not MODEL_CARD_NAME.match(name):
                raise _validation_error(
                    f"Invalid ModelCardName {name!r}: 1 to 63 letters, digits and hyphens, "
                    "starting and ending with a letter or digit"
                )
            status = response._get_param("ModelCardStatus")
            if status not in MODEL_CARD_STATUSES:
                raise _validation_error(
                    f"ModelCardStatus must be one of {list(MODEL_CARD_STATUSES)}, got {status!r}"
                )
            content = response._get_param("Content")
            if not isinstance(content, str):
                raise _validation_error("Content is required: the model card JSON as a string")
            problems = model_card_problems(content)
            if problems:
                raise _validation_error("Invalid model card Content: " + "; ".join(problems))
            key_ref = (response._get_param("SecurityConfig") or {}).get("KmsKeyId")
            if key_ref:
                problem = card_key_problem(response.current_account, response.region, str(key_ref))
                if problem:
                    raise _validation_error(f"SecurityConfig.KmsKeyId: {problem}")
            return original_create(response)

        def update_model_card(response: Any) -> Any:
            name = _card_name(str(response._get_param("ModelCardName") or ""))
            content, status = response._get_param("Content"), response._get_param("ModelCardStatus")
            if content is not None and status is not None:
                raise _validation_error(
                    "You cannot update both model card content and model card status in a single call."
                )
            backend = response.sagemaker_backend
            current = backend.describe_model_card(
                model_card_name=name, model_card_version=None
            )  # ResourceNotFound
            if status is not None and status not in MODEL_CARD_STATUSES:
                raise _validation_error(
                    f"ModelCardStatus must be one of {list(MODEL_CARD_STATUSES)}, got {status!r}"
                )
            if content is not None:
                if current["ModelCardStatus"] == "Archived":
                    raise _validation_error("Model Card is in Archived state.")
                problems = model_card_problems(content)
                if problems:
                    raise _validation_error("Invalid model card Content: " + "; ".join(problems))
            from moto.core.responses import ActionResult

            arn = backend.update_model_card(
                model_card_name=name,
                content=content if content is not None else current["Content"],
                model_card_status=status if status is not None else current["ModelCardStatus"],
            )
            return ActionResult({"ModelCardArn": arn})

        # UpdateModelCard is replaced whole: moto's new version loses what the request leaves out
        self._patch(response_class, "create_model_card", create_model_card)
        self._patch(response_class, "update_model_card", update_model_card)

    def group_policy(self, group_arn: str) -> str | None:
        """The resource policy stored for the model package group ``group_arn`` (None: none)."""
        with self._lock:
            return self._policies.get(group_arn)

    def close(self) -> None:
        """Remove the added actions and restore moto's version numbering; forget stored state."""
        for patch in reversed(self._patches):
            if patch.existed:
                setattr(patch.owner, patch.attribute, patch.original)
            else:
                delattr(patch.owner, patch.attribute)
        self._patches.clear()
        self._policies.clear()
        self._deleted.clear()

    def _patch(self, owner: Any, attribute: str, replacement: Callable[..., Any]) -> None:
        existed = attribute in owner.__dict__
        self._patches.append(_Patch(owner, attribute, owner.__dict__.get(attribute), existed))
        setattr(owner, attribute, replacement)

    # --- the actions ----------------------------------------------------------------------------

    @staticmethod
    def _group(response: Any) -> Any:
        name = _group_name(str(response._get_param("ModelPackageGroupName") or ""))
        # moto's own lookup: ValidationException "ModelPackageGroup <arn> does not exist."
        return response.sagemaker_backend.describe_model_package_group(name)

    def _put_policy(self, response: Any) -> Any:
        from moto.core.responses import ActionResult

        group = self._group(response)
        policy = response._get_param("ResourcePolicy")
        if not isinstance(policy, str):
            raise _validation_error("ResourcePolicy is required: a JSON resource policy document as a string")
        problems = policy_problems(policy)
        if problems:
            raise _validation_error("Invalid ResourcePolicy: " + "; ".join(problems))
        with self._lock:
            self._policies[group.arn] = policy
        return ActionResult({"ModelPackageGroupArn": group.arn})

    def _get_policy(self, response: Any) -> Any:
        from moto.core.responses import ActionResult

        group = self._group(response)
        with self._lock:
            policy = self._policies.get(group.arn)
        if policy is None:
            raise _validation_error(f"ModelPackageGroup {group.arn} has no resource policy.")
        return ActionResult({"ResourcePolicy": policy})

    def _delete_policy(self, response: Any) -> Any:
        from moto.core.responses import EmptyResult

        group = self._group(response)
        with self._lock:
            if self._policies.pop(group.arn, None) is None:
                raise _validation_error(f"ModelPackageGroup {group.arn} has no resource policy.")
        return EmptyResult()

    def _delete_package(self, response: Any) -> Any:
        from moto.core.responses import EmptyResult

        name = str(response._get_param("ModelPackageName") or "")
        backend = response.sagemaker_backend
        with self._lock:
            package = backend.describe_model_package(name)  # moto's "Model package <name> not found"
            backend.model_packages.pop(package.arn, None)
            for key in [k for k, v in backend.model_package_name_mapping.items() if v == package.arn]:
                del backend.model_package_name_mapping[key]
            if package.model_package_group_name and package.model_package_version is not None:
                key = (backend.account_id, backend.region_name, str(package.model_package_group_name))
                self._deleted.setdefault(key, {})[package.arn] = package
        return EmptyResult()
