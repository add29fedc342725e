"""Campaigns: personalised copy, schedules in each user's local time, launch, and the outbox.

Modules: templating (sandboxed Liquid), limits (push lengths and payloads), personalise
(tier variants and offers per user), schedule (RFC 5545 recurrence, local-time delivery),
audience (who a campaign targets and reaches), sessions (the sessions chart), coverage (the
"last used" window vs the cadence), store (drafts, validation, lifecycle), rules (company-wide
frequency cap and quiet hours), dispatch (outbox).
"""

from core.campaigns.audience import CAMPAIGN_CHANNELS, PLATFORMS, reachable_user_ids, users_frame
from core.campaigns.coverage import Coverage, audience_coverage, check_coverage, last_used_window
from core.campaigns.dispatch import DispatchReport, dispatch
from core.campaigns.limits import SURFACES, copy_warnings, device_view, payload_errors, truncate
from core.campaigns.personalise import DEFAULT_OFFERS, CompiledMessage, copy_for_tier, template_problems
from core.campaigns.rules import (
    DeliveryRules,
    FrequencyCap,
    QuietHours,
    delivery_rules,
    frequency_cap,
    quiet_hours,
    schedule_verdict,
    set_delivery_rules,
)
from core.campaigns.schedule import describe, first_send_rollout, next_sends, to_utc, wall_occurrences
from core.campaigns.sessions import session_rhythm, suggest_send_hour
from core.campaigns.spec import CampaignSpec, DeliverySettings, Message, parse_campaign_spec, parse_schedule
from core.campaigns.store import (
    Validation,
    company_timezone,
    duplicate,
    get_campaign,
    launch,
    list_campaigns,
    save_draft,
    set_company_timezone,
    transition,
    validate,
)
from core.campaigns.templating import TemplateError, TemplateProblem, check, render

__all__ = [
    "CAMPAIGN_CHANNELS",
    "DEFAULT_OFFERS",
    "PLATFORMS",
    "SURFACES",
    "CampaignSpec",
    "DeliverySettings",
    "Message",
    "parse_campaign_spec",
    "parse_schedule",
    "CompiledMessage",
    "Coverage",
    "DeliveryRules",
    "DispatchReport",
    "FrequencyCap",
    "QuietHours",
    "TemplateError",
    "TemplateProblem",
    "Validation",
    "check",
    "audience_coverage",
    "check_coverage",
    "company_timezone",
    "copy_for_tier",
    "copy_warnings",
    "delivery_rules",
    "describe",
    "device_view",
    "dispatch",
    "duplicate",
    "first_send_rollout",
    "frequency_cap",
    "get_campaign",
    "last_used_window",
    "launch",
    "list_campaigns",
    "next_sends",
    "payload_errors",
    "quiet_hours",
    "reachable_user_ids",
    "render",
    "save_draft",
    "schedule_verdict",
    "session_rhythm",
    "set_delivery_rules",
    "set_company_timezone",
    "suggest_send_hour",
    "template_problems",
    "to_utc",
    "transition",
    "truncate",
    "users_frame",
    "validate",
    "wall_occurrences",
]
