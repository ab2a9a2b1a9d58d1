"""What notify's channels send, without a network: signatures against fixed vectors, the
payload each robot gets, user text kept literal in robot markup, the email message, and the
idempotency key a receiver drops duplicates by.

The signature vectors were computed outside Python with ``openssl dgst -sha256 -hmac`` (or
taken from the vendors' and the spec's own examples) and are recomputed here with hmac.
"""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
import json
from datetime import UTC, datetime
from email.policy import default as default_policy
from urllib.parse import parse_qs, quote_plus

import pytest

from services.notify import channels
from services.notify.channels import dingtalk, feishu, sms, smtp, webhook, wecom
from services.notify.channels.base import DeliveryResult, Message, Outcome, SendContext, fit_utf8
from tests.unit.notify_channels_fixtures import (
    AT,
    DING_SECRET,
    DING_URL,
    EMAIL,
    FEISHU_URL,
    MSG,
    SMS,
    SMS_URL,
    URGENT,
    WECOM_URL,
)


def hmac_b64(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


# --- signatures --------------------------------------------------------------------------------


def test_dingtalk_sign_matches_the_fixed_vector_and_is_url_encoded_once():
    expected = "3Ys5PrZE5H9eDu7VseJFzcZt4+fku0dHZ3jOhK/TMVg="  # openssl, see the docstring
    ts = 1763800000000
    assert hmac_b64(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode()) == expected
    assert dingtalk.sign(DING_SECRET, ts) == expected
    settings = channels.validate_settings("dingtalk", {"url": DING_URL, "secret": DING_SECRET})
    url = dingtalk.signed_url(settings, AT)
    # the vendor's urlEncode of the base64 ('+', '/' and '=' escaped), the token kept
    assert str(url) == f"{DING_URL}&timestamp={ts}&sign={quote_plus(expected)}"
    assert "sign=3Ys5PrZE5H9eDu7VseJFzcZt4%2Bfku0dHZ3jOhK%2FTMVg%3D" in str(url)
    assert parse_qs(url.query.decode()) == {
        "access_token": ["0123abcd"],
        "timestamp": [str(ts)],
        "sign": [expected],
    }


def test_dingtalk_unsigned_robot_keeps_its_url():
    settings = channels.validate_settings(
        "dingtalk", {"url": DING_URL, "sign": False, "keyword": "城管"}
    )
    assert str(dingtalk.signed_url(settings, AT)) == DING_URL


@pytest.mark.parametrize(
    ("timestamp", "secret", "expected"),
    [
        (
            1763800000,
            "feishu-test-secret",
            "r1UyMr5xfQBO/6lMn/tPyLP5cNGCrXszaMObYXNhUUg=",
        ),  # openssl
        (1756800000, "orbit-test-secret", "sN+9ZKa5w6BQmKyxCaxNA1DWEgtEnZaOcfEOCqZ26fg="),  # node
    ],
)
def test_feishu_sign_keys_hmac_with_timestamp_and_secret_over_an_empty_message(
    timestamp, secret, expected
):
    assert hmac_b64(f"{timestamp}\n{secret}".encode(), b"") == expected
    assert feishu.sign(secret, timestamp) == expected


def test_feishu_body_carries_timestamp_in_seconds_as_a_string_and_the_sign():
    settings = channels.validate_settings(
        "feishu", {"url": FEISHU_URL, "secret": "feishu-test-secret"}
    )
    body = feishu.body(MSG, settings, AT)
    assert body["timestamp"] == "1763800000"
    assert body["sign"] == "r1UyMr5xfQBO/6lMn/tPyLP5cNGCrXszaMObYXNhUUg="
    assert body["msg_type"] == "interactive" and "card" in body
    unsigned = channels.validate_settings("feishu", {"url": FEISHU_URL, "sign": False})
    assert "sign" not in feishu.body(MSG, unsigned, AT)


def test_standard_webhooks_signature_matches_the_spec_vector():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, at = "msg_p5jXN8AQM9LWM0D4loKWxJek", datetime.fromtimestamp(1614265330, UTC)
    body, headers = webhook.signed_request(msg_id, {"test": 2432232314}, at, secret)
    assert body == b'{"test":2432232314}'  # compact UTF-8 JSON: the bytes that are signed
    assert headers["webhook-id"] == msg_id and headers["webhook-timestamp"] == "1614265330"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    assert headers["webhook-signature"] == "v1,Vif40peJBP7Iyl0XGmu61n4MwdrcHov5CFREBpE0svs="
    assert headers["webhook-signature"] == "v1," + hmac_b64(
        key, f"{msg_id}.1614265330.".encode() + body
    )
    # the spec's own example (its body has a space) through the same HMAC
    assert (
        hmac_b64(key, b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}')
        == "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    _, unsigned = webhook.signed_request(msg_id, {"test": 1}, at, None)
    assert "webhook-signature" not in unsigned


def test_generic_sms_signature_matches_the_fixed_vector():
    body = b'{"to":["+8613800138000"],"template_id":"T1"}'
    expected = "D9Sqbke31hCJAUcVLQpoUVl5+bOXVbkdPqUd2gozRMU="  # openssl
    nonce = "0123456789abcdef0123456789abcdef"
    to_sign = f"POST\n/sms/v1/send\n1763800000\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    assert hmac_b64(b"sms-app-secret", to_sign.encode()) == expected
    assert (
        sms.generic_signature("sms-app-secret", "/sms/v1/send", "1763800000", nonce, body)
        == expected
    )


def test_generic_sms_request_headers_and_body():
    settings = channels.validate_settings(
        "sms",
        {
            "url": SMS_URL + "?region=cn",
            "app_key": "ak-1",
            "app_secret": "sms-app-secret",
            "template_id": "CASE_DISPATCHED",
            "template_params": ["case_no", "deadline"],
            "sign_name": "榆安城管",
            "to": ["138 0013 8000", "+85291234567"],
        },
    )
    one = sms.Sms(
        to=settings.to,
        template_id="CASE_DISPATCHED",
        sign_name="榆安城管",
        params={"case_no": "YA1"},
        out_id="m1",
    )
    req = sms.GenericSmsProvider().request(one, settings, AT, "ab" * 16)
    assert json.loads(req.body) == {
        "to": ["+8613800138000", "+85291234567"],
        "sign_name": "榆安城管",
        "template_id": "CASE_DISPATCHED",
        "template_params": {"case_no": "YA1"},
        "out_id": "m1",
    }
    assert req.headers["x-sms-app-key"] == "ak-1" and req.headers["x-sms-timestamp"] == "1763800000"
    assert req.headers["x-sms-signature"] == sms.generic_signature(
        "sms-app-secret", "/sms/v1/send?region=cn", "1763800000", "ab" * 16, req.body
    )


# --- payloads -------------------------------------------------------------------------------------


def test_wecom_markdown_marks_urgent_and_text_mentions():
    md = channels.validate_settings("wecom", {"url": WECOM_URL})
    body = wecom.payload(URGENT, md)
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith('<font color="warning">【紧急】</font>\n**【派单】')
    assert f"[查看详情]({MSG.link})" in content
    text = wecom.payload(
        MSG,
        channels.validate_settings(
            "wecom", {"url": WECOM_URL, "msgtype": "text", "mention_mobiles": ["@all"]}
        ),
    )
    assert text["text"]["mentioned_mobile_list"] == ["@all"]
    assert text["text"]["content"].startswith(MSG.title + "\n" + MSG.text)
    huge = Message(id="x", title="t", text="字" * 3000)
    assert len(wecom.payload(huge, md)["markdown"]["content"].encode()) <= 4096


def test_dingtalk_markdown_keyword_and_mentions():
    s = channels.validate_settings(
        "dingtalk",
        {
            "url": DING_URL,
            "sign": False,
            "keyword": "城管通知",
            "at_mobiles": ["13800138000"],
            "at_all_when_urgent": True,
        },
    )
    body = dingtalk.payload(URGENT, s)
    assert body["msgtype"] == "markdown" and body["markdown"]["title"] == MSG.title
    assert body["markdown"]["text"].startswith("城管通知 **【紧急】**")
    assert body["markdown"]["text"].endswith(" @13800138000")
    assert body["at"] == {"atMobiles": ["13800138000"], "isAtAll": True}
    assert dingtalk.payload(MSG, s)["at"]["isAtAll"] is False


def test_feishu_card_post_and_text():
    card = feishu.content(URGENT, "interactive")["card"]
    assert card["header"]["template"] == "red"
    assert card["header"]["title"]["content"] == "【紧急】" + MSG.title
    assert card["elements"][0]["text"] == {"tag": "lark_md", "content": MSG.text}
    assert card["elements"][1]["actions"][0]["url"] == MSG.link
    post = feishu.content(Message(**{**MSG.__dict__, "locale": "en"}), "post")
    assert post["content"]["post"]["en_us"]["content"][-1] == [
        {"tag": "a", "text": "View details", "href": MSG.link}
    ]
    assert feishu.content(MSG, "text")["content"]["text"].startswith(MSG.title)


def test_sms_template_parameters_come_from_the_message():
    assert sms.template_values(MSG, ("case_no", "deadline", "link")) == {
        "case_no": "YA20261122-0001",
        "deadline": "2026-11-22 10:00",
        "link": MSG.link,
    }
    missing = sms.template_values(MSG, ("case_no", "street"))
    assert isinstance(missing, DeliveryResult) and missing.outcome is Outcome.PERMANENT
    assert "street" in missing.detail


def test_fit_utf8_never_cuts_a_character():
    text = "城市管理" * 5  # 60 bytes
    for n in range(0, 64):
        cut = fit_utf8(text, n)
        assert len(cut.encode()) <= n and "\ufffd" not in cut
        if 3 <= n < 60:
            assert cut.endswith("…") and text.startswith(cut[:-1])
    assert fit_utf8(text, 60) == text and fit_utf8("短", 10) == "短"


def test_plain_and_markdown_bodies():
    assert MSG.plain_body() == f"{MSG.text}\n详情：{MSG.link}"
    linked = Message(id="x", title="t", text=f"see {MSG.link}", link=MSG.link, locale="en")
    assert linked.plain_body() == linked.text
    assert linked.markdown_body() == f"**t**\n\nsee {MSG.link}\n\n[View details]({MSG.link})"


# A resident's description quoted in a notice: every kind of robot markup it could try.
EVIL = (
    '[点我](http://evil.example/x) <font color="warning">假通知</font> **加粗** `代码`'
    " <@all> <at id=all></at> ~~删除~~ _斜_ | 表 |\n# 大标题\n---\n> 引用"
)


def _evil(**kw) -> Message:
    text = f"【派单】案件YA20261122-0001已派至城管局。问题：{EVIL}。详情：{MSG.link}"
    return Message(**{**MSG.__dict__, "text": text, **kw})


def _no_markup(rendered: str) -> None:
    for markup in (
        "](",
        "[点我]",
        "<font",
        "<@",
        "<at",
        "**加粗**",
        "`",
        "~~",
        "_斜_",
        "|",
        "\n#",
        "\n---",
        "\n>",
    ):
        assert markup not in rendered.replace(f"[查看详情]({MSG.link})", "").replace(
            f"[View details]({MSG.link})", ""
        ), markup


def test_user_text_in_robot_markdown_stays_literal_and_our_link_stays_last():
    md = _evil().markdown_body()
    _no_markup(md)
    # what the person wrote is still all there, to be read
    assert "［点我］(http://evil.example/x)" in md and '＜font color="warning"＞假通知' in md
    assert "＊＊加粗＊＊" in md and "｀代码｀" in md and "\n＃ 大标题\n－－－\n＞ 引用" in md
    # notify's own link: the bare one in the text, and the real link at the end
    assert f"详情：{MSG.link}" in md and md.endswith(f"\n\n[查看详情]({MSG.link})")
    assert md.startswith("**【派单】案件YA20261122-0001已派至榆安区城市管理局**\n\n")


def test_every_robot_renders_user_text_literally():
    wecom_md = wecom.payload(
        _evil(urgent=True), channels.validate_settings("wecom", {"url": WECOM_URL})
    )["markdown"]["content"]
    assert wecom_md.startswith('<font color="warning">【紧急】</font>\n**【派单】')  # ours stays
    _no_markup(wecom_md.removeprefix('<font color="warning">【紧急】</font>\n'))
    assert wecom_md.endswith(f"[查看详情]({MSG.link})")
    ding = dingtalk.payload(
        _evil(),
        channels.validate_settings(
            "dingtalk", {"url": DING_URL, "sign": False, "keyword": "城管通知"}
        ),
    )["markdown"]["text"]
    _no_markup(ding)
    assert ding.endswith(f"[查看详情]({MSG.link})")
    card = feishu.content(_evil(), "interactive")["card"]
    lark_md = card["elements"][0]["text"]["content"]
    _no_markup(lark_md)
    assert lark_md.endswith(f"详情：{MSG.link}")  # the bare link still works
    assert card["elements"][1]["actions"][0]["url"] == MSG.link
    # plain text channels show it as written
    assert EVIL in _evil().plain_body()


# --- email message ---------------------------------------------------------------------------------


def test_email_encodes_a_chinese_subject_and_names_and_is_stable_per_message():
    s = channels.validate_settings(
        "email",
        {
            **EMAIL,
            "from": "榆安区城管值班室 <notify@例子.中国>",
            "to": ["张三 <zhangsan@example.cn>", "duty@example.cn"],
            "reply_to": "ops@example.cn",
        },
    )
    html = Message(**{**URGENT.__dict__, "html": "<p>案件 <b>YA20261122-0001</b></p>"})
    ctx = SendContext(clock=lambda: AT)
    raw = smtp.build(html, s, ctx).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # every header RFC 2047-encoded, no SMTPUTF8 needed
    assert b"Subject: =?utf-8?" in head and b"\r\n" in raw
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert parsed["Subject"] == "【紧急】" + MSG.title
    assert parsed["From"].addresses[0].display_name == "榆安区城管值班室"
    assert parsed["From"].addresses[0].addr_spec == "notify@xn--fsqu00a.xn--fiqs8s"
    assert [a.display_name for a in parsed["To"].addresses] == ["张三", ""]
    assert parsed["Message-ID"] == "<msg_0001_duty-cg@xn--fsqu00a.xn--fiqs8s>"
    assert parsed["X-Priority"] == "1" and parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"] == "Sat, 22 Nov 2025 08:26:40 +0000"
    assert parsed.get_body(("plain",)).get_content().startswith(MSG.text)
    assert "YA20261122-0001" in parsed.get_body(("html",)).get_content()
    assert smtp.build(html, s, ctx)["Message-ID"] == parsed["Message-ID"]


# --- idempotency keys across retries ---------------------------------------------------------------


def test_each_delivery_keeps_one_idempotency_key_on_every_retry_and_channel_and_no_other_has_it():
    """The key a receiver drops duplicates by — webhook-id, the email Message-ID, the SMS
    gateway's out_id — is the same on every attempt of one delivery (a retry, a resend after a
    crash between the send and the mark, a replay) and differs between deliveries."""
    import dataclasses
    import uuid

    from services.notify.domain import Channel
    from services.notify.worker import message_for
    from tests.unit.test_notify_rules import claim

    email_settings = channels.validate_settings("email", EMAIL)
    sms_settings = channels.validate_settings("sms", {**SMS, "template_params": ["case_no"]})
    generic = sms.GenericSmsProvider()

    def keys(c) -> tuple[str, str, str]:
        hook = message_for(dataclasses.replace(c, channel=Channel.WEBHOOK))
        _, headers = webhook.signed_request(hook.id, {"type": hook.kind}, AT, None)
        mail = smtp.build(
            message_for(dataclasses.replace(c, channel=Channel.EMAIL)),
            email_settings,
            SendContext(clock=lambda: AT),
        )
        text = message_for(dataclasses.replace(c, channel=Channel.SMS))
        one = sms.Sms(
            to=sms_settings.to, template_id="T1", params={}, sign_name=None, out_id=text.id
        )
        req = generic.request(one, sms_settings, AT, "ab" * 16)
        return headers["webhook-id"], mail["Message-ID"], json.loads(req.body)["out_id"]

    first = claim(Channel.WEBHOOK)
    hook_id, message_id, out_id = keys(first)
    assert hook_id and out_id == hook_id and message_id == f"<{hook_id}@example.cn>"
    # the same delivery taken again (a later attempt, another worker, after a crash)
    again = dataclasses.replace(first, attempts=2)
    assert keys(again) == keys(first)
    # another event for the same recipient, the same event for another recipient
    other_event = dataclasses.replace(first, id=99, event_id=uuid.uuid4())
    other_recipient = dataclasses.replace(
        first, id=98, recipient=dataclasses.replace(first.recipient, id="duty-zj")
    )
    for other in (other_event, other_recipient):
        assert all(a != b for a, b in zip(keys(other), keys(first), strict=True))
