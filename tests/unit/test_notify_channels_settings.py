"""Notify's channel settings, without a network: bad ones refused naming the field (Chinese
first), good ones normalised, secrets kept out of their reprs.
"""

from __future__ import annotations

import base64

import pytest

from services.notify import channels
from services.notify.channels.base import InvalidSetting
from tests.unit.notify_channels_fixtures import (
    DING_SECRET,
    DING_URL,
    EMAIL,
    FEISHU_URL,
    SMS,
    WECOM_URL,
)


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
