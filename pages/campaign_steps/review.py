"""Step 4, Review & launch: every setting in one table, what blocks a launch or deserves a second
look, then save the draft or launch it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import campaigns as cc
from core.access import Actor, Permission, can
from core.campaigns import audience as aud
from core.campaigns import experiment, personalise
from core.campaigns import schedule as sch
from core.campaigns.draft import selection_sentence
from core.campaigns.spec import CampaignSpec, DeliverySettings
from core.db import get_engine
from core.errors import UserError
from core.markup import plain
from core.tiers import TIER_NAMES
from core.timeutil import screen_time, utcnow
from pages.campaign_steps import state
from pages.team.access import signed_in_actor


def _rule_summary(company: cc.DeliveryRules | None, settings: DeliverySettings) -> tuple[str, str]:
    if company is None:
        return ("Cannot be read: set it again on the Data page",) * 2
    if not company.cap.enabled:
        cap = "Off company-wide"
    elif settings.obeys_frequency_cap:
        cap = f"Obeys: {company.cap.sentence()[0].lower()}{company.cap.sentence()[1:]}"
    else:
        cap = "Ignored: this campaign is neither held back by it nor counted in it"
    if not company.quiet.enabled:
        quiet = "Off company-wide"
    elif settings.obeys_quiet_hours:
        quiet = f"Obeys: {company.quiet.sentence()}"
    else:
        quiet = "Ignored: this campaign sends at any hour"
    return cap, quiet


def _again(settings: DeliverySettings) -> str:
    if not settings.reeligible:
        return "No, only once"
    if settings.reeligible_after_days is not None:
        return f"Yes, after {settings.reeligible_after_days} days"
    return "Yes"


def _offer_rows(spec: CampaignSpec) -> list[tuple[str, str]]:
    """Offers only where they can reach the copy: a prediction gives the tiers, the copy uses {{ offer }}."""
    used = {v for variables in personalise.likelihood_fields(spec.message).values() for v in variables}
    if spec.message.prediction_id is None or "offer" not in used:
        return []
    offers = spec.message.offers
    return [("Offers", " · ".join(f"{t}: {offers.get(t) or '—'}" for t in reversed(TIER_NAMES)))]


def _measurement_rows(spec: CampaignSpec, prediction_events: dict[int, str]) -> list[tuple[str, str]]:
    """How the campaign is measured, and its A/B/n variants."""
    settings = spec.settings
    event = (
        f"'{settings.conversion_event}'"
        if settings.conversion_event
        else (
            f"'{experiment.default_conversion_event(prediction_events.get(spec.message.prediction_id))}' (the default)"
        )
    )
    control = experiment.DEFAULT_CONTROL_PERCENT if settings.control_percent is None else settings.control_percent
    rows = [
        ("Conversion", f"{event} within {settings.conversion_window_days} days of a send"),
        ("Control group", f"{control:g}% of the audience, never messaged"),
    ]
    if spec.message.ab_variants:
        described = " · ".join(
            f"{v.name}: {v.share:g}%" + (f", {v.delay_minutes} min later" if v.delay_minutes else "")
            for v in spec.message.ab_variants
        )
        rows.append(("A/B variants", described))
    return rows


def render(engine, actor: Actor) -> None:
    spec = state.spec_of(state.draft())
    if spec is None:
        return
    company_zone = cc.company_timezone(engine)
    check = cc.validate(spec, engine, screen_time())
    predictions = state.prediction_names(engine)
    if spec.segment_id is not None:
        audience_text = f"Segment “{state.segment_names(engine).get(spec.segment_id, spec.segment_id)}”"
    elif spec.audience is not None:
        audience_text = f"Predictions selection: {selection_sentence(spec.audience, predictions)}"
    else:
        audience_text = "—"
    prediction = spec.message.prediction_id
    rows = [
        ("Campaign name", spec.name or "—"),
        ("Audience", audience_text),
        ("Users in the audience today", f"{check.audience_users:,}"),
        ("Channel", aud.CAMPAIGN_CHANNELS.get(spec.channel, spec.channel)),
        ("Platforms", ", ".join(spec.platforms) or "All platforms"),
        ("Reachable users today", f"{check.reachable_users:,}"),
        (personalise.field_label(spec.channel, "title"), spec.message.title or "—"),
        ("Body", spec.message.body or "—"),
        ("Per-tier variants", "Yes" if spec.message.use_variants else "No"),
        ("Likelihood from prediction", predictions.get(prediction, "None") if prediction else "None"),
        *_offer_rows(spec),
        ("Schedule", sch.describe(spec.schedule, company_zone)),
        ("Receive again", _again(spec.settings)),
        *_measurement_rows(spec, prediction_events(engine)),
        *zip(("Frequency cap", "Quiet hours"), _rule_summary(state.company_rules(engine), spec.settings), strict=True),
    ]
    st.table(pd.DataFrame(rows, columns=["Setting", "Value"]).set_index("Setting"))
    if spec.schedule.kind != "now" and not check.errors:
        upcoming = sch.next_sends(spec.schedule, utcnow(), [company_zone], company_zone, count=3)
        if not upcoming.empty:
            st.caption(
                "Next sends (company zone " + company_zone + "): " + "; ".join(upcoming["Occurrence"]) + " local"
            )
    for error in check.errors:
        st.error(plain(error))
    for warning in check.warnings:
        st.warning(warning)
    if check.ok:
        st.success("Ready to launch.")
    left, _, middle, right = st.columns([1, 2, 1, 1.4])
    left.button("Back", on_click=state.go, args=(state.STEPS[-2],), width="stretch")
    middle.button(
        "Save draft",
        on_click=_save_clicked,
        args=(spec,),
        width="stretch",
        disabled=not can(actor, Permission.COMPOSE_CAMPAIGN),
    )
    right.button(
        "Launch campaign",
        type="primary",
        disabled=not check.ok or not can(actor, Permission.LAUNCH_CAMPAIGN),
        on_click=_launch_clicked,
        args=(spec,),
        width="stretch",
    )


def prediction_events(engine) -> dict[int, str]:
    predictions = personalise.targetable_predictions(engine)
    return dict(zip(predictions["id"].astype(int), predictions["event"], strict=True))


def _save_clicked(spec: CampaignSpec) -> None:
    engine = get_engine()
    draft = state.draft()
    try:
        # the person signed in now: a role changed since this button was drawn counts
        campaign_id = cc.save_draft(spec, engine, draft.campaign_id, draft.version, actor=signed_in_actor(engine))
    except UserError as error:
        state.flash("error", plain(error))
        return
    version = cc.get_campaign(campaign_id, engine)[1]["version"]
    state.keep(draft.with_(campaign_id=campaign_id, version=version))
    state.flash("toast", f"Draft “{plain(spec.name)}” saved.")


def _launch_clicked(spec: CampaignSpec) -> None:
    draft = state.draft()
    try:
        engine = get_engine()
        cc.launch(spec, engine, draft.campaign_id, draft.version, actor=signed_in_actor(engine))
    except UserError as error:
        state.flash("error", plain(error))
        return
    state.reset()
    st.session_state["campaigns_view"] = "Campaigns"
    state.flash(
        "success",
        f"Campaign “{plain(spec.name)}” launched. The worker sends it on schedule; follow each message on the Outbox view.",
    )
