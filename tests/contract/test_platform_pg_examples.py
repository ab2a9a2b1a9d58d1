"""The CloudNativePG and External Secrets examples (deploy/platform) agree with the code and
the base: one cluster per app's database, and ExternalSecrets producing exactly the Secrets
and keys deploy/k8s/config.yaml documents (the names the Deployments read)."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.stack import APPS
from tests.contract.test_deploy import documented_secrets

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ROOT / "deploy" / "platform"
CNPG = PLATFORM / "cloudnative-pg"
ESO = PLATFORM / "external-secrets"
OWNER = "whistle"  # the role in the documented DSNs


def load(folder: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((folder / name).read_text()) if d)
    return docs


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def cluster_problems(docs: list[dict[str, Any]]) -> list[str]:
    clusters = of_kind(docs, "Cluster")
    problems = []
    databases = {}
    for name, cluster in clusters.items():
        spec = cluster["spec"]
        if cluster["apiVersion"] != "postgresql.cnpg.io/v1":
            problems.append(f"{name}: apiVersion {cluster['apiVersion']}")
        initdb = spec.get("bootstrap", {}).get("initdb", {})
        databases[initdb.get("database")] = name
        if initdb.get("owner") != OWNER:
            problems.append(f"{name}: owner {initdb.get('owner')}")
        if spec.get("instances", 1) < 3:
            problems.append(f"{name}: fewer than 3 instances")
        if not spec.get("storage", {}).get("size"):
            problems.append(f"{name}: no storage size")
        if not spec.get("monitoring", {}).get("enablePodMonitor"):
            problems.append(f"{name}: not scraped")
        resources = spec.get("resources", {})
        if not all(
            resources.get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")
        ):
            problems.append(f"{name}: requests and limits")
    wanted = {f"whistle_{app}" for app in APPS}
    if set(databases) != wanted:
        problems.append(f"databases {sorted(map(str, databases))} != {sorted(wanted)}")
    return problems


def external_secret_problems(
    docs: list[dict[str, Any]], clusters: list[dict[str, Any]]
) -> list[str]:
    """The ExternalSecrets make exactly the documented Secrets and keys; the databases' DSNs
    come from the clusters' ``<cluster>-app`` Secrets, key ``uri``, through a store that is
    defined here and may read them."""
    problems = []
    found = {}
    stores = of_kind(docs, "SecretStore")
    by_database = {
        c["spec"]["bootstrap"]["initdb"]["database"]: name
        for name, c in of_kind(clusters, "Cluster").items()
    }
    for name, es in of_kind(docs, "ExternalSecret").items():
        spec = es["spec"]
        target = spec["target"].get("name", name)
        found[target] = {item["secretKey"] for item in spec.get("data", [])}
        ref = spec["secretStoreRef"]
        if ref["kind"] == "SecretStore" and ref["name"] not in stores:
            problems.append(f"{name}: store {ref['name']} is not defined")
        if target == "whistle-databases":
            for item in spec["data"]:
                cluster = by_database.get(f"whistle_{item['secretKey']}")
                remote = item["remoteRef"]
                if remote != {"key": f"{cluster}-app", "property": "uri"}:
                    problems.append(f"{item['secretKey']}: reads {remote}, not {cluster}-app uri")
            if ref["kind"] != "SecretStore" or ref["name"] not in stores:
                problems.append("whistle-databases: not from the in-cluster store")
    documented = {name: set(keys) for name, keys in documented_secrets().items()}
    if found != documented:
        problems.append(f"ExternalSecrets make {found}, config.yaml documents {documented}")
    return problems


def reader_problems(docs: list[dict[str, Any]]) -> list[str]:
    """The in-cluster store's ServiceAccount exists and is bound to a Role reading Secrets."""
    problems = []
    accounts, roles = of_kind(docs, "ServiceAccount"), of_kind(docs, "Role")
    bindings = of_kind(docs, "RoleBinding").values()
    for name, store in of_kind(docs, "SecretStore").items():
        account = store["spec"]["provider"]["kubernetes"]["auth"]["serviceAccount"]["name"]
        if account not in accounts:
            problems.append(f"{name}: no ServiceAccount {account}")
        bound = [
            b["roleRef"]["name"]
            for b in bindings
            if {"kind": "ServiceAccount", "name": account}.items() <= b["subjects"][0].items()
        ]
        reads = any(
            "secrets" in rule["resources"] and "get" in rule["verbs"]
            for role in bound
            for rule in roles.get(role, {}).get("rules", [])
        )
        if not reads:
            problems.append(f"{name}: {account} may not read Secrets")
    return problems


def reader_scope_problems(docs: list[dict[str, Any]], clusters: list[dict[str, Any]]) -> list[str]:
    """Least privilege: the in-cluster store's ServiceAccount may only ``get`` the clusters'
    ``<cluster>-app`` Secrets by name (list or watch would return every Secret in the
    namespace), plus the SelfSubjectRulesReview the store's readiness check creates."""
    problems = []
    wanted = sorted(f"{name}-app" for name in of_kind(clusters, "Cluster"))
    allowed_other = {("authorization.k8s.io", "selfsubjectrulesreviews"): ["create"]}
    roles, bindings = of_kind(docs, "Role"), of_kind(docs, "RoleBinding").values()
    for name, store in of_kind(docs, "SecretStore").items():
        account = store["spec"]["provider"]["kubernetes"]["auth"]["serviceAccount"]["name"]
        for binding in bindings:
            if not any(s.get("name") == account for s in binding["subjects"]):
                continue
            for rule in roles.get(binding["roleRef"]["name"], {}).get("rules", []):
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        if group in ("", "*") and resource in ("secrets", "*"):
                            if rule["verbs"] != ["get"]:
                                problems.append(f"{name}: {account} may {rule['verbs']} Secrets")
                            if sorted(rule.get("resourceNames", [])) != wanted:
                                problems.append(f"{name}: {account} reads Secrets beyond {wanted}")
                        elif allowed_other.get((group, resource)) != rule["verbs"]:
                            problems.append(f"{name}: {account} may {rule['verbs']} {resource}")
    return problems


def test_one_cloudnative_pg_cluster_per_database():
    assert cluster_problems(load(CNPG)) == []


def test_external_secrets_make_the_documented_secrets():
    assert external_secret_problems(load(ESO), load(CNPG)) == []
    assert reader_problems(load(ESO)) == []
    assert reader_scope_problems(load(ESO), load(CNPG)) == []


def test_the_checks_can_fail():
    clusters, secrets = load(CNPG), load(ESO)
    fewer = [d for d in clusters if d["metadata"]["name"] != "whistle-notify"]
    assert any("databases" in p for p in cluster_problems(fewer))
    wrong_owner = copy.deepcopy(clusters)
    wrong_owner[0]["spec"]["bootstrap"]["initdb"]["owner"] = "app"
    assert cluster_problems(wrong_owner)
    dropped = copy.deepcopy(secrets)
    auth = next(d for d in dropped if d["metadata"]["name"] == "whistle-auth")
    auth["spec"]["data"][0]["secretKey"] = "signing-key"
    assert any("documents" in p for p in external_secret_problems(dropped, clusters))
    crossed = copy.deepcopy(secrets)
    dbs = next(d for d in crossed if d["metadata"]["name"] == "whistle-databases")
    dbs["spec"]["data"][0]["remoteRef"]["key"] = "whistle-web-app"
    assert external_secret_problems(crossed, clusters)
    unbound = [d for d in secrets if d["kind"] != "RoleBinding"]
    assert reader_problems(unbound)


def reader_rule(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (role,) = of_kind(docs, "Role").values()
    return next(r for r in role["rules"] if "secrets" in r["resources"])


def test_the_reader_scope_check_can_fail():
    clusters = load(CNPG)
    listing = copy.deepcopy(load(ESO))
    reader_rule(listing)["verbs"] = ["get", "list", "watch"]
    assert any(
        "may ['get', 'list', 'watch']" in p for p in reader_scope_problems(listing, clusters)
    )
    unnamed = copy.deepcopy(load(ESO))
    del reader_rule(unnamed)["resourceNames"]
    assert any("beyond" in p for p in reader_scope_problems(unnamed, clusters))
    extra = copy.deepcopy(load(ESO))
    reader_rule(extra)["resourceNames"].append("whistle-auth")
    assert any("beyond" in p for p in reader_scope_problems(extra, clusters))
    wider = copy.deepcopy(load(ESO))
    (role,) = of_kind(wider, "Role").values()
    role["rules"].append({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]})
    assert any("configmaps" in p for p in reader_scope_problems(wider, clusters))


@pytest.mark.parametrize("folder", [CNPG, ESO], ids=lambda p: p.name)
def test_the_examples_build_with_kustomize(folder):
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with kustomize) is missing: see deploy/README.md and `make install`"
    built = subprocess.run(
        [kubectl, "kustomize", str(folder)], check=False, capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(built.stdout) if d]
    assert sorted(kinds) == sorted(d["kind"] for d in load(folder))
    assert "Secret" not in kinds, "an example Secret would overwrite the real one"
