"""What the unit tests of notify's channels share: a fixed instant, robots' addresses and
secrets, a message (and its urgent twin), and the minimal settings of an email and an SMS
channel."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notify.channels.base import Message

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

EMAIL = {"host": "smtp.example.cn", "from": "notify@example.cn", "to": ["duty@example.cn"]}
SMS = {
    "url": SMS_URL,
    "app_key": "k",
    "app_secret": "s",
    "template_id": "T1",
    "to": ["13800138000"],
}
