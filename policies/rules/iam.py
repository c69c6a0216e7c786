"""IAM: no admin or wildcard grants, no PassRole/escalation on *, no FullAccess managed policies,
restricted trust policies, and every action and resource ARN checked against the Service
Authorization Reference (:mod:`policies.iam_data`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies import iam_data
from policies.core import Context, Level, as_list, policy_statements, principals, resource_rule

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_TYPES = (ROLE_POLICY, POLICY, USER_POLICY, GROUP_POLICY, ROLE)

# Actions that let a principal grant itself more than it has (Rhino Security's IAM escalation paths).
ESCALATION_ACTIONS = frozenset(
    a.lower()
    for a in (
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:AttachRolePolicy",
        "iam:AttachUserPolicy",
        "iam:AttachGroupPolicy",
        "iam:PutRolePolicy",
        "iam:PutUserPolicy",
        "iam:PutGroupPolicy",
        "iam:UpdateAssumeRolePolicy",
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:UpdateLoginProfile",
        "iam:AddUserToGroup",
    )
)

# Service principals whose role trust supports aws:SourceAccount / aws:SourceArn (AWS documents the
# condition for each service's role; https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
CONFUSED_DEPUTY_SERVICES = frozenset(
    {
        "sagemaker.amazonaws.com",
        "codebuild.amazonaws.com",
        "codepipeline.amazonaws.com",
        "vpc-flow-logs.amazonaws.com",
        "elasticmapreduce.amazonaws.com",
        "events.amazonaws.com",
        "glue.amazonaws.com",
        "states.amazonaws.com",
        "logs.amazonaws.com",
        "scheduler.amazonaws.com",
    }
)


def _documents(resource_type: str, props: Mapping[str, Any]) -> list[Any]:
    """Permission policy documents of an IAM resource (a role's inline policies included)."""
    if resource_type == ROLE:
        return [p.get("policy") for p in as_list(props.get("inlinePolicies")) if isinstance(p, Mapping)]
    return [props.get("policy")]


def _allow_statements(resource_type: str, props: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for document in _documents(resource_type, props):
        for statement in policy_statements(document):
            if statement.get("Effect") == "Allow":
                yield statement


def _sid(statement: Mapping[str, Any]) -> str:
    return repr(statement.get("Sid", "(no Sid)"))


@resource_rule(
    "iam-no-admin",
    POLICY_TYPES,
    why="Action * on Resource * is full administrator access: one leaked credential owns the account.",
    fix="Grant the specific actions on the specific resources the principal uses.",
)
def no_admin(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """No policy allows ``*`` actions on ``*`` resources.

    Mirrors: CKV_AWS_62, CKV_AWS_1
    """
    for s in _allow_statements(resource_type, props):
        if "*" in as_list(s.get("Action")) and "*" in as_list(s.get("Resource")):
            yield f"statement {_sid(s)} allows * on *"


@resource_rule(
    "iam-no-wildcard-action",
    POLICY_TYPES,
    why="A bare * or service-wide svc:* action grants every current and future action of the service.",
    fix="List the actions the principal calls (the pipeline steps' needs are documented per role).",
)
def no_wildcard_action(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """No policy allows ``*`` or a whole service (``s3:*``) as its action.

    Mirrors: CKV_AWS_63, CKV_AWS_289
    """
    for s in _allow_statements(resource_type, props):
        for action in as_list(s.get("Action")):
            if action == "*" or str(action).endswith(":*"):
                yield f"statement {_sid(s)} allows {action}"


@resource_rule(
    "iam-no-passrole-star",
    POLICY_TYPES,
    why="iam:PassRole on * lets the principal hand any role (admin included) to a service it controls.",
    fix="Scope iam:PassRole to the role ARNs it passes, ideally with an iam:PassedToService condition.",
)
def no_passrole_star(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """``iam:PassRole`` is never allowed on ``*``.

    Mirrors: CKV_AWS_286
    """
    for s in _allow_statements(resource_type, props):
        actions = [str(a).lower() for a in as_list(s.get("Action"))]
        if any(a in ("iam:passrole", "iam:*", "*", "iam:pass*") for a in actions) and "*" in as_list(
            s.get("Resource")
        ):
            yield f"statement {_sid(s)} allows iam:PassRole on *"


@resource_rule(
    "iam-no-privilege-escalation",
    POLICY_TYPES,
    why="Policy-writing IAM actions on * let a principal grant itself any permission.",
    fix="Drop the IAM write actions, or scope them to named resources with a permissions boundary.",
)
def no_privilege_escalation(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """No inline or managed policy grants IAM policy-writing actions on ``*``.

    Mirrors: CKV_AWS_286, CKV_AWS_287, CKV_AWS_290
    """
    for s in _allow_statements(resource_type, props):
        if "*" not in as_list(s.get("Resource")):
            continue
        risky = sorted(str(a) for a in as_list(s.get("Action")) if str(a).lower() in ESCALATION_ACTIONS)
        if risky:
            yield f"statement {_sid(s)} allows {', '.join(risky)} on *"


@resource_rule(
    "iam-no-full-access-managed-policy",
    [ATTACHMENT, ROLE],
    why="AWS *FullAccess and AdministratorAccess policies grant far more than any platform role needs.",
    fix="Replace the managed policy with an inline policy listing the needed actions and resources.",
)
def no_full_access(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """No role gets ``AdministratorAccess``, ``PowerUserAccess`` or an AWS ``*FullAccess`` policy.

    Mirrors: CKV_AWS_274
    """
    arns = (
        [props.get("policyArn")] if resource_type == ATTACHMENT else as_list(props.get("managedPolicyArns"))
    )
    for arn in arns:
        name = str(arn or "").rsplit("/", 1)[-1]
        if ":aws:policy/" in str(arn) and (
            name in ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess") or name.endswith("FullAccess")
        ):
            yield f"managed policy {name} is attached"


@resource_rule(
    "iam-trust-no-wildcard-principal",
    [ROLE],
    why="A trust policy for Principal * lets any AWS identity assume the role.",
    fix="Trust the specific service, account or OIDC provider, with conditions.",
)
def trust_no_wildcard(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Trust policies never trust an unconditioned ``*`` principal.

    Mirrors: CKV_AWS_60, CKV_AWS_61
    """
    for s in policy_statements(props.get("assumeRolePolicy")):
        if s.get("Effect") == "Allow" and not s.get("Condition") and any(v == "*" for _, v in principals(s)):
            yield f"trust statement {_sid(s)} allows Principal * without a condition"


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    keys: set[str] = set()
    for values in (statement.get("Condition") or {}).values():
        if isinstance(values, Mapping):
            keys.update(str(k).lower() for k in values)
    return keys


@resource_rule(
    "iam-trust-confused-deputy",
    [ROLE],
    why="Without aws:SourceAccount/aws:SourceArn, the service can be tricked into using the role on another account's behalf.",
    fix="Add Condition StringEquals aws:SourceAccount (and ArnLike aws:SourceArn) to the service trust statement.",
)
def trust_confused_deputy(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Service trust policies carry confused-deputy conditions where the service supports them.

    Mirrors: none (AWS IAM guide, cross-service confused deputy prevention)
    """
    for s in policy_statements(props.get("assumeRolePolicy")):
        if s.get("Effect") != "Allow":
            continue
        services = [v for kind, v in principals(s) if kind == "Service" and v in CONFUSED_DEPUTY_SERVICES]
        keys = _condition_keys(s)
        if services and not keys & {"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid"}:
            yield f"trust for {', '.join(services)} has no aws:SourceAccount/aws:SourceArn condition"


@resource_rule(
    "iam-trust-oidc-scoped",
    [ROLE],
    why="A web-identity trust without a :sub condition lets every service account (or repo) of the provider assume the role.",
    fix="Add a StringEquals/StringLike condition on <provider>:sub naming the service account.",
)
def trust_oidc_scoped(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """OIDC (IRSA) trust policies are pinned to a subject.

    Mirrors: none (EKS IRSA guidance)
    """
    for s in policy_statements(props.get("assumeRolePolicy")):
        if s.get("Effect") != "Allow" or not any(kind == "Federated" for kind, _ in principals(s)):
            continue
        if not any(k.endswith(":sub") for k in _condition_keys(s)):
            yield f"web-identity trust {_sid(s)} has no :sub condition"


@resource_rule(
    "iam-action-exists",
    POLICY_TYPES,
    why="A misspelt or retired action grants nothing, so the step that needs it fails in AWS (and the policy misleads reviewers).",
    fix="Use the action names of the Service Authorization Reference.",
)
def action_exists(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Every allowed action exists in the Service Authorization Reference.

    Mirrors: none (IAM Access Analyzer policy validation: unknown action)
    """
    for s in _allow_statements(resource_type, props):
        for action in as_list(s.get("Action")):
            action = str(action)
            if action == "*":
                continue
            service = action.partition(":")[0]
            if not iam_data.service_exists(service):
                yield f"statement {_sid(s)}: unknown service prefix in {action}"
            elif not iam_data.actions_matching(action):
                yield f"statement {_sid(s)}: {action} is not an action of {service}"


@resource_rule(
    "iam-resource-arn-matches-action",
    POLICY_TYPES,
    why="An action granted only on ARNs of resource types it does not support is granted on nothing: the call fails in AWS.",
    fix="Use the ARN format the action's resource type documents, or Resource * for actions without resource-level permissions.",
)
def resource_arn_matches(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Every allowed action applies to one of the statement's resources, and every resource to one of its actions.

    Mirrors: none (IAM Access Analyzer policy validation: action does not apply to resource)
    """
    for s in _allow_statements(resource_type, props):
        resources = [str(r) for r in as_list(s.get("Resource"))]
        actions = [str(a) for a in as_list(s.get("Action"))]
        if not resources or "*" in resources or "*" in actions:
            continue
        arns = [r for r in resources if r.startswith("arn:")]
        used: set[str] = set()
        for action in actions:
            infos = iam_data.actions_matching(action)
            if not infos:
                continue  # iam-action-exists reports it
            applies = False
            for info in infos:
                for arn in arns:
                    if any(iam_data.arn_matches_format(arn, fmt) for fmt in info.arn_formats):
                        applies = True
                        used.add(arn)
            if not applies:
                if all(not info.arn_formats for info in infos):
                    yield f"statement {_sid(s)}: {action} supports no resource-level permissions; it needs Resource *"
                else:
                    yield f"statement {_sid(s)}: {action} applies to none of {', '.join(arns)}"
        for arn in arns:
            if arn not in used and any(iam_data.actions_matching(a) for a in actions):
                yield f"statement {_sid(s)}: resource {arn} matches no resource type of its actions ({', '.join(actions)})"


@resource_rule(
    "iam-restrictable-resource-star",
    POLICY_TYPES,
    level=Level.ADVISORY,
    why="An action that supports resource-level permissions, granted on *, reaches every resource of that type in the account.",
    fix="Replace * with the ARNs of the platform's resources (the component outputs name them).",
)
def restrictable_star(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Actions that support resource-level permissions are not granted on ``*``.

    Mirrors: CKV_AWS_355, CKV_AWS_288
    """
    for s in _allow_statements(resource_type, props):
        if "*" not in as_list(s.get("Resource")) or s.get("Condition"):
            continue
        restrictable = sorted(
            str(a)
            for a in as_list(s.get("Action"))
            if (infos := iam_data.actions_matching(str(a))) and all(i.arn_formats for i in infos)
        )
        if restrictable:
            yield f"statement {_sid(s)}: {', '.join(restrictable)} on * (they support resource ARNs)"


@resource_rule(
    "iam-s3-data-access-scoped",
    POLICY_TYPES,
    why="Object read/write on every bucket lets a job role (EMR, SageMaker, MWAA) exfiltrate or overwrite any data in the account.",
    fix="Scope s3:GetObject/PutObject/DeleteObject to the buckets and prefixes of the role's job class.",
)
def s3_data_scoped(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Job and service roles read and write only named buckets, never every bucket.

    Mirrors: CKV_AWS_288
    """
    data_actions = {"s3:getobject", "s3:putobject", "s3:deleteobject", "s3:get*", "s3:put*", "s3:*"}
    for s in _allow_statements(resource_type, props):
        actions = {str(a).lower() for a in as_list(s.get("Action"))}
        if not actions & data_actions:
            continue
        for res in as_list(s.get("Resource")):
            if res in ("*", "arn:aws:s3:::*", "arn:aws:s3:::*/*"):
                yield f"statement {_sid(s)}: S3 object access on {res}"
