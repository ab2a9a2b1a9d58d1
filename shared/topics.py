"""``python -m shared.topics``: create Whistle's topics on a Kafka cluster (idempotent).

Used as a one-shot step in docker-compose and Kubernetes; the embedded stack calls
``shared.broker.ensure_topics`` directly.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from shared.broker import ensure_topics
from shared.contract import Topics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument(
        "--partitions", type=int, default=int(os.environ.get("KAFKA_PARTITIONS", "6"))
    )
    parser.add_argument(
        "--replication", type=int, default=int(os.environ.get("KAFKA_REPLICATION_FACTOR", "1"))
    )
    args = parser.parse_args()
    if not args.bootstrap:
        parser.error("set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap")
    created = asyncio.run(
        ensure_topics(args.bootstrap, Topics.ALL, args.partitions, args.replication)
    )
    print("created:", ", ".join(created) if created else "nothing (all topics exist)")


if __name__ == "__main__":
    main()
