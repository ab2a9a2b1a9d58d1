"""``python -m shared.topics``: create Whistle's topics on a Kafka cluster (idempotent).

Used as a one-shot step in docker-compose and Kubernetes; the embedded stack calls
``shared.broker.ensure_topics`` directly. Connects with the services' TLS/SASL settings
(``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*``, ``KAFKA_SSL_*``; see shared/kafka_security.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from pydantic import ValidationError

from shared.broker import ensure_topics
from shared.contract import Topics
from shared.kafka_security import KafkaSecurity

# Read by this command only (the services have no such settings): the shared ConfigMap
# (deploy/k8s/config.yaml) carries them for the topics Job.
PARTITIONS_ENV = "KAFKA_PARTITIONS"
REPLICATION_ENV = "KAFKA_REPLICATION_FACTOR"
OWN_ENV = frozenset({PARTITIONS_ENV, REPLICATION_ENV})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--partitions", type=int, default=int(os.environ.get(PARTITIONS_ENV, "6")))
    parser.add_argument(
        "--replication", type=int, default=int(os.environ.get(REPLICATION_ENV, "1"))
    )
    args = parser.parse_args()
    if not args.bootstrap:
        parser.error("set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap")
    try:
        security = KafkaSecurity()
    except ValidationError as exc:
        parser.error(f"Kafka security settings: {exc}")
    created = asyncio.run(
        ensure_topics(
            args.bootstrap, Topics.ALL, args.partitions, args.replication, security=security
        )
    )
    print("created:", ", ".join(created) if created else "nothing (all topics exist)")


if __name__ == "__main__":
    main()
