"""OpenTelemetry tracing across HTTP and Kafka hops, off unless an exporter is configured.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or
``OTEL_TRACES_EXPORTER=otlp|console``) set, ``configure`` installs the SDK's tracer provider
once per process (resource ``service.name=whistle-<service>``, OTLP over HTTP, every
``OTEL_EXPORTER_OTLP_*`` variable honoured by the exporter itself). Then:

- FastAPI's built-in telemetry makes a server span per request and continues an incoming
  W3C ``traceparent``; health and metrics paths are never sampled;
- outgoing httpx calls (gateway → services, notify → intake/dispatch) carry ``traceparent``;
- the Kafka broker gets FastStream's telemetry middleware (``instrument_broker``): publish
  and consume spans, ``traceparent`` in the record headers. The outbox stores the context
  of the transaction that wrote an event, and the relay publishes under it, so the chain
  HTTP → outbox → Kafka → consumer → its own outbox rows stays one trace.

Without an exporter nothing is installed: no provider, no middleware, no per-request cost.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence

import structlog
from faststream.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

log = structlog.get_logger()

# Requests to these paths are never traced (probes and scrapes, several a second).
UNTRACED_PATHS = frozenset({"/metrics", "/livez", "/healthz", "/readyz"})

_lock = threading.Lock()
_configured: list[TracerProvider] = []  # the provider ``configure`` installed, once


class SkipHealthPaths(Sampler):
    """Drop spans of probe and scrape requests; everything else as the delegate decides."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if attributes and attributes.get("url.path") in UNTRACED_PATHS:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"SkipHealthPaths({self._delegate.get_description()})"


def exporter_configured(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces to be exported."""
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return bool(exporter) or bool(endpoint)


def new_provider(service: str, *processors: SpanProcessor) -> TracerProvider:
    """The SDK provider every process uses: named after the service, probes not sampled."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"whistle-{service}"}),
        sampler=SkipHealthPaths(ParentBased(ALWAYS_ON)),
    )
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def install(provider: TracerProvider) -> None:
    """Make ``provider`` the process's tracer provider and trace outgoing httpx calls."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)


def _exporter(env: Mapping[str, str]) -> SpanExporter:
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout from OTEL_EXPORTER_OTLP_*


def configure(service: str, env: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """Install the exporting provider once per process if the environment asks for it;
    return the SDK provider in use (None: tracing is off)."""
    with _lock:
        if not _configured and exporter_configured(env):
            provider = new_provider(service, BatchSpanProcessor(_exporter(env)))
            install(provider)
            _configured.append(provider)
            log.info("tracing_enabled", service_name=f"whistle-{service}")
    return active_provider()


def active_provider() -> TracerProvider | None:
    """The SDK provider installed in this process, if any."""
    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, TracerProvider) else None


def instrument_broker(broker: KafkaBroker) -> bool:
    """Trace the broker's publishes and consumes when tracing is on; say whether it did.
    Works on a broker whose subscribers already exist."""
    provider = active_provider()
    if provider is None:
        return False
    from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

    broker.add_middleware(KafkaTelemetryMiddleware(tracer_provider=provider))
    return True
