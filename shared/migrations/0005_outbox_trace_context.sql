-- The trace context (W3C traceparent/tracestate, baggage) of the transaction that wrote an
-- outbox row, when tracing is on (shared/tracing.py): the relay publishes the row under it,
-- so the trace continues from the request or event that caused it to the consumers.
-- NULL when tracing is off.
ALTER TABLE outbox ADD COLUMN trace_context jsonb;
