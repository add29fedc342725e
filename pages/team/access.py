"""Who is using the app, for every page: the one seam between Streamlit's login and core.access.

Without an [auth] section (localhost only) the single local user is the admin. With one, the
signed-in email must be on the allow list (secrets: [access] allowed_domains / allowed_emails);
anyone else sees a refusal and nothing more. Tests sign people in through AppTest's `user`.
"""

import streamlit as st

from core.access import Actor, AllowList, allowed, local_admin, sign_in
from core.markup import plain


def login_required() -> bool:
    """True when an [auth] section is configured in secrets.toml (see README: Deploying for a team)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def signed_in_actor(engine) -> Actor:
    """The person using this run; stops the run with a refusal for anyone not allowed in."""
    if not login_required():
        return local_admin()
    if not st.user.get("is_logged_in"):
        st.stop()  # app.py shows the login wall
    email = str(st.user.get("email") or "")
    settings = st.secrets.get("access")
    verified = st.user.get("email_verified") is not False  # providers that say "unverified" are refused
    if not (verified and AllowList.from_settings(settings).admits(email)):
        st.title("Likely")
        st.error(
            f"{plain(email) if email else 'This account'} is not allowed into this workspace. "
            "Ask an admin to add your address or your company's domain to the allowed list."
        )
        st.button("Log out", on_click=st.logout)
        st.stop()
    return sign_in(email, engine)


def page_actor(engine) -> Actor:
    """The signed-in actor, with a line saying what they may do on this page's app."""
    actor = signed_in_actor(engine)
    st.caption(f"Signed in as {plain(actor.email)} ({actor.role}). You may: {'; '.join(allowed(actor))}.")
    return actor
