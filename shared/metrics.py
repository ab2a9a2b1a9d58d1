"""Prometheus collectors shared by every service (labelled by service)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_BACKLOG = Gauge("whistle_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_UNSENT = Gauge(
    "whistle_outbox_oldest_unsent_seconds",
    "Age of the oldest outbox row not yet published and not parked (0: none waiting)",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "whistle_outbox_published_total", "Outbox rows published and acknowledged", ["service"]
)
OUTBOX_PUBLISH_FAILED = Counter(
    "whistle_outbox_publish_failed_total", "Outbox publish attempts that failed", ["service"]
)
OUTBOX_PARKED = Gauge(
    "whistle_outbox_parked_rows",
    "Outbox rows parked after their attempts (alert when > 0)",
    ["service"],
)
OUTBOX_PARKED_TOTAL = Counter(
    "whistle_outbox_parked_total", "Outbox rows parked after their attempts", ["service"]
)
CONSUMED = Counter(
    "whistle_events_consumed_total",
    "Events handled by a consumer, by outcome "
    "(handled, duplicate, skipped, dead_lettered, parked, retried)",
    ["service", "consumer", "type", "outcome"],
)
CONSUMER_LAG = Gauge(
    "whistle_consumer_lag_seconds",
    "Age of the last event a consumer handled",
    ["service", "consumer"],
)
TIMERS_DUE = Gauge("whistle_timers_due", "Durable timers due and not yet fired", ["service"])
TIMERS_FIRED = Counter("whistle_timers_fired_total", "Durable timers fired", ["service", "clock"])
OVERDUE_NOW = Gauge(
    "whistle_clocks_overdue_now",
    "Running clocks past their deadline now (the overdue board's count), by clock",
    ["service", "clock"],
)
OVERDUE = Counter(
    "whistle_clocks_overdue_total",
    "Assignment deadlines that passed (CaseOverdue published), by clock",
    ["service", "clock"],
)
DELIVERIES = Counter(
    "whistle_deliveries_total",
    "Notification delivery attempts by channel and outcome",
    ["service", "channel", "outcome"],
)
DELIVERY_ATTEMPT_SECONDS = Histogram(
    "whistle_delivery_attempt_seconds",
    "Time one delivery attempt took, by channel and outcome",
    ["service", "channel", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
DELIVERY_FALLBACKS = Counter(
    "whistle_delivery_fallbacks_total",
    "Deliveries handed to the recipient's next channel after one gave up",
    ["service", "from_channel", "to_channel"],
)
DELIVERY_DIGESTS = Counter(
    "whistle_delivery_digests_total",
    "Digests sent to a rate-limited robot instead of single messages",
    ["service", "channel"],
)
PARKED = Counter(
    "whistle_events_parked_total",
    "Messages a consumer kept in its parked_events table instead of dropping them, by reason "
    "(unknown_type, unknown_version, dead_letter_failed, dead_letter_oversize)",
    ["service", "consumer", "reason"],
)
