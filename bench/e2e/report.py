"""The tables ``make bench-e2e`` prints (one per part) and the derived floor figures."""

from __future__ import annotations

from collections.abc import Sequence

from bench.e2e.segments import SEGMENTS

# Commits one case makes, counted from the code in issue 14 (report, whistle, the relays'
# claims and marks, each consumer's handling transaction along the way).
COMMITS_PER_CASE_BY_CODE = 17
# Kafka hops on the way whistle → department inbox: intake → dispatch (case.whistled),
# dispatch → notify (case.dispatched); tracking hears case.dispatched in parallel.
HOPS_WHISTLE_TO_INBOX = 2
# Statements printed per load window (--statements); the JSON has every one.
STATEMENTS_SHOWN = 20


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)
    ]

    def line(items: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(items, widths, strict=True))
        ).rstrip()

    out = [title, line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    return str(v)


def _ms(s: dict | None, key: str) -> float | None:
    return None if not s else s.get(key)


def derive(floor: dict, runs: list[dict]) -> dict:
    """Floor per case and the commit-bound ceiling, from the floor and the measured runs."""
    hop_short = floor["kafka_hop_short_wait"]["p50"]
    hop_default = floor["kafka_hop_default_wait"]["p50"]
    commit_ms = 1000 / floor["pg_commit_1"]["per_second"]
    commits_16 = floor["pg_commit_16"]["per_second"]
    # Measured commits per case: the lowest rate that drained (least disturbed by backlog).
    drained = [r for r in runs if r["drained"] and r["completed"]] or [
        r for r in runs if r["completed"]
    ]
    measured = drained[0]["commits_per_case"]["total"] if drained else None
    writes = drained[0]["commits_per_case"]["writing (xid)"] if drained else None
    out = {
        "hops_whistle_to_inbox": HOPS_WHISTLE_TO_INBOX,
        "hop_p50_ms_short_wait": hop_short,
        "hop_p50_ms_default_wait": hop_default,
        "commit_ms_1_connection": commit_ms,
        "commits_per_s_16_connections": commits_16,
        "commits_per_case_by_code": COMMITS_PER_CASE_BY_CODE,
        "commits_per_case_measured": measured,
        "writing_commits_per_case_measured": writes,
        "measured_at_rate": drained[0]["label"] if drained else None,
    }
    for tag, commits in (
        ("by_code", COMMITS_PER_CASE_BY_CODE),
        ("measured_writing", writes),
        ("measured_all", measured),
    ):
        if not commits:
            continue
        out[f"floor_ms_short_wait_{tag}"] = HOPS_WHISTLE_TO_INBOX * hop_short + commits * commit_ms
        out[f"floor_ms_default_wait_{tag}"] = (
            HOPS_WHISTLE_TO_INBOX * hop_default + commits * commit_ms
        )
        out[f"ceiling_per_s_{tag}"] = commits_16 / commits
    return out


def render(result: dict) -> str:
    floor, runs, d = result["floor"], result["runs"], result["derived"]
    parts = []
    # -- throughput -----------------------------------------------------------------------
    rows = []
    for r in runs:
        http = r["http"]["all"]
        errors = sum(n for k, n in r["statuses"].items() if not k.split()[-1].startswith("2"))
        rows.append(
            [
                r["label"],
                r["seconds"],
                r["started"],
                r["offered_per_s"],
                r["accepted"],
                r["accepted_per_s"],
                r["completed"],
                r["completed_per_s"],
                r["incomplete"],
                r["failed"],
                errors,
                _ms(http, "p50"),
                _ms(http, "p99"),
                "yes" if r["drained"] else f"NO ({r['drain_seconds']:.0f} s)",
            ]
        )
    parts.append(
        table(
            "Throughput (HTTP report + whistle; completed = all departments have assignment, "
            "clocks and inbox message; done/s = completed ÷ (last inbox − first accepted))",
            [
                "load",
                "s",
                "started",
                "offered/s",
                "accepted",
                "acc/s",
                "completed",
                "done/s",
                "incomplete",
                "gave up",
                "non-2xx",
                "http p50 ms",
                "http p99 ms",
                "drained",
            ],
            rows,
        )
    )
    statuses = [
        [r["label"], ", ".join(f"{k}: {n}" for k, n in sorted(r["statuses"].items()))] for r in runs
    ]
    parts.append(
        table("HTTP responses by status (retries included)", ["load", "responses"], statuses)
    )
    # -- segments -------------------------------------------------------------------------
    rows = []
    for r in runs:
        for name, _, _ in SEGMENTS:
            s = r["segments"][name]
            rows.append([r["label"], name, s["n"], s["p50"], s["p95"], s["p99"], s["max"]])
    parts.append(
        table(
            "Segment latency in ms, from database timestamps",
            ["load", "segment", "cases", "p50", "p95", "p99", "max"],
            rows,
        )
    )
    # -- resources ------------------------------------------------------------------------
    rows = []
    for r in runs:
        res = r["resources"]
        for name, g in res["groups"].items():
            rows.append(
                [
                    r["label"],
                    name,
                    g["cpu_seconds"],
                    g["cpu_percent"],
                    g["rss_max_mb"],
                    g["processes_max"],
                ]
            )
    parts.append(
        table(
            f"Resources during the load window ({runs[0]['resources']['cores'] if runs else '?'} "
            "cores; CPU % of one core; PostgreSQL RSS is summed over its processes, shared "
            "buffers counted in each)",
            ["load", "process", "cpu s", "cpu %", "rss max MB", "procs"],
            rows,
        )
    )
    # -- commits --------------------------------------------------------------------------
    rows = []
    for r in runs:
        c = r["commits_per_case"]
        rows.append(
            [
                r["label"],
                c.get("intake"),
                c.get("dispatch"),
                c.get("tracking"),
                c.get("notify"),
                c.get("web"),
                c["total"],
                c["writing (xid)"],
                sum(r["events_per_case"].values()),
            ]
        )
    parts.append(
        table(
            "Commits per completed case (pg_stat_database xact_commit deltas minus the idle rate; "
            "'writing' = transaction ids given out, all databases)",
            [
                "load",
                "intake",
                "dispatch",
                "tracking",
                "notify",
                "web",
                "total",
                "writing",
                "events",
            ],
            rows,
        )
    )
    # -- statements (--statements) ----------------------------------------------------------
    for r in runs:
        if "statements" not in r:
            continue
        shown = r["statements"][:-1][:STATEMENTS_SHOWN] + r["statements"][-1:]
        rows = [
            [
                st["service"],
                st["query"][:110],
                st["calls_per_case"],
                st["ms_per_case"],
                f"{st['share'] * 100:.1f}",
            ]
            for st in shown
        ]
        parts.append(
            table(
                f"PostgreSQL statements per completed case at {r['label']} (pg_stat_statements, "
                f"execution time only; the {STATEMENTS_SHOWN} busiest, all of them in the JSON)",
                ["service", "statement", "calls", "ms", "%"],
                rows,
            )
        )
    # -- floor ----------------------------------------------------------------------------
    ks, kd, kp = (
        floor["kafka_hop_short_wait"],
        floor["kafka_hop_default_wait"],
        floor["kafka_produce"],
    )
    p1, p16 = floor["pg_commit_1"], floor["pg_commit_16"]
    parts.append(
        table(
            "Floor of this machine (same broker, same PostgreSQL server)",
            ["measure", "value", "p50 ms", "p99 ms", "n"],
            [
                [
                    "kafka hop produce→consume, fetch_max_wait_ms=5",
                    None,
                    ks["p50"],
                    ks["p99"],
                    ks["n"],
                ],
                [
                    "kafka hop, fetch_max_wait_ms=500 (aiokafka default, as services)",
                    None,
                    kd["p50"],
                    kd["p99"],
                    kd["n"],
                ],
                [
                    "kafka produce msgs/s (acks=all, 200 B, batched)",
                    kp["per_second"],
                    None,
                    None,
                    kp["messages"],
                ],
                [
                    "postgres INSERT+COMMIT/s, 1 connection",
                    p1["per_second"],
                    p1["ms_per_commit"],
                    None,
                    p1["commits"],
                ],
                [
                    "postgres INSERT+COMMIT/s, 16 connections",
                    p16["per_second"],
                    p16["ms_per_commit"],
                    None,
                    p16["commits"],
                ],
            ],
        )
    )
    # -- ratios ---------------------------------------------------------------------------
    lines = ["Against the floor"]
    at = d["measured_at_rate"]
    for tag, what in (
        ("by_code", f"{d['commits_per_case_by_code']} commits/case (issue 14, by code reading)"),
        (
            "measured_writing",
            f"{_fmt(d['writing_commits_per_case_measured'])} writing commits/"
            f"case (transaction ids, measured at {at})",
        ),
        (
            "measured_all",
            f"{_fmt(d['commits_per_case_measured'])} commits/case (xact_commit, "
            f"read-only ones included, measured at {at})",
        ),
    ):
        if f"ceiling_per_s_{tag}" not in d:
            continue
        lines.append(
            f"  {what}:\n    floor whistle→inbox = {d['hops_whistle_to_inbox']} hops × hop p50 + "
            f"commits × {d['commit_ms_1_connection']:.2f} ms = "
            f"{d[f'floor_ms_short_wait_{tag}']:.1f} ms (short fetch wait) / "
            f"{d[f'floor_ms_default_wait_{tag}']:.0f} ms (fetch wait 500 ms); "
            f"commit-bound ceiling {d['commits_per_s_16_connections']:,.0f}/s ÷ commits = "
            f"{d[f'ceiling_per_s_{tag}']:,.0f} cases/s"
        )
    lines.append("  (floor = the short-fetch-wait figure at 17 commits/case)")
    ceiling = d.get("ceiling_per_s_by_code")
    floor_ms = d.get("floor_ms_short_wait_by_code")
    for r in runs:
        inbox = r["segments"]["whistle→dept inbox"]
        bits = [f"  {r['label']:<16} achieved {r['completed_per_s']:.1f}/s"]
        if ceiling:
            bits.append(
                f"= {100 * r['completed_per_s'] / ceiling:.1f} % of the {ceiling:,.0f}/s ceiling"
            )
        if d.get("ceiling_per_s_measured_writing"):
            c = d["ceiling_per_s_measured_writing"]
            bits.append(
                f"({100 * r['completed_per_s'] / c:.1f} % of {c:,.0f}/s at the measured "
                "writing commits)"
            )
        if floor_ms and inbox["p50"] is not None:
            bits.append(
                f"\n{'':19}whistle→inbox p50 {inbox['p50']:.0f} ms = "
                f"{inbox['p50'] / floor_ms:.1f}× the {floor_ms:.1f} ms floor"
            )
        bits.append(f"; the 1,000/s target: {100 * r['completed_per_s'] / 1000:.1f} %")
        lines.append(" ".join(bits).replace(" \n", "\n").replace(" ;", ";"))
    parts.append("\n".join(lines))
    for r in runs:
        prof = r.get("profile")
        if not prof:
            continue
        if prof.get("error"):
            parts.append(f"Profile of {prof['service']} at {r['label']}: {prof['error']}")
            continue
        own = "\n".join(f"  {p:5.1f} %  {f}" for f, p in prof["own"][:15])
        parts.append(
            f"Profile of {prof['service']} at {r['label']} (py-spy, "
            f"{prof['samples']} samples; own time, top 15; all in {prof['top']}, "
            f"collapsed stacks for a flame graph in {prof['collapsed']})\n{own}"
        )
    return "\n\n".join(parts)
