"""The CSV tracking exports opens in Excel/WPS as data, never as formulas."""

from __future__ import annotations

import csv
import io

from services.tracking.api.export import csv_bytes


def test_csv_has_a_bom_and_keeps_formula_like_text_as_text():
    body = csv_bytes(
        ["时间", "说明"],
        [
            ["2026-11-22 10:00", '=HYPERLINK("http://evil","点我")'],
            ["+86 138", "@SUM(A1)"],
            ["-1+1", "正常的说明"],
            [3, -2.5],
        ],
    )
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows == [
        ["时间", "说明"],
        ["2026-11-22 10:00", '\'=HYPERLINK("http://evil","点我")'],
        ["'+86 138", "'@SUM(A1)"],
        ["'-1+1", "正常的说明"],
        ["3", "-2.5"],
    ]
