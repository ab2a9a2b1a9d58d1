"""Notify's rules: who hears what, what the message says, how a delivery goes on.

No I/O, no clock (callers pass times and random numbers in); area paths are read with the
contract's rules (``shared.contract.areas``).

- ``core``: recipients, channels, statuses, who may read an inbox, retries;
- ``subscriptions``: the defaults and the subscriptions that decide who hears an event;
- ``preferences``: channels in order, language, quiet hours, secrets never shown;
- ``templates``: the messages per event type in Simplified Chinese and English; digests;
- ``wording``: the templates as data (``templates.toml``), checked when loaded or changed;
- ``delivery``: giving a channel up (fallback) and pacing robots (digests).
"""

from services.notify.domain.core import (
    AREA_KINDS,
    Carrier,
    CaseNotice,
    Channel,
    ChannelPref,
    DeliveryStatus,
    Message,
    NoticeKind,
    Preferences,
    Recipient,
    RecipientKind,
    check_inbox_access,
    check_replay,
    check_webhook_secret,
    check_webhook_url,
    is_success,
    is_transient,
    retry_delay,
    status_after_failure,
    validate_recipient,
    webhook_message_id,
)
from services.notify.domain.delivery import (
    RobotPlan,
    after_failure,
    pace_robot,
    robot_destination,
)
from services.notify.domain.preferences import (
    check_preferences,
    keep_secrets,
    masked_settings,
    quiet_until,
)
from services.notify.domain.subscriptions import (
    MUST_HEAR,
    Subscription,
    check_mutes,
    hears_by_default,
    select_recipients,
    validate_subscription,
)
from services.notify.domain.templates import (
    assignment_link,
    case_link,
    digest,
    facts,
    link_for,
    render,
    webhook_body,
)
from services.notify.domain.wording import (
    FIELDS,
    LOCALES,
    MessageTemplate,
    Wording,
    check_locale,
    check_template,
    shipped,
)

__all__ = [
    "AREA_KINDS",
    "FIELDS",
    "LOCALES",
    "MUST_HEAR",
    "Carrier",
    "CaseNotice",
    "Channel",
    "ChannelPref",
    "DeliveryStatus",
    "Message",
    "MessageTemplate",
    "NoticeKind",
    "Preferences",
    "Recipient",
    "RecipientKind",
    "RobotPlan",
    "Subscription",
    "Wording",
    "after_failure",
    "assignment_link",
    "case_link",
    "check_inbox_access",
    "check_locale",
    "check_mutes",
    "check_preferences",
    "check_replay",
    "check_template",
    "check_webhook_secret",
    "check_webhook_url",
    "digest",
    "facts",
    "hears_by_default",
    "is_success",
    "is_transient",
    "keep_secrets",
    "link_for",
    "masked_settings",
    "pace_robot",
    "quiet_until",
    "render",
    "retry_delay",
    "robot_destination",
    "select_recipients",
    "shipped",
    "status_after_failure",
    "validate_recipient",
    "validate_subscription",
    "webhook_body",
    "webhook_message_id",
]
