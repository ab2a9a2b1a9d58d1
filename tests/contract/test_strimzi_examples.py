"""The Strimzi examples and the kafka-tls-scram component agree with the code: the topics are
``Topics.ALL``, each service's KafkaUser may do what its consumers and publishers do, and the
component, built on the base with kustomize, hands every Kafka client the settings it reads."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.broker import consumers_of
from shared.contract import Topics
from shared.settings import BaseServiceSettings
from shared.topics import OWN_ENV as TOPICS_JOB_ENV

ROOT = Path(__file__).resolve().parents[2]
STRIMZI = ROOT / "deploy" / "platform" / "strimzi"
COMPONENT = ROOT / "deploy" / "components" / "kafka-tls-scram"
DSN = "postgresql://u:p@localhost/db"
OWN_TOPIC = {
    "intake": Topics.INTAKE,
    "dispatch": Topics.DISPATCH,
    "tracking": Topics.TRACKING,
    "notify": Topics.NOTIFY,
}


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for f in sorted(STRIMZI.glob("*.yaml")) for d in docs(f) if d["kind"] == kind]


def test_the_cluster_has_a_tls_scram_listener_and_acls() -> None:
    (kafka,) = of_kind("Kafka")
    listeners = kafka["spec"]["kafka"]["listeners"]
    tls = [x for x in listeners if x["port"] == 9093]
    assert tls and tls[0]["tls"] is True
    assert tls[0]["authentication"]["type"] == "scram-sha-512"
    assert all(x["tls"] for x in listeners), "no plaintext listener"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert "kafkaExporter" in kafka["spec"]
    pools = of_kind("KafkaNodePool")
    assert pools and all(p["metadata"]["labels"]["strimzi.io/cluster"] == "whistle" for p in pools)


# The first Strimzi release supporting each Kafka version (strimzi.io/downloads).
FIRST_STRIMZI = {"3.9.0": (0, 45), "4.0.0": (0, 46), "4.1.0": (0, 48)}


def header_problems(text: str, kafka: dict[str, Any]) -> list[str]:
    """The header of kafka.yaml names a Strimzi release that runs its Kafka version, and,
    when the Topic and User Operators watch another namespace than the cluster's, says the
    Cluster Operator must watch that namespace too."""
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    problems = []
    found = re.search(r"Strimzi \((\d+)\.(\d+)\+", header)
    version = kafka["spec"]["kafka"]["version"]
    if not found or (int(found[1]), int(found[2])) < FIRST_STRIMZI[version]:
        problems.append(
            f"Kafka {version} needs Strimzi {'.'.join(map(str, FIRST_STRIMZI[version]))}+"
        )
    entity = kafka["spec"]["entityOperator"]
    for operator in ("topicOperator", "userOperator"):
        watched = entity[operator].get("watchedNamespace", kafka["metadata"]["namespace"])
        said = re.search(rf"Cluster Operator must also watch the `{watched}` namespace", header)
        if watched != kafka["metadata"]["namespace"] and not said:
            problems.append(f"{operator} watches {watched}: the header does not say so")
    return problems


def test_the_header_names_the_operator_it_needs() -> None:
    path = STRIMZI / "kafka.yaml"
    (kafka,) = [d for d in docs(path) if d["kind"] == "Kafka"]
    assert header_problems(path.read_text(), kafka) == []
    old = "# An example Strimzi (0.45+, KRaft) Kafka cluster for Whistle\n"
    assert header_problems(old, kafka), "the check can fail"


def test_the_topics_are_the_contracts() -> None:
    topics = of_kind("KafkaTopic")
    assert sorted(t["metadata"]["name"] for t in topics) == sorted(Topics.ALL)
    assert all(t["spec"]["replicas"] >= 3 and t["spec"]["partitions"] >= 6 for t in topics)


def _acls(user: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {
        (a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"], op)
        for a in user["spec"]["authorization"]["acls"]
        for op in a["operations"]
    }


def _allowed(acls: set[tuple[str, str, str, str]], kind: str, name: str, op: str) -> bool:
    return any(
        k == kind and o == op and (n == name if p == "literal" else name.startswith(n))
        for k, n, p, o in acls
    )


@pytest.mark.parametrize("service", sorted(OWN_TOPIC))
def test_each_service_user_may_do_what_its_code_does(service: str) -> None:
    users = {u["metadata"]["name"]: u for u in of_kind("KafkaUser")}
    assert set(users) == {f"whistle-{s}" for s in OWN_TOPIC}
    user = users[f"whistle-{service}"]
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    acls = _acls(user)
    main = importlib.import_module(f"services.{service}.main")
    config = importlib.import_module(f"services.{service}.config")
    app = main.create_app(config.Settings(database_url=DSN, environment="test"))
    consumers = consumers_of(app.state.runtime.broker)
    for consumer in consumers:
        assert _allowed(acls, "group", consumer.group_id, "Read"), consumer.group_id
        for topic in consumer.topics:
            assert _allowed(acls, "topic", topic, "Read"), (consumer.group_id, topic)
    for topic in (OWN_TOPIC[service], Topics.DEAD_LETTER):
        assert _allowed(acls, "topic", topic, "Write"), topic
    assert _allowed(acls, "topic", Topics.DEAD_LETTER, "Read")  # ops dead-letters
    # least privilege: no other service's groups, no writes elsewhere, no wildcards
    others = [s for s in OWN_TOPIC if s != service]
    assert not any(_allowed(acls, "group", f"whistle-{s}-x", "Read") for s in others)
    assert not any(_allowed(acls, "topic", OWN_TOPIC[s], "Write") for s in others)
    assert not any(n == "*" for _, n, _, _ in acls)


def test_the_acl_check_can_fail() -> None:
    """A negative control: a user without the group prefix is caught."""
    acls = {("topic", Topics.INTAKE, "literal", "Read")}
    assert not _allowed(acls, "group", "whistle-tracking-timeline", "Read")
    assert not _allowed(acls, "topic", Topics.INTAKE, "Write")
    assert _allowed(
        {("group", "whistle-tracking-", "prefix", "Read")}, "group", "whistle-tracking-a", "Read"
    )


def build(overlay: Path, components: list[Path]) -> list[dict[str, Any]]:
    """``kubectl kustomize`` of the base plus ``components``, from an overlay in ``overlay``."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with kustomize v5) is needed: see `make deploy-checks`"
    rel = lambda p: os.path.relpath(p, overlay)  # noqa: E731 - kustomize refuses absolute paths
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [rel(ROOT / "deploy" / "k8s")],
                "components": [rel(c) for c in components],
            }
        )
    )
    out = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return build(tmp_path_factory.mktemp("overlay"), [COMPONENT])


def _env(container: dict[str, Any], config: dict[str, str]) -> dict[str, Any]:
    env: dict[str, Any] = dict(config)  # envFrom whistle-config, then env overrides
    for e in container.get("env", []):
        env[e["name"]] = e.get("value", e.get("valueFrom"))
    return env


def test_the_component_connects_every_kafka_client(built: list[dict[str, Any]]) -> None:
    check_connects(built)


def test_the_base_alone_does_not_pass_the_check(tmp_path: Path) -> None:
    """A negative control: without the component the services would talk plaintext."""
    base = [d for d in build(tmp_path, []) if d["kind"] != "Job"]
    with pytest.raises(AssertionError, match="plaintext"):
        check_connects(base)


def check_connects(built: list[dict[str, Any]]) -> None:
    (config,) = [
        d for d in built if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "whistle-config"
    ]
    assert not [d for d in built if d["kind"] == "Job"], "the Topic Operator makes the topics"
    settings = {name.upper() for name in BaseServiceSettings.model_fields}
    settings |= TOPICS_JOB_ENV  # the ConfigMap's settings of the topics Job (Strimzi: unused)
    deployments = {d["metadata"]["name"]: d for d in built if d["kind"] == "Deployment"}
    assert set(OWN_TOPIC) < set(deployments)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"] + pod.get("initContainers", []):
            env = _env(container, config["data"])
            kafka_env = {k for k in env if k.startswith("KAFKA_")}
            assert kafka_env <= settings, kafka_env - settings
            if name not in OWN_TOPIC:  # the gateway has no Kafka client
                assert env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") == "PLAINTEXT", name
                continue
            assert env.get("KAFKA_SECURITY_PROTOCOL") == "SASL_SSL", (name, "plaintext")
            assert env["KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")
            assert env["KAFKA_SASL_USERNAME"] == f"whistle-{name}"
            secret = env["KAFKA_SASL_PASSWORD"]["secretKeyRef"]
            assert secret == {"name": f"whistle-{name}", "key": "password"}
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            ca_dir = str(Path(env["KAFKA_SSL_CAFILE"]).parent)
            assert mounts[ca_dir]["readOnly"] is True, (name, container["name"])
            ca = volumes[mounts[ca_dir]["name"]]["secret"]
            assert ca["secretName"] == "whistle-cluster-ca-cert"
            assert {"key": "ca.crt", "path": Path(env["KAFKA_SSL_CAFILE"]).name} in ca["items"]
