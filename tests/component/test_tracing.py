"""OpenTelemetry across the hops, on the real embedded PostgreSQL and broker: an HTTP request's
trace continues into the outbox row it writes, into the Kafka record the relay publishes,
and into the consumer that handles it (one by one: as parent; in batches: as a link) and the
outbox rows that consumer writes. Without an exporter configured, nothing is installed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from shared import outbox, tracing
from shared.broker import EventConsumer, make_broker, on, start_broker
from shared.contract import CaseReported, Location, Priority, Topics, new_event
from shared.faults import RetryPolicy
from shared.settings import BaseServiceSettings
from tests.helpers import as_user, eventually, fetch, read_topic
from tests.intake_app import running_intake

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"

REPORT = {
    "grid_code": "YA0101-01",
    "category": "E0101",
    "description": "楼道里堆放杂物",
    "priority": "normal",
    "location": {"lat": 37.7, "lon": 112.7, "address": "桃园小区3号楼"},
    "reporter": "网格员李明",
}


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The SDK provider of this process for the module, exporting to memory; afterwards the
    process is as before (no provider, httpx not instrumented)."""
    exporter = InMemorySpanExporter()
    tracing.install(tracing.new_provider("test", SimpleSpanProcessor(exporter)))
    try:
        yield exporter
    finally:
        HTTPXClientInstrumentor().uninstrument()
        trace._TRACER_PROVIDER_SET_ONCE = Once()  # what OpenTelemetry's own tests reset
        trace._TRACER_PROVIDER = None


def trace_of(traceparent: str) -> str:
    return traceparent.split("-")[1]


def hex_trace(span: Any) -> str:
    return format(span.context.trace_id, "032x")


async def test_http_request_outbox_row_and_kafka_record_share_the_trace(
    spans, pg_server, kafka_server
):
    async with running_intake(pg_server, kafka_server) as (client, dsn, _settings):
        resp = await client.post(
            "/cases", json=REPORT, headers={**as_user("taoyuan"), "traceparent": TRACEPARENT}
        )
        assert resp.status_code == 201, resp.text
        case_id = resp.json()["id"]

        async def sent_row() -> Any:
            rows = await fetch(
                dsn, "SELECT trace_context, sent_at FROM outbox WHERE key = $1", case_id
            )
            return rows[0] if rows and rows[0]["sent_at"] is not None else None

        row = await eventually(sent_row, message="the relay published the row")
        stored = row["trace_context"]
        stored = json.loads(stored) if isinstance(stored, str) else stored
        assert trace_of(stored["traceparent"]) == TRACE_ID
        # The row carries the request's span, not the caller's.
        assert stored["traceparent"].split("-")[2] != PARENT_SPAN

        # Probes are not traced even when the caller sends a trace.
        assert (await client.get("/livez", headers={"traceparent": TRACEPARENT})).is_success

    records = [
        r
        for r in await read_topic(kafka_server.bootstrap, Topics.INTAKE)
        if r.key == case_id.encode()
    ]
    assert records, "the event is on the topic"
    headers = {k: v.decode() for k, v in records[0].headers}
    assert trace_of(headers["traceparent"]) == TRACE_ID
    assert headers["type"] == "case.reported"

    finished = [s for s in spans.get_finished_spans() if hex_trace(s) == TRACE_ID]
    kinds = {s.kind for s in finished}
    assert trace.SpanKind.SERVER in kinds and trace.SpanKind.PRODUCER in kinds
    assert any(s.name == f"{Topics.INTAKE} publish" for s in finished)
    assert not [s for s in spans.get_finished_spans() if s.attributes.get("url.path") == "/livez"]


@pytest.fixture
async def shared_pool(shared_migrated_db, pool_factory) -> asyncpg.Pool:
    return await pool_factory(shared_migrated_db)


def reported(case_id: uuid.UUID):
    return new_event(
        CaseReported(
            case_no="YA-T1",
            area_path="YA/YA01/YA0101/YA0101-01",
            category="E0101",
            priority=Priority.NORMAL,
            grid_code="YA0101-01",
            description="楼道里堆放杂物",
            location=Location(address="桃园小区3号楼"),
            reporter="网格员李明",
            reported_at=datetime(2026, 1, 5, 1, 0, tzinfo=UTC),
        ),
        case_id=case_id,
        producer="test",
    )


@pytest.mark.parametrize("batch_size", [1, 50], ids=["one-by-one", "batch"])
async def test_the_consumer_continues_the_records_trace(
    spans, shared_pool, kafka_server, batch_size
):
    group = f"trace-{batch_size}-{uuid.uuid4().hex[:8]}"
    topic = f"test.events.{group}"
    settings = BaseServiceSettings(
        service_name="test",
        environment="test",
        database_url="postgresql://x@127.0.0.1/x",
        kafka_bootstrap_servers=kafka_server.bootstrap,
        kafka_idempotent_producer=False,
        consumer_batch_size=batch_size,
    )
    broker = make_broker(settings)
    seen: dict[uuid.UUID, str] = {}

    async def handler(conn: asyncpg.Connection, event) -> None:
        seen[event.case_id] = format(trace.get_current_span().get_span_context().trace_id, "032x")
        await outbox.add(conn, event.model_copy(update={"event_id": uuid.uuid4()}))

    consumer = EventConsumer(
        service="test",
        name=group,
        pool=lambda: shared_pool,
        broker=broker,
        routes=[on(CaseReported, handler)],
        policy=RetryPolicy(max_attempts=2, initial_backoff_seconds=0.01),
    )
    consumer.subscribe(topic, description="test")
    assert tracing.instrument_broker(broker)  # after the subscribers exist

    event = reported(uuid.uuid4())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            event.to_bytes(),
            key=str(event.case_id).encode(),
            # As the relay sends it (FastStream links a batch's records by correlation id).
            headers=[
                ("traceparent", TRACEPARENT.encode()),
                ("type", b"case.reported"),
                ("correlation_id", b"c-trace"),
            ],
        )
    finally:
        await producer.stop()

    await start_broker(broker, 5)
    try:
        await eventually(lambda: _async(event.case_id in seen), message="the event handled")
    finally:
        await broker.stop()

    stored = await shared_pool.fetchval(
        "SELECT trace_context FROM outbox WHERE key = $1", str(event.case_id)
    )
    process = [
        s
        for s in spans.get_finished_spans()
        if s.name == f"{topic} process" and s.kind is trace.SpanKind.CONSUMER
    ]
    assert process, "a consume span"
    if batch_size == 1:  # the record's trace is the parent
        assert seen[event.case_id] == TRACE_ID
        assert trace_of(stored["traceparent"]) == TRACE_ID
        assert format(process[0].parent.span_id, "016x") == PARENT_SPAN
    else:  # a batch starts a trace of its own that links every record's trace
        assert seen[event.case_id] == hex_trace(process[0]) != TRACE_ID
        assert trace_of(stored["traceparent"]) == seen[event.case_id]
        batch_trace = [s for s in spans.get_finished_spans() if hex_trace(s) == seen[event.case_id]]
        linked = {format(link.context.trace_id, "032x") for s in batch_trace for link in s.links}
        assert TRACE_ID in linked


async def _async(value: bool) -> bool:
    return value


def _probe(env: dict[str, str]) -> dict[str, Any]:
    """What ``configure`` installs in a fresh process with this environment."""
    code = (
        "import json\n"
        "from opentelemetry import trace\n"
        "from shared import tracing\n"
        "from shared.broker import make_broker\n"
        "from shared.settings import BaseServiceSettings\n"
        "p = tracing.configure('intake')\n"
        "b = make_broker(BaseServiceSettings(service_name='intake', environment='test',"
        " database_url='postgresql://x@127.0.0.1/x'))\n"
        "print(json.dumps({'provider': type(trace.get_tracer_provider()).__name__,"
        " 'returned': p is not None,"
        " 'service': p.resource.attributes.get('service.name') if p else None,"
        " 'broker': tracing.instrument_broker(b),"
        " 'livez': p.sampler.should_sample(None, 1, 'GET', attributes={'url.path': '/livez'})"
        ".decision.is_sampled() if p else None,"
        " 'cases': p.sampler.should_sample(None, 1, 'GET', attributes={'url.path': '/cases'})"
        ".decision.is_sampled() if p else None}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_without_an_exporter_nothing_is_installed():
    assert _probe({}) == {
        "provider": "ProxyTracerProvider",
        "returned": False,
        "service": None,
        "broker": False,
        "livez": None,
        "cases": None,
    }
    assert _probe({"OTEL_TRACES_EXPORTER": "none"})["returned"] is False


def test_an_otlp_endpoint_installs_the_sdk_named_after_the_service():
    assert _probe({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}) == {
        "provider": "TracerProvider",
        "returned": True,
        "service": "whistle-intake",
        "broker": True,
        "livez": False,
        "cases": True,
    }


async def test_outgoing_http_calls_carry_the_trace(spans):
    """The gateway → services and notify → intake/dispatch hops: any httpx client sends the
    current trace (instrumented once per process, no client code involved)."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tracer = trace.get_tracer("test")
    try:
        with tracer.start_as_current_span("caller") as caller:
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"http://127.0.0.1:{port}/x")).text == "ok"
    finally:
        server.close()
        await server.wait_closed()
    head = received[0].decode().lower()
    [traceparent] = [line for line in head.split("\r\n") if line.startswith("traceparent:")]
    assert trace_of(traceparent.split(":", 1)[1].strip()) == format(
        caller.get_span_context().trace_id, "032x"
    )
