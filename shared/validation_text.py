"""What a refused request's fields say in Simplified Chinese: pydantic writes its problems in
English ("Input should be less than or equal to 200"), which a Chinese user of the console
then read after "请求内容无效 —". Each common error type gets its Chinese sentence here; a type
not listed (or a validator's own text) keeps pydantic's words."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _quoted(values: Any) -> str:
    return str(values).replace(" or ", ", ").replace(", ", "、")


_ZH: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda c: "必填",
    "extra_forbidden": lambda c: "不允许此字段",
    "string_type": lambda c: "应为文本",
    "string_too_short": lambda c: f"至少 {c.get('min_length')} 个字符",
    "string_too_long": lambda c: f"最多 {c.get('max_length')} 个字符",
    "string_pattern_mismatch": lambda c: "格式不正确",
    "too_short": lambda c: f"至少 {c.get('min_length')} 项",
    "too_long": lambda c: f"最多 {c.get('max_length')} 项",
    "int_type": lambda c: "应为整数",
    "int_parsing": lambda c: "应为整数",
    "int_from_float": lambda c: "应为整数",
    "float_type": lambda c: "应为数字",
    "float_parsing": lambda c: "应为数字",
    "decimal_parsing": lambda c: "应为数字",
    "bool_type": lambda c: "应为 true 或 false",
    "bool_parsing": lambda c: "应为 true 或 false",
    "greater_than": lambda c: f"应大于 {c.get('gt')}",
    "greater_than_equal": lambda c: f"应不小于 {c.get('ge')}",
    "less_than": lambda c: f"应小于 {c.get('lt')}",
    "less_than_equal": lambda c: f"应不大于 {c.get('le')}",
    "literal_error": lambda c: f"应为以下之一：{_quoted(c.get('expected'))}",
    "enum": lambda c: f"应为以下之一：{_quoted(c.get('expected'))}",
    "uuid_type": lambda c: "应为 UUID 编号",
    "uuid_parsing": lambda c: "应为 UUID 编号",
    "datetime_type": lambda c: "应为日期时间",
    "datetime_parsing": lambda c: "应为日期时间（如 2026-01-31T08:00:00+08:00）",
    "datetime_from_date_parsing": lambda c: "应为日期时间（如 2026-01-31T08:00:00+08:00）",
    "timezone_aware": lambda c: "应带时区（如 +08:00）",
    "date_type": lambda c: "应为日期",
    "date_parsing": lambda c: "应为日期（如 2026-01-31）",
    "date_from_datetime_parsing": lambda c: "应为日期（如 2026-01-31）",
    "time_parsing": lambda c: "应为时间（如 08:00）",
    "json_invalid": lambda c: "不是有效的 JSON",
    "model_attributes_type": lambda c: "应为对象",
    "dict_type": lambda c: "应为对象",
    "list_type": lambda c: "应为列表",
    "url_parsing": lambda c: "应为网址",
    "url_scheme": lambda c: "网址协议不允许",
}


def problem_text(err: Mapping[str, Any], lang: str) -> str:
    """One field's problem, in the request's language (Chinese unless it asked for English)."""
    english = str(err.get("msg", ""))
    if lang == "en":
        return english
    say = _ZH.get(str(err.get("type", "")))
    if say is None:
        # a validator's own words ("Value error, …") keep them, without pydantic's prefix
        return english.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return say(err.get("ctx") or {})
