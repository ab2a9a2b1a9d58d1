"""Notify's channels without a network: signatures against fixed vectors, settings
validation (Chinese first, naming the field), payload shapes, and how each vendor's answers
and each failure are classified (transient or permanent).

The signature vectors were computed outside Python with ``openssl dgst -sha256 -hmac`` (or
taken from the vendors' and the spec's own examples) and are recomputed here with hmac.
"""

from __future__ import annotations

import asyncio
import base64
import email
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from email.policy import default as default_policy
from urllib.parse import parse_qs, quote_plus

import aiosmtplib
import httpx
import pytest

from services.notify import channels
from services.notify.channels import dingtalk, feishu, http, sms, smtp, webhook, wecom
from services.notify.channels.base import (
    DeliveryResult,
    InvalidSetting,
    Message,
    Outcome,
    SendContext,
    fit_utf8,
    send_bounded,
)

AT = datetime.fromtimestamp(1763800000, UTC)  # 2025-11-22 08:26:40 UTC
DING_SECRET = "SECd8a1f0c2e4b6a8c0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8"
WECOM_URL = (
    "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
)
DING_URL = "https://oapi.dingtalk.com/robot/send?access_token=0123abcd"
FEISHU_URL = "https://open.feishu.cn/open-apis/bot/v2/hook/5d4c3b2a-0000-1111-2222-333344445555"
SMS_URL = "https://sms.example.cn/sms/v1/send"

MSG = Message(
    id="msg_0001_duty-cg",
    title="【派单】案件YA20261122-0001已派至榆安区城市管理局",
    text="案件YA20261122-0001（E0101）已派至榆安区城市管理局（主办），请及时签收报到。",
    link="https://whistle.example.cn/cases/1",
    kind="case.dispatched",
    data={"case_no": "YA20261122-0001", "deadline": "2026-11-22 10:00"},
)
URGENT = Message(**{**MSG.__dict__, "urgent": True})


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


# --- settings ------------------------------------------------------------------------------------

EMAIL = {"host": "smtp.example.cn", "from": "notify@example.cn", "to": ["duty@example.cn"]}
SMS = {
    "url": SMS_URL,
    "app_key": "k",
    "app_secret": "s",
    "template_id": "T1",
    "to": ["13800138000"],
}


@pytest.mark.parametrize(
    ("kind", "raw", "field", "zh"),
    [
        ("wecom", {}, "url", "必填"),
        ("wecom", {"url": "not a url"}, "url", "不是有效的 http(s) 网址"),
        ("wecom", {"url": "ftp://qyapi.weixin.qq.com/x?key=k"}, "url", "不是有效的 http(s) 网址"),
        (
            "wecom",
            {"url": WECOM_URL.replace("https", "http")},
            "url",
            "机器人地址必须是 https 网址",
        ),
        ("wecom", {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"}, "url", "缺少 key"),
        ("wecom", {"url": WECOM_URL, "msgtype": "image"}, "msgtype", "只能是"),
        ("wecom", {"url": WECOM_URL, "mention_mobiles": ["12345"]}, "mention_mobiles", "手机号码"),
        (
            "wecom",
            {"url": WECOM_URL, "mention_mobiles": ["13800138000"]},
            "mention_mobiles",
            "text 消息",
        ),
        ("wecom", {"url": WECOM_URL, "secrt": "x"}, "secrt", "不是该渠道的设置项"),
        ("wecom", ["not", "a", "dict"], "settings", "JSON 对象"),
        ("dingtalk", {"url": DING_URL}, "secret", "加签"),
        ("dingtalk", {"url": DING_URL, "secret": "  "}, "secret", "加签"),
        ("dingtalk", {"url": DING_URL, "secret": "0123abcd"}, "secret", "SEC 开头"),
        (
            "dingtalk",
            {"url": "https://oapi.dingtalk.com/robot/send", "secret": DING_SECRET},
            "url",
            "缺少 access_token",
        ),
        (
            "dingtalk",
            {"url": "http://oapi.dingtalk.com/robot/send?access_token=t", "sign": False},
            "url",
            "https",
        ),
        (
            "dingtalk",
            {"url": DING_URL, "sign": "yes", "secret": DING_SECRET},
            "sign",
            "true 或 false",
        ),
        (
            "dingtalk",
            {"url": DING_URL, "sign": False, "at_mobiles": ["110"]},
            "at_mobiles",
            "手机号码",
        ),
        ("feishu", {"url": FEISHU_URL}, "secret", "签名校验"),
        (
            "feishu",
            {"url": "https://open.feishu.cn/open-apis/bot/v2/", "sign": False},
            "url",
            "hook/<token>",
        ),
        (
            "feishu",
            {"url": "https://open.feishu.cn:99999/open-apis/bot/v2/hook/t", "sign": False},
            "url",
            "不是有效的",
        ),
        ("feishu", {"url": FEISHU_URL, "sign": False, "msg_type": "image"}, "msg_type", "只能是"),
        ("email", {**EMAIL, "port": 0}, "port", "1–65535"),
        ("email", {**EMAIL, "port": 70000}, "port", "1–65535"),
        ("email", {**EMAIL, "port": "25"}, "port", "整数"),
        ("email", {**EMAIL, "from": "not an address"}, "from", "电子邮件地址"),
        ("email", {**EMAIL, "from": "a@b.cn, c@d.cn"}, "from", "电子邮件地址"),
        ("email", {**EMAIL, "to": ["duty@localhost"]}, "to", "电子邮件地址"),
        ("email", {**EMAIL, "to": ["张三@example.cn"]}, "to", "电子邮件地址"),
        ("email", {**EMAIL, "to": []}, "to", "至少需要一个收件人"),
        ("email", {**EMAIL, "username": "u"}, "password", "同时填写"),
        ("email", {**EMAIL, "security": "none"}, "security", "明文 SMTP 仅限本机"),
        ("email", {**EMAIL, "security": "ssl"}, "security", "只能是"),
        ("email", {**EMAIL, "host": "smtp example.cn"}, "host", "主机名"),
        ("email", {**EMAIL, "ca_pem": "-----BEGIN CERTIFICATE-----\nnope"}, "ca_pem", "PEM"),
        ("email", {"host": "smtp.example.cn", "to": ["duty@example.cn"]}, "from", "必填"),
        ("sms", {**SMS, "app_secret": None}, "app_secret", "必填"),
        ("sms", {**SMS, "to": ["0571-8888888"]}, "to", "手机号码"),
        ("sms", {**SMS, "to": []}, "to", "至少需要一个手机号码"),
        ("sms", {**SMS, "url": "http://sms.example.cn/send"}, "url", "https"),
        ("sms", {**SMS, "provider": "aliyun"}, "provider", "只能是"),
        ("webhook", {"url": "not a url"}, "url", "不是有效的"),
        ("webhook", {"url": "https://hooks.example.cn/x", "secret": "hunter2"}, "secret", "whsec_"),
    ],
)
def test_bad_settings_are_refused_naming_the_field_chinese_first(kind, raw, field, zh):
    with pytest.raises(InvalidSetting) as err:
        channels.validate_settings(kind, raw)
    e = err.value
    assert e.field == field and e.code == "invalid_channel_settings" and e.status_code == 422
    assert e.zh.startswith(f"{field}：") and zh in e.zh, e.zh
    assert e.en.startswith(f"{field}: ") and e.message("en") == e.en


def test_unknown_channel_kind_is_refused():
    with pytest.raises(InvalidSetting) as err:
        channels.validate_settings("pager", {})
    assert err.value.field == "kind" and "未知渠道" in err.value.zh


def test_good_settings_are_normalised():
    w = channels.validate_settings(
        "wecom",
        {"url": WECOM_URL, "msgtype": "text", "mention_mobiles": ["@all", "+86 138-0013-8000"]},
    )
    assert w.mention_mobiles == ("@all", "13800138000")
    # plain http is fine for a loopback robot (tests, a local relay)
    local = "http://127.0.0.1:8080/robot/send?access_token=t"
    assert channels.validate_settings("dingtalk", {"url": local, "sign": False}).url == local
    e = channels.validate_settings(
        "email",
        {
            **EMAIL,
            "from": "榆安区城管值班室 <notify@例子.中国>",
            "to": "值班 <duty@example.cn>",
            "username": "notify",
            "password": "p",
        },
    )
    assert (e.port, e.security) == (587, "starttls")
    assert (
        e.sender.display_name == "榆安区城管值班室" and e.sender.domain == "xn--fsqu00a.xn--fiqs8s"
    )
    assert [str(a.addr_spec) for a in e.to] == ["duty@example.cn"]
    assert channels.validate_settings("email", {**EMAIL, "security": "tls"}).port == 465
    assert (
        channels.validate_settings("email", {**EMAIL, "host": "127.0.0.1", "security": "none"}).port
        == 25
    )
    s = channels.validate_settings("sms", {**SMS, "to": ["+86 13800138000", "13900139000"]})
    assert s.to == ("+8613800138000", "+8613900139000") and s.provider == "generic"
    h = channels.validate_settings("webhook", {"url": "http://hooks.example.cn/x"})
    assert h.secret is None  # plain http stays allowed for a department's own endpoint


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


@pytest.mark.parametrize(
    ("exc", "outcome", "code"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "5.1.1 no such user", "a@x.cn")]
            ),
            Outcome.PERMANENT,
            "smtp 550",
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [
                    aiosmtplib.SMTPRecipientRefused(550, "no", "a@x.cn"),
                    aiosmtplib.SMTPRecipientRefused(451, "greylisted", "b@x.cn"),
                ]
            ),
            Outcome.TRANSIENT,
            "smtp 451",
        ),
        (
            aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"),
            Outcome.PERMANENT,
            "smtp 535",
        ),
        (aiosmtplib.SMTPSenderRefused(553, "not yours", "n@x.cn"), Outcome.PERMANENT, "smtp 553"),
        (
            aiosmtplib.SMTPDataError(452, "4.3.1 insufficient storage"),
            Outcome.TRANSIENT,
            "smtp 452",
        ),
        (aiosmtplib.SMTPConnectError("refused"), Outcome.TRANSIENT, "network"),
        (aiosmtplib.SMTPServerDisconnected("gone"), Outcome.TRANSIENT, "network"),
        (aiosmtplib.SMTPReadTimeoutError("slow"), Outcome.TRANSIENT, "timeout"),
        (aiosmtplib.SMTPNotSupported("no STARTTLS"), Outcome.PERMANENT, "smtp_not_supported"),
        (ConnectionRefusedError(111, "refused"), Outcome.TRANSIENT, "network"),
    ],
)
def test_smtp_failures_are_classified(exc, outcome, code):
    result = smtp.classify(exc)
    assert (result.outcome, result.code) == (outcome, code)


# --- vendors' answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "answer", "outcome", "rate_limited", "gone"),
    [
        (wecom, {"errcode": 0, "errmsg": "ok"}, Outcome.SENT, False, False),
        (
            wecom,
            {"errcode": 45009, "errmsg": "api freq out of limit"},
            Outcome.TRANSIENT,
            True,
            False,
        ),
        (wecom, {"errcode": -1, "errmsg": "system busy"}, Outcome.TRANSIENT, False, False),
        (
            wecom,
            {"errcode": 93000, "errmsg": "invalid webhook url"},
            Outcome.PERMANENT,
            False,
            True,
        ),
        (
            wecom,
            {"errcode": 40008, "errmsg": "invalid message type"},
            Outcome.PERMANENT,
            False,
            False,
        ),
        (wecom, {"errmsg": "?"}, Outcome.PERMANENT, False, False),
        (dingtalk, {"errcode": 0, "errmsg": "ok"}, Outcome.SENT, False, False),
        (dingtalk, {"errcode": 410100, "errmsg": "send too fast"}, Outcome.TRANSIENT, True, False),
        (
            dingtalk,
            {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"},
            Outcome.TRANSIENT,
            True,
            False,
        ),
        (dingtalk, {"errcode": -1, "errmsg": "系统繁忙"}, Outcome.TRANSIENT, False, False),
        (
            dingtalk,
            {"errcode": 310000, "errmsg": "sign not match"},
            Outcome.PERMANENT,
            False,
            False,
        ),
        (
            dingtalk,
            {"errcode": 300001, "errmsg": "token is not exist"},
            Outcome.PERMANENT,
            False,
            True,
        ),
        (feishu, {"code": 0, "msg": "success", "data": {}}, Outcome.SENT, False, False),
        (feishu, {"StatusCode": 0, "StatusMessage": "success"}, Outcome.SENT, False, False),
        (feishu, {"code": 11232, "msg": "frequency limited"}, Outcome.TRANSIENT, True, False),
        (feishu, {"code": 9499, "msg": "too many request"}, Outcome.TRANSIENT, True, False),
        (
            feishu,
            {
                "code": 19021,
                "msg": "sign match fail or timestamp is not within one hour from current time",
            },
            Outcome.PERMANENT,
            False,
            False,
        ),
        (
            feishu,
            {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"},
            Outcome.PERMANENT,
            False,
            True,
        ),
        (feishu, {"code": 9499, "msg": "Bad Request"}, Outcome.PERMANENT, False, False),
    ],
)
def test_vendor_answers_are_classified(module, answer, outcome, rate_limited, gone):
    result = module.classify(answer)
    assert (result.outcome, result.rate_limited, result.gone) == (outcome, rate_limited, gone)


def response(status: int, body: object = b"", **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers=headers, request=httpx.Request("POST", "https://x.test/")
    )


@pytest.mark.parametrize(
    ("resp", "outcome", "code"),
    [
        (response(200, {"code": "OK", "request_id": "r1"}), Outcome.SENT, "OK"),
        (response(200, {"code": "THROTTLED"}), Outcome.TRANSIENT, "THROTTLED"),
        (response(200, {"code": "SYSTEM_BUSY"}), Outcome.TRANSIENT, "SYSTEM_BUSY"),
        (response(200, {"code": "INVALID_SIGNATURE"}), Outcome.PERMANENT, "INVALID_SIGNATURE"),
        (response(200, {"code": "SOMETHING_NEW"}), Outcome.PERMANENT, "SOMETHING_NEW"),
        (response(401, {"code": "INVALID_APP_KEY"}), Outcome.PERMANENT, "INVALID_APP_KEY"),
        (response(503, b"<html>busy</html>"), Outcome.TRANSIENT, "HTTP 503"),
        (response(200, b"<html>login</html>"), Outcome.PERMANENT, "not_json"),
    ],
)
def test_generic_sms_answers_are_classified(resp, outcome, code):
    result = sms.GenericSmsProvider().classify(resp)
    assert (result.outcome, result.code) == (outcome, code)


@pytest.mark.parametrize(
    ("status", "outcome", "gone"),
    [
        (200, None, False),
        (204, None, False),
        (301, Outcome.PERMANENT, False),
        (400, Outcome.PERMANENT, False),
        (404, Outcome.PERMANENT, False),
        (410, Outcome.PERMANENT, True),
        (408, Outcome.TRANSIENT, False),
        (429, Outcome.TRANSIENT, False),
        (500, Outcome.TRANSIENT, False),
        (503, Outcome.TRANSIENT, False),
    ],
)
def test_http_status_classification(status, outcome, gone):
    result = http.status_result(response(status))
    assert (result.outcome if result else None) == outcome
    assert (result.gone if result else False) is gone


def test_retry_after_and_rate_limit_from_429():
    result = http.status_result(response(429, b"slow down", **{"retry-after": "30"}))
    assert result.transient and result.rate_limited and result.retry_after == 30
    dated = response(503, **{"retry-after": "Sat, 22 Nov 2025 08:27:40 GMT"})
    assert http.retry_after(dated, now=AT) == 60
    assert http.retry_after(response(503, **{"retry-after": "soon"})) is None


def test_a_vendor_code_in_a_4xx_body_decides_but_5xx_stays_transient():
    limited = http.vendor_json(response(400, {"code": 11232, "msg": "frequency limited"}), "code")
    assert feishu.classify(limited).rate_limited
    busy = http.vendor_json(response(502, {"code": 19021}), "code")
    assert isinstance(busy, DeliveryResult) and busy.transient


# --- bounded sends --------------------------------------------------------------------------------


class Hangs:
    kind = "hangs"

    def validate_settings(self, raw):
        return raw

    async def send(self, message, settings, ctx):
        await asyncio.sleep(60)


class Breaks(Hangs):
    kind = "breaks"

    async def send(self, message, settings, ctx):
        raise RuntimeError("a bug")


async def test_send_bounded_turns_a_hang_into_a_transient_timeout_and_a_bug_into_an_error():
    ctx = SendContext(timeout=0.1)
    started = time.monotonic()
    hung = await send_bounded(Hangs(), MSG, {}, ctx)
    assert hung.transient and hung.code == "timeout"
    assert time.monotonic() - started < 3
    broken = await send_bounded(Breaks(), MSG, {}, ctx)
    assert broken.transient and broken.code == "error" and "a bug" in broken.detail


def test_http_channels_need_a_client():
    with pytest.raises(RuntimeError):
        SendContext().client()


def test_secrets_stay_out_of_settings_reprs():
    shown = " ".join(
        repr(channels.validate_settings(kind, raw))
        for kind, raw in [
            ("dingtalk", {"url": DING_URL, "secret": DING_SECRET}),
            ("feishu", {"url": FEISHU_URL, "secret": "feishu-test-secret"}),
            ("wecom", {"url": WECOM_URL}),
            ("email", {**EMAIL, "username": "notify", "password": "pw-值班"}),
            ("sms", {**SMS, "app_secret": "sms-app-secret"}),
            (
                "webhook",
                {
                    "url": "https://hooks.example.cn/x",
                    "secret": "whsec_" + base64.b64encode(b"k" * 32).decode(),
                },
            ),
        ]
    )
    for secret in (
        DING_SECRET,
        "feishu-test-secret",
        "693a91f6",
        "pw-值班",
        "sms-app-secret",
        "whsec_",
    ):
        assert secret not in shown


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
