"""Push length and payload limits (REFERENCE.md), in one table, and how each device truncates.

Lengths are in characters, payloads in UTF-8 bytes. A line holds about 30-40 characters;
we use 40, which makes the iOS lock screen's four body lines its 160 characters.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

CHARS_PER_LINE = 40
ELLIPSIS = "…"


@dataclass(frozen=True)
class Surface:
    """Where a push is read, and how much of it shows there."""

    key: str
    platform: str
    label: str
    title_chars: int  # one line of title
    body_chars: int


SURFACES: tuple[Surface, ...] = (
    Surface("ios_lock", "iOS", "iOS lock screen", CHARS_PER_LINE, 160),
    Surface("ios_banner", "iOS", "iOS banner", CHARS_PER_LINE, 80),
    Surface("android_lock", "Android", "Android lock screen", CHARS_PER_LINE, 49),
    Surface("android_drawer", "Android", "Android notification drawer", CHARS_PER_LINE, 597),
)
SURFACE_BY_KEY = {s.key: s for s in SURFACES}
IOS_LOCK_WITH_IMAGE_CHARS = 130
PAYLOAD_BYTES = {"iOS": 2_048, "Android": 4_096, "Web": 4_096}
EMAIL_SUBJECT_CHARS = 78  # past this most inboxes cut the subject


def truncate(text: str, limit: int) -> str:
    """`text` as a device shows it in `limit` characters: cut, with an ellipsis, when longer."""
    text = " ".join((text or "").split())  # devices collapse line breaks and runs of spaces
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + ELLIPSIS


@dataclass(frozen=True)
class DeviceView:
    surface: Surface
    title: str
    body: str
    title_cut: bool
    body_cut: bool


def device_view(title: str, body: str, surface_key: str) -> DeviceView:
    surface = SURFACE_BY_KEY[surface_key]
    shown_title = truncate(title, surface.title_chars)
    shown_body = truncate(body, surface.body_chars)
    return DeviceView(
        surface=surface,
        title=shown_title,
        body=shown_body,
        title_cut=shown_title != " ".join((title or "").split()),
        body_cut=shown_body != " ".join((body or "").split()),
    )


def payload_bytes(title: str, body: str, platform: str) -> int:
    """Size of the provider payload carrying this title and body."""
    if platform == "iOS":
        payload = {"aps": {"alert": {"title": title, "body": body}, "sound": "default"}}
    else:
        payload = {"notification": {"title": title, "body": body}}
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def copy_warnings(channel: str, title: str, body: str, platforms: list[str] | None = None) -> list[str]:
    """What a device or inbox will cut from this copy, as sentences (empty when it all fits)."""
    warnings: list[str] = []
    if channel == "email":
        if len(title or "") > EMAIL_SUBJECT_CHARS:
            warnings.append(f"The subject has {len(title)} characters; most inboxes show about {EMAIL_SUBJECT_CHARS}.")
        return warnings
    if channel != "push":
        return warnings
    shown = set(platforms or ["iOS", "Android"])
    for surface in SURFACES:
        if surface.platform not in shown:
            continue
        view = device_view(title, body, surface.key)
        if view.title_cut:
            warnings.append(f"{surface.label}: the title is cut after {surface.title_chars} characters.")
        if view.body_cut:
            warnings.append(
                f"{surface.label}: the body is cut after {surface.body_chars} characters (it has {len(body)})."
            )
    return warnings


def payload_errors(title: str, body: str, platforms: list[str] | None = None) -> list[str]:
    """Push payloads a provider would reject as too large."""
    errors = []
    for platform in sorted(set(platforms or ["iOS", "Android"]) & set(PAYLOAD_BYTES)):
        size = payload_bytes(title, body, platform)
        if size > PAYLOAD_BYTES[platform]:
            errors.append(
                f"The {platform} push payload would be {size:,} bytes; the limit is {PAYLOAD_BYTES[platform]:,}."
            )
    return errors


def phone_mockup_html(platform: str, surface_key: str, title: str, body: str) -> str:
    """A phone-style notification mock-up; every piece of user text is escaped."""
    view = device_view(title, body, surface_key)
    dark = platform == "iOS"
    bg, fg, card = ("#1c1c1e", "#f2f2f7", "#3a3a3c") if dark else ("#e8eaed", "#202124", "#ffffff")
    note = " · cut" if view.title_cut or view.body_cut else ""
    body_style = (
        "display:-webkit-box;-webkit-line-clamp:4;-webkit-box-orient:vertical;overflow:hidden;"
        if surface_key == "ios_lock"
        else ""
    )
    return (
        f'<div style="background:{bg};border-radius:28px;padding:18px 12px 22px;max-width:340px;'
        f'font-family:-apple-system,Roboto,sans-serif;margin-bottom:8px">'
        f'<div style="color:{fg};font-size:11px;opacity:.7;margin:0 6px 8px">'
        f"{html.escape(view.surface.label)}{html.escape(note)}</div>"
        f'<div style="background:{card};color:{fg};border-radius:14px;padding:10px 12px">'
        f'<div style="font-size:11px;opacity:.6">LIKELY · now</div>'
        f'<div style="font-weight:600;font-size:14px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis">{html.escape(view.title)}</div>'
        f'<div style="font-size:13px;line-height:1.3;{body_style}">{html.escape(view.body)}</div>'
        f"</div></div>"
    )
