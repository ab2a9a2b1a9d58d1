"""What a platform team checks before it accepts the Kubernetes manifests, on what is applied:
the kustomize build of the base and of every overlay in deploy/overlays (kubectl's kustomize,
the same one `kubectl apply -k` uses). Pod Security "restricted" on every container (init and
the topics Job included), requests and limits, pinned images, no API token, a disruption
budget, an autoscaler and a network policy per Deployment, a re-runnable Job, no Secret."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (ROOT / "deploy" / "overlays").glob("*/kustomization.yaml"))
BUILDS = [BASE, *OVERLAYS]
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}

Doc = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found, "kubectl (with Kustomize v5) is needed: see `make deploy-checks`"
    return found


def kustomize(directory: Path) -> str:
    """The manifests `kubectl apply -k directory` would apply, as YAML text."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kustomize {directory}: {result.stderr[-3000:]}"
    return result.stdout


def build(directory: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(kustomize(directory)) if d]


def build_id(directory: Path) -> str:
    return directory.relative_to(ROOT).as_posix()


def pods(docs: list[Doc]) -> list[tuple[str, Doc]]:
    """(kind/name, pod spec) of every workload."""
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]


def containers(pod: Doc) -> list[Doc]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def workload_labels(docs: list[Doc]) -> list[tuple[str, dict[str, str]]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["metadata"]["labels"])
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    ]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    return bool(selector["matchLabels"]) and selector["matchLabels"].items() <= labels.items()


@pytest.fixture(scope="module", params=BUILDS, ids=build_id)
def built(request: pytest.FixtureRequest) -> list[Doc]:
    return build(request.param)


def test_there_is_a_dev_and_a_prod_overlay() -> None:
    assert {p.name for p in OVERLAYS} >= {"dev", "prod", "prod-strimzi"}


def test_every_pod_meets_pod_security_restricted(built: list[Doc]) -> None:
    assert pods(built)
    for name, pod in pods(built):
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] > 0 and context["runAsGroup"] > 0, name
        assert context["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost"), name
        assert pod["automountServiceAccountToken"] is False, name
        for c in containers(pod):
            assert RESTRICTED.items() <= c["securityContext"].items(), (name, c["name"])
            assert not c["securityContext"].get("privileged"), (name, c["name"])
            # the root filesystem is read-only: /tmp (multipart spooling) is a volume
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, (name, c["name"])


def test_every_container_has_cpu_and_memory_requests_and_limits(built: list[Doc]) -> None:
    for name, pod in pods(built):
        for c in containers(pod):
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (name, c["name"], kind)


def test_images_are_pinned_and_pulled(built: list[Doc]) -> None:
    for name, pod in pods(built):
        for c in containers(pod):
            image = c["image"]
            tag = image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
            assert tag and tag != "latest", f"{name} {c['name']}: {image} has no pinned tag"
            assert c["imagePullPolicy"] == "Always", (name, c["name"])


def test_every_workload_has_a_network_policy(built: list[Doc]) -> None:
    policies = [d["spec"]["podSelector"] for d in built if d["kind"] == "NetworkPolicy"]
    for name, labels in workload_labels(built):
        assert any(selects(s, labels) for s in policies), f"no NetworkPolicy selects {name}"


# The dev overlay runs one replica: no autoscaler, and no budget (it would block node drains).
@pytest.mark.parametrize("directory", [b for b in BUILDS if b.name != "dev"], ids=build_id)
def test_every_deployment_has_a_disruption_budget_and_an_autoscaler(directory: Path) -> None:
    docs = build(directory)
    budgets = [d["spec"]["selector"] for d in docs if d["kind"] == "PodDisruptionBudget"]
    autoscaled = {
        d["spec"]["scaleTargetRef"]["name"]: d["spec"]
        for d in docs
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    for name, labels in workload_labels(docs):
        if name.startswith("Deployment/"):
            assert any(selects(s, labels) for s in budgets), f"no PodDisruptionBudget for {name}"
            hpa = autoscaled[name.partition("/")[2]]
            # a consumer beyond the topics' 6 partitions would sit idle
            assert 1 < hpa["minReplicas"] <= hpa["maxReplicas"] <= 6, name


def test_the_topics_job_can_be_applied_again(built: list[Doc]) -> None:
    """A Job's pod template is immutable: the finished Job removes itself, so the next
    apply creates it anew instead of failing on the changed template."""
    jobs = [d for d in built if d["kind"] == "Job"]
    for job in jobs:  # (under Strimzi's Topic Operator an overlay leaves the Job out)
        assert 0 < job["spec"].get("ttlSecondsAfterFinished", 0) <= 3600
        assert job["spec"]["backoffLimit"] >= 1


def test_the_base_has_the_topics_job() -> None:
    assert [d["metadata"]["name"] for d in build(BASE) if d["kind"] == "Job"] == ["whistle-topics"]


def topics_replication(docs: list[Doc]) -> int:
    """The replication factor the topics Job passes to shared/topics.py: its --replication
    flag, else KAFKA_REPLICATION_FACTOR from its environment (ConfigMaps and env), else 1."""
    (job,) = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == "whistle-topics"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    argv = [*container["command"], *container.get("args", [])]
    if "--replication" in argv:
        return int(argv[argv.index("--replication") + 1])
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return int(env.get("KAFKA_REPLICATION_FACTOR", "1"))


@pytest.mark.parametrize(
    ("directory", "replication"),
    [
        (BASE, 3),
        (ROOT / "deploy" / "overlays" / "prod", 3),
        (ROOT / "deploy" / "overlays" / "dev", 1),
    ],
    ids=lambda v: build_id(v) if isinstance(v, Path) else str(v),
)
def test_the_topics_job_replicates_as_the_cluster_allows(directory: Path, replication: int) -> None:
    """Three replicas in production; the dev overlay's one broker cannot hold more than one
    (a higher factor fails the Job on every try)."""
    assert topics_replication(build(directory)) == replication


def test_nothing_applied_is_a_secret(built: list[Doc]) -> None:
    """An example Secret would overwrite the real one on every apply."""
    assert not [d for d in built if d["kind"] == "Secret"]


def test_the_ingress_serves_the_console_over_tls(built: list[Doc]) -> None:
    (ingress,) = [d for d in built if d["kind"] == "Ingress"]
    services = {d["metadata"]["name"]: d for d in built if d["kind"] == "Service"}
    spec = ingress["spec"]
    assert spec["ingressClassName"]
    hosts = {r["host"] for r in spec["rules"]}
    assert hosts <= {h for t in spec["tls"] for h in t["hosts"]}
    for rule in spec["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "web" and backend["name"] in services


def test_metrics_are_served_on_a_port_no_service_and_no_ingress_reaches(built: list[Doc]) -> None:
    """/metrics lives on METRICS_PORT (shared/settings.py): each serving container names that
    port ``metrics``, the scrape annotation points at it, no Service exposes it (so the
    Ingress cannot), and only the monitoring namespace may open it."""
    (config,) = [d for d in built if d["kind"] == "ConfigMap" and "METRICS_PORT" in d["data"]]
    port = int(config["data"]["METRICS_PORT"])
    exposed = {
        p.get("targetPort") for d in built if d["kind"] == "Service" for p in d["spec"]["ports"]
    }
    for d in built:
        if d["kind"] != "Deployment":
            continue
        template = d["spec"]["template"]
        (serving,) = template["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in serving["ports"]}
        assert ports.get("metrics") == port, d["metadata"]["name"]
        assert ports["http"] != port
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert exposed and not exposed & {"metrics", port}, "a Service exposes the metrics port"
    for policy in (d for d in built if d["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            opened = {p["port"] for p in rule.get("ports", [])}
            monitoring = any(
                f.get("namespaceSelector", {})
                .get("matchLabels", {})
                .get("kubernetes.io/metadata.name")
                == "monitoring"
                for f in rule["from"]
            )
            assert opened == ({"metrics"} if monitoring else {"http"}), policy["metadata"]["name"]


def test_the_namespace_enforces_restricted(built: list[Doc]) -> None:
    (namespace,) = [d for d in built if d["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize(
    "overlay", [p for p in OVERLAYS if p.name.startswith("prod")], ids=build_id
)
def test_prod_leaves_replicas_to_the_autoscaler_and_spreads_pods(overlay: Path) -> None:
    docs = build(overlay)
    for d in (d for d in docs if d["kind"] == "Deployment"):
        assert "replicas" not in d["spec"], d["metadata"]["name"]
        spread = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
        for c in d["spec"]["template"]["spec"]["containers"]:
            assert "/" in c["image"], "prod pulls from a named registry"


def test_dev_runs_one_replica_without_autoscaling() -> None:
    docs = build(ROOT / "deploy" / "overlays" / "dev")
    assert {d["spec"]["replicas"] for d in docs if d["kind"] == "Deployment"} == {1}
    assert not [d for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")]


@pytest.mark.parametrize(
    ("breakage", "check"),
    [
        pytest.param(
            ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
            test_every_pod_meets_pod_security_restricted,
            id="writable-root",
        ),
        pytest.param(
            ("image: whistle:0.1.0", "image: whistle:latest"),
            test_images_are_pinned_and_pulled,
            id="latest",
        ),
        pytest.param(
            ("limits: {cpu: 500m, memory: 384Mi}", "limits: {memory: 384Mi}"),
            test_every_container_has_cpu_and_memory_requests_and_limits,
            id="no-cpu-limit",
        ),
        pytest.param(
            ("automountServiceAccountToken: false", "automountServiceAccountToken: true"),
            test_every_pod_meets_pod_security_restricted,
            id="api-token-mounted",
        ),
        pytest.param(
            ("  - networkpolicy.yaml\n", ""),
            test_every_workload_has_a_network_policy,
            id="no-network-policy",
        ),
        pytest.param(
            ("kind: ConfigMap", "kind: Secret"),
            test_nothing_applied_is_a_secret,
            id="a-secret",
        ),
        pytest.param(
            ("ttlSecondsAfterFinished: 600", "suspend: false"),
            test_the_topics_job_can_be_applied_again,
            id="job-without-ttl",
        ),
    ],
)
def test_the_checks_catch_a_broken_base(
    tmp_path: Path, breakage: tuple[str, str], check: Any
) -> None:
    """Negative control: each check fails on a copy of the base with one thing broken."""
    copy = tmp_path / "k8s"
    shutil.copytree(BASE, copy)
    old, new = breakage
    changed = 0
    for path in copy.glob("*.yaml"):
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new))
            changed += 1
    assert changed, f"the breakage {old!r} matched nothing"
    with pytest.raises(AssertionError):
        check(build(copy))
