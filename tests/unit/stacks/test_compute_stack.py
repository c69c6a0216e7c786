"""The compute and analytics layer in the real stacks (dev, staging, prod) and in `mlops synth`."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlops_cli.main import app
from stacks.platform import OUTPUT_KEYS
from stacks.synth import SynthResult
from tests.unit.components._helpers import as_list, policy, statements

ROOT = Path(__file__).resolve().parents[3]
COMPUTE_OUTPUT_KEYS = (
    "clusterName", "clusterEndpoint", "clusterOidcIssuerUrl", "clusterOidcProviderArn", "kubeconfig",
    "emrVirtualClusterId", "emrJobExecutionRoleArn", "emrLogGroupName", "emrLogsS3Uri", "emrVirtualClusterIds",
    "emrJobExecutionRoleArns", "emrStudioId", "emrStudioUrl", "glueDatabaseName", "glueCuratedTable",
    "glueFeaturesTable", "glueCaptureTable", "athenaWorkgroup",
)  # fmt: skip
LAYER_TYPES = {
    "mlops:cluster:Cluster",
    "mlops:spark:SparkOnEks",
    "mlops:studio:EmrStudio",
    "mlops:analytics:Analytics",
    "aws:eks/cluster:Cluster",
    "aws:eks/nodeGroup:NodeGroup",
    "aws:eks/addon:Addon",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    "aws:emrcontainers/virtualCluster:VirtualCluster",
    "aws:emr/studio:Studio",
    "kubernetes:core/v1:Namespace",
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "aws:glue/catalogDatabase:CatalogDatabase",
    "aws:glue/catalogTable:CatalogTable",
    "aws:athena/workgroup:Workgroup",
    "aws:athena/namedQuery:NamedQuery",
}


def test_synth_prod_json_includes_the_layer() -> None:
    result = CliRunner().invoke(app, ["synth", "--stack", "prod", "--json"])
    assert result.exit_code == 0, result.output
    resources = json.loads(result.stdout)
    assert {r["type"] for r in resources} >= LAYER_TYPES
    cluster = next(r for r in resources if r["type"] == "aws:eks/cluster:Cluster")
    assert cluster["inputs"]["vpcConfig"]["endpointPublicAccess"] is False
    assert cluster["inputs"]["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster["inputs"]["deletionProtection"] is True  # prod protects data and the cluster


def test_outputs_are_documented_and_present(each_stack: SynthResult) -> None:
    assert set(COMPUTE_OUTPUT_KEYS) <= set(OUTPUT_KEYS)
    assert set(COMPUTE_OUTPUT_KEYS) <= set(each_stack.outputs)
    undocumented = set(each_stack.outputs) - set(OUTPUT_KEYS)
    assert not undocumented, f"outputs missing from OUTPUT_KEYS: {sorted(undocumented)}"
    out = each_stack.outputs
    assert out["clusterName"] == f"mlops-{each_stack.stack}"
    assert out["clusterOidcProviderArn"].endswith(out["clusterOidcIssuerUrl"].removeprefix("https://"))
    assert out["emrJobExecutionRoleArn"].endswith(f":role/mlops-{each_stack.stack}-features-emr-job")
    assert out["glueDatabaseName"] == f"mlops_{each_stack.stack}_lake"
    assert out["athenaWorkgroup"] == f"mlops-{each_stack.stack}-analytics"
    assert out["emrStudioUrl"].startswith("https://")
    assert json.loads(out["kubeconfig"])["current-context"] == out["clusterName"]


def test_layer_is_wired_to_the_foundation(each_stack: SynthResult) -> None:
    out = each_stack.outputs
    cluster = each_stack.of_type("aws:eks/cluster:Cluster")[0].inputs
    assert cluster["vpcConfig"]["subnetIds"] == out["privateSubnetIds"]
    assert cluster["encryptionConfig"]["provider"]["keyArn"] == out["computeKeyArn"] != out["mlKeyArn"]
    for group in each_stack.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert group.inputs["subnetIds"] == out["privateSubnetIds"]
        assert not set(group.inputs["subnetIds"]) & set(out["publicSubnetIds"])
    [vc] = each_stack.of_type("aws:emrcontainers/virtualCluster:VirtualCluster")
    assert vc.inputs["containerProvider"]["id"] == out["clusterName"]
    [wg] = each_stack.of_type("aws:athena/workgroup:Workgroup")
    result_conf = wg.inputs["configuration"]["resultConfiguration"]
    assert result_conf["outputLocation"] == f"s3://{out['artifactsBucket']}/athena-results/"
    assert result_conf["encryptionConfiguration"] == {
        "encryptionOption": "SSE_KMS",
        "kmsKeyArn": out["mlKeyArn"],
    }
    assert result_conf["expectedBucketOwner"] == out["accountId"]
    job = {
        s["Sid"]: s
        for s in statements(policy(each_stack.named(f"mlops-{each_stack.stack}-features-job-permissions")))
    }
    assert job["ReadLakePrefixes"]["Resource"] == [
        f"{out['curatedBucketArn']}/curated/*",
        f"{out['artifactsBucketArn']}/code/*",
        f"{out['artifactsBucketArn']}/models/*",
        f"{out['captureBucketArn']}/datacapture/*",  # Spark drift reads the data capture
        f"{out['featuresBucketArn']}/features/*",
        f"{out['featuresBucketArn']}/predictions/*",
        f"{out['artifactsBucketArn']}/monitoring/*",
    ]
    assert job["WriteLakePrefixes"]["Resource"] == [
        f"{out['featuresBucketArn']}/features/*",
        f"{out['featuresBucketArn']}/predictions/*",
        f"{out['artifactsBucketArn']}/monitoring/*",  # ... and writes its state beside the report
    ]
    assert out["rawBucketArn"] not in json.dumps(job)
    assert job["UseLakeKeys"]["Resource"] == [out["dataLakeKeyArn"], out["mlKeyArn"]]


def test_no_iam_policy_of_the_layer_grants_wildcard_actions(each_stack: SynthResult) -> None:
    layer = {
        r.urn
        for r in each_stack.resources
        if r.type
        in {
            "mlops:cluster:Cluster",
            "mlops:spark:SparkOnEks",
            "mlops:studio:EmrStudio",
            "mlops:analytics:Analytics",
        }
    }
    checked = 0
    for rp in each_stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        if rp.parent not in layer:
            continue
        for s in statements(policy(rp)):
            checked += 1
            actions = as_list(s["Action"])
            assert not [a for a in actions if "*" in a], f"{rp.name}: wildcard action {actions}"
            if "*" in as_list(s["Resource"]):
                describe_only = all(":Describe" in a for a in actions)
                tag_conditioned = "aws:ResourceTag/" in json.dumps(s.get("Condition", {}))
                assert describe_only or tag_conditioned, f"{rp.name}/{s.get('Sid')}: '*' resource"
    assert checked > 20
    for role in each_stack.of_type("aws:iam/role:Role"):
        if role.parent in layer:
            for s in statements(policy(role, "assumeRolePolicy")):
                assert s["Principal"] not in ("*", {"AWS": "*"}), role.name


def test_per_environment_sizes_and_protection(synth_stack) -> None:
    def groups(stack: str) -> dict[str, dict]:
        return {g.name: g.inputs for g in synth_stack(stack).of_type("aws:eks/nodeGroup:NodeGroup")}

    dev, prod = groups("dev"), groups("prod")
    assert dev["mlops-dev-spark"]["capacityType"] == "SPOT"
    assert (
        dev["mlops-dev-system"]["scalingConfig"]["maxSize"]
        < prod["mlops-prod-system"]["scalingConfig"]["maxSize"]
    )
    assert (
        dev["mlops-dev-spark"]["scalingConfig"]["maxSize"]
        < prod["mlops-prod-spark"]["scalingConfig"]["maxSize"]
    )
    dev_cluster = synth_stack("dev").of_type("aws:eks/cluster:Cluster")[0].inputs
    assert dev_cluster["deletionProtection"] is False
    dev_wg = synth_stack("dev").of_type("aws:athena/workgroup:Workgroup")[0].inputs
    prod_wg = synth_stack("prod").of_type("aws:athena/workgroup:Workgroup")[0].inputs
    assert dev_wg["forceDestroy"] is True
    assert prod_wg["forceDestroy"] is False
    assert dev_wg["configuration"]["bytesScannedCutoffPerQuery"] == 1024 * 1024 * 1024


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
@pytest.mark.parametrize("model", ["churn", "housing"])
def test_glue_tables_follow_the_shipped_dataset_contract(stack: str, model: str, synth_stack) -> None:
    """Each model's tables take their schema from the contract file its catalog entry names."""
    contract = yaml.safe_load((ROOT / "contracts" / f"{model}.yaml").read_text())
    types = {
        "integer": "bigint",
        "float": "double",
        "string": "string",
        "boolean": "boolean",
        "datetime": "timestamp",
    }
    tables = {
        t.inputs["name"]: t.inputs for t in synth_stack(stack).of_type("aws:glue/catalogTable:CatalogTable")
    }
    curated = [(c["name"], c["type"]) for c in tables[f"{model}_curated"]["storageDescriptor"]["columns"]]
    assert curated == [(c["name"], types[c["type"]]) for c in contract["columns"]]
    assert tables[f"{model}_curated"]["storageDescriptor"]["location"].endswith(f"/curated/{model}/")
    assert tables[f"{model}_capture"]["storageDescriptor"]["location"].endswith(f"/datacapture/{model}/")
    feature_names = [c["name"] for c in tables[f"{model}_features"]["storageDescriptor"]["columns"]]
    features = contract["features"]
    model_inputs = features["numeric"] + [d["name"] for d in features["derived"]] + features["categorical"]
    assert set(model_inputs) | {contract["target"]} <= set(feature_names)


def test_reference_docs_cover_the_new_components() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    blocks = generate.api_blocks("components")
    for module in ("components.cluster", "components.spark", "components.analytics"):
        assert f"::: {module}" in blocks
    assert "::: stacks.compute" in generate.api_blocks("stacks")
    assert "::: stacks.config.compute" in generate.api_blocks("stacks")
    table = generate.config_table()
    for key in ("cluster.publicAccessCidrs", "spark.jobClasses", "analytics.bytesScannedCutoffMb"):
        assert f"mlops-platform:{key}" in table
    assert "`kubeconfig`" in generate.outputs_table()
    # every public class and function of the layer has a docstring (mkdocstrings renders them)
    import components.analytics
    import components.cluster
    import components.spark
    import stacks.compute
    import stacks.config.compute

    for module in (
        components.cluster,
        components.spark,
        components.analytics,
        stacks.compute,
        stacks.config.compute,
    ):
        assert module.__doc__
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert obj.__doc__, f"{module.__name__}.{name} has no docstring"
    page = (ROOT / "docs" / "compute-and-analytics.md").read_text()
    for topic in ("IRSA", "StartJobRun", "emrVirtualClusterId", "Athena", "EMR Studio"):
        assert topic in page


@pytest.mark.parametrize(("stack", "owned"), [("dev", False), ("staging", False), ("prod", True)])
def test_glue_catalog_encryption_is_owned_by_prod_with_the_lake_key(
    synth_stack, stack: str, owned: bool
) -> None:
    # issue 12 item 19: account-level settings, one owner per account and region (default: prod)
    result = synth_stack(stack)
    settings = result.of_type("aws:glue/dataCatalogEncryptionSettings:DataCatalogEncryptionSettings")
    assert bool(settings) is owned
    if owned:
        [s] = settings
        body = s.inputs["dataCatalogEncryptionSettings"]
        lake_key = result.outputs["dataLakeKeyArn"]
        assert body["encryptionAtRest"] == {"catalogEncryptionMode": "SSE-KMS", "sseAwsKmsKeyId": lake_key}
        assert body["connectionPasswordEncryption"] == {
            "returnConnectionPasswordEncrypted": True,
            "awsKmsKeyId": lake_key,
        }


def test_catalog_encryption_owner_is_chosen_in_config() -> None:
    from stacks.config import parse_config

    valid = {"environment": "dev", "region": "us-east-1", "owner": "o", "costCenter": "c"}
    assert parse_config(valid).analytics.catalog_encryption_owned("dev") is False
    assert parse_config(valid).analytics.catalog_encryption_owned("prod") is True
    cfg = parse_config({**valid, "analytics": {"ownsCatalogEncryption": True}})
    assert cfg.analytics.catalog_encryption_owned("dev") is True
    cfg = parse_config({**valid, "analytics": {"ownsCatalogEncryption": False}})
    assert cfg.analytics.catalog_encryption_owned("prod") is False


@pytest.mark.parametrize(("stack", "created"), [("dev", True), ("staging", True), ("prod", True)])
def test_in_vpc_deployer_security_group_per_stack(synth_stack, stack: str, created: bool) -> None:
    # issue 12 items 1 and 8: after the bootstrap phase, applies (the promote builds) run in the VPC through this
    # group; every shipped stack promotes, so every one has it
    out = synth_stack(stack).outputs
    rules = synth_stack(stack).of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    api_rules = [r for r in rules if r.name.endswith("-api-from-clients")]
    assert bool(out["clusterApiClientSecurityGroupId"]) is created
    assert len(api_rules) == int(created)
