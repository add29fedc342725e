"""Step 2, Message: Liquid copy, offers by likelihood tier, per-tier variants, A/B/n variants, and a
live preview on the devices the campaign reaches, as one of its real users."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import campaigns as cc
from core.campaigns import audience as aud
from core.campaigns import experiment, limits, personalise
from core.campaigns.draft import ComposerDraft
from core.campaigns.spec import CampaignSpec, TierCopy
from core.campaigns.templating import VARIABLES
from core.markup import plain
from core.tiers import TIER_BY_NAME, TIER_NAMES
from pages.campaign_steps import state

SURFACES_BY_PLATFORM = {"iOS": ("ios_lock", "ios_banner"), "Android": ("android_lock", "android_drawer")}
NO_PREDICTION = 0  # a selectbox shows None as "nothing chosen"; 0 is no prediction
PREVIEW_MODES = ["A random user", "A chosen user", "One user per tier"]


def render(engine) -> None:
    draft = state.draft()
    channel = draft.channel
    title_label = personalise.field_label(channel, "title")
    names = state.prediction_names(engine)
    options = [NO_PREDICTION, *names]
    current = draft.message.prediction_id or NO_PREDICTION
    prediction = st.selectbox(
        "Likelihood from prediction",
        options,
        index=options.index(current) if current in options else 0,
        key="c_prediction",
        format_func=lambda i: "None (no likelihood in the copy)" if i == NO_PREDICTION else names.get(i, f"#{i}"),
        help="Gives the copy each user's likelihood_score, likelihood_tier and the tier's offer.",
    )
    draft = draft.with_message(prediction_id=prediction or None)

    title = st.text_input(
        title_label,
        value=draft.message.title,
        key="c_title",
        placeholder='We miss you, {{ first_name | default: "there" }}',
    )
    title_errors = st.container()
    body = st.text_area(
        "Body",
        value=draft.message.body,
        key="c_body",
        height=110,
        placeholder="Here is {{ offer }} to welcome you back.",
    )
    body_errors = st.container()
    draft = draft.with_message(title=title, body=body)

    with st.expander("Personalisation: variables and examples"):
        st.markdown(
            'Write Liquid: `{{ first_name | default: "there" }}`, '
            '`{% if likelihood_tier == "Low" %}...{% endif %}`. Available variables:'
        )
        st.dataframe(
            [{"variable": k, "example": str(v)} for k, v in VARIABLES.items()],
            hide_index=True,
            width="stretch",
            column_config={"variable": st.column_config.TextColumn("Variable"), "example": "Example"},
        )
    st.markdown("**Offers by likelihood tier** (a sliding scale: the likelier to buy, the smaller the discount)")
    offers = dict(draft.message.offers)
    for col, tier in zip(st.columns(len(TIER_NAMES)), reversed(TIER_NAMES), strict=True):
        offers[tier] = col.text_input(
            f"{tier} tier offer", value=offers.get(tier, ""), key=f"c_offer_{tier}", help=TIER_BY_NAME[tier].label()
        )
    use_variants = st.checkbox(
        "Different message per likelihood tier", value=draft.message.use_variants, key="c_use_variants"
    )
    draft = draft.with_message(offers=offers, use_variants=use_variants)
    variant_errors = {}
    if use_variants:
        st.caption("Leave a field blank to use the main copy for that tier.")
        variants = dict(draft.message.variants)
        for tier in reversed(TIER_NAMES):
            with st.container(border=True):
                st.markdown(f"**{TIER_BY_NAME[tier].label()}**")
                copy = variants.get(tier) or TierCopy()
                tier_title = st.text_input(
                    f"{tier} tier {title_label.lower()}", value=copy.title, key=f"c_{tier}_title"
                )
                variant_errors[f"{tier}.title"] = st.container()
                tier_body = st.text_area(f"{tier} tier body", value=copy.body, key=f"c_{tier}_body", height=80)
                variant_errors[f"{tier}.body"] = st.container()
                variants[tier] = TierCopy(title=tier_title, body=tier_body)
        draft = draft.with_message(variants=variants)
    draft = _ab_variants(draft, title_label)
    state.keep(draft)
    variant_problems = draft.variant_problems()
    for problem in variant_problems:
        st.error(plain(problem))

    problems = personalise.template_problems(draft.message.to_json(), channel)
    places = {"title": title_errors, "body": body_errors, **variant_errors}
    for key, problem in problems.items():
        places[key].error(plain(f"Line {problem.line}: {problem.message}"))
    missing = personalise.likelihood_without_prediction(draft.message)
    if missing:
        body_errors.error(missing)
    if variant_problems:  # the draft makes no spec until they are fixed; said once, above
        st.info("Fix the A/B variants above to see the preview.")
        return
    spec = state.spec_of(draft)
    if spec is not None:
        _preview(engine, spec, bool(problems))


def _split_evenly() -> None:
    state.keep(state.draft().with_shares_split_evenly())
    for index in range(experiment.MAX_VARIANTS):
        state.forget_widget(f"c_v{index}_share")


def _ab_variants(draft: ComposerDraft, title_label: str) -> ComposerDraft:
    """A/B/n variants: name, share, a later send time, copy and offers (Results compares them)."""
    ab_test = st.checkbox(
        "A/B test: send variants of this message",
        value=draft.ab_test,
        key="c_ab",
        help="Each treated user gets one variant, from their random bucket; Results compares them.",
    )
    draft = draft.with_(ab_test=ab_test)
    if not ab_test:
        return draft
    left, right = st.columns([1, 3])
    count = left.number_input(
        "Variants", min_value=2, max_value=experiment.MAX_VARIANTS, step=1, value=draft.variant_count, key="c_variants"
    )
    draft = draft.with_(variant_count=int(count))
    right.button("Split evenly", on_click=_split_evenly)
    st.caption(
        "Blank copy or offers fall back to the message above. 'Send later' tests a second send time: "
        "that variant goes out this many minutes after the schedule's time."
    )
    for index, slot in enumerate(draft.variant_slots[: draft.variant_count]):
        with st.container(border=True):
            left, middle, right = st.columns(3)
            name = left.text_input(
                "Variant name", value=slot.name, key=f"c_v{index}_name", max_chars=experiment.VARIANT_NAME_LENGTH
            )
            share = middle.number_input(
                "Share of treated users (%)",
                min_value=0.0,
                max_value=100.0,
                step=1.0,
                format="%g",
                value=slot.share,
                key=f"c_v{index}_share",
            )
            delay = right.number_input(
                "Send later by (minutes)",
                min_value=0,
                max_value=experiment.MAX_DELAY_MINUTES,
                step=15,
                value=slot.delay_minutes,
                key=f"c_v{index}_delay",
            )
            title = st.text_input(f"{title_label} (variant)", value=slot.title, key=f"c_v{index}_title")
            body = st.text_area("Body (variant)", value=slot.body, key=f"c_v{index}_body", height=70)
            offers = {}
            for column, tier in zip(st.columns(len(TIER_NAMES)), reversed(TIER_NAMES), strict=True):
                offer = column.text_input(
                    f"{tier} offer (variant)", value=slot.offers.get(tier, ""), key=f"c_v{index}_offer_{tier}"
                )
                if offer.strip():
                    offers[tier] = offer
            draft = draft.with_slot(
                index, name=name, share=float(share), delay_minutes=int(delay), title=title, body=body, offers=offers
            )
    return draft


def _next_preview_user() -> None:
    st.session_state["c_preview_seed"] = st.session_state.get("c_preview_seed", 0) + 1


def _heading(user, rendered: personalise.Rendered) -> str:
    """A user as the Segments page names them: their external id, then who they are."""
    details = [user["first_name"] or "no first name", user["platform"], user["timezone"]]
    if rendered.tier:
        details.append(f"{rendered.tier} tier")
    return f"User {user['external_id']} ({', '.join(str(d) for d in details)})"


def _preview(engine, spec: CampaignSpec, broken: bool) -> None:
    st.subheader("Preview")
    if broken:
        st.info("Fix the template errors above to see the preview.")
        return
    found = state.audience(engine, spec)
    if found is None or len(found[2]) == 0:
        st.caption("Choose an audience with reachable users to preview the message as one of them.")
        return
    reachable = found[2]
    users = aud.users_frame(engine)
    message = spec.message.to_json()
    mode = st.radio("Preview as", PREVIEW_MODES, horizontal=True, key="c_preview_mode")
    seed = st.session_state.get("c_preview_seed", 0)
    try:
        if mode == "One user per tier":
            scores = personalise.scores_for(engine, spec.message.prediction_id, reachable)
            picks = personalise.sample_tier_users(users.loc[reachable], scores, seed)
            if not picks:
                st.caption("No scored user in the audience: choose a prediction on this step.")
            rendered = personalise.render_for_users(engine, message, spec.channel, list(picks.values()))
            for tier, user_id in picks.items():
                _show_rendering(spec, rendered[user_id], f"{tier} tier — user {users.loc[user_id, 'external_id']}")
            return
        if mode == "A chosen user":
            first = str(users.loc[int(reachable[0]), "external_id"])
            wanted = st.text_input("User id", value=first, key="c_preview_user", help="As the Segments page shows it.")
            matches = users.index[users["external_id"] == wanted.strip()]
            if not len(matches):
                st.error(plain(f"There is no user {wanted.strip()!r}."))
                return
            user_id = int(matches[0])
            if user_id not in set(reachable.tolist()):
                st.warning(f"User {wanted.strip()} is not in the reachable audience; previewing anyway.")
        else:
            user_id = int(reachable[np.random.default_rng(seed).integers(len(reachable))])
            st.button("Another random user", on_click=_next_preview_user)
        rendered = personalise.render_for_users(engine, message, spec.channel, [user_id])
        _show_rendering(spec, rendered[user_id], _heading(users.loc[user_id], rendered[user_id]))
    except cc.TemplateError as error:
        st.error(plain(f"{error.field}, line {error.problem.line}: {error.problem.message}"))


def _show_rendering(spec: CampaignSpec, rendered: personalise.Rendered, heading: str) -> None:
    st.markdown(f"**{heading}**")
    if spec.channel == "push":
        platforms = [p for p in ("iOS", "Android") if not spec.platforms or p in spec.platforms]
        if not platforms:
            st.caption("Web push shows the title and body as the browser's notification.")
            platforms = ["Android"]
        cols = st.columns(len(platforms) * 2)
        for i, (platform, surface) in enumerate((p, s) for p in platforms for s in SURFACES_BY_PLATFORM[p]):
            cols[i].markdown(
                limits.phone_mockup_html(platform, surface, rendered.title, rendered.body), unsafe_allow_html=True
            )
        for warning in limits.copy_warnings("push", rendered.title, rendered.body, platforms):
            st.warning(warning)
        for error in limits.payload_errors(rendered.title, rendered.body, platforms):
            st.error(plain(error))
    else:
        with st.container(border=True):
            label = "Subject" if spec.channel == "email" else "Title"
            st.text(f"{label}: {rendered.title}")
            st.text(rendered.body)
        for warning in limits.copy_warnings(spec.channel, rendered.title, rendered.body):
            st.warning(warning)
