"""PII masking by role: collectors see enough to recognise a borrower, not the full
phone number, email address or ID number; supervisors, compliance and admins see all."""

from __future__ import annotations

FULL_VIEW_ROLES = frozenset({"supervisor", "compliance", "admin"})


def sees_full_pii(role: str | None) -> bool:
    return role in FULL_VIEW_ROLES


def mask_phone(value: str | None, role: str | None) -> str:
    """``+12025550123`` -> ``+1 *** *** 0123``; ``+8613800138000`` -> ``+86 *** **** 8000``."""
    if not value:
        return ""
    if sees_full_pii(role):
        return value
    digits = value.replace(" ", "")
    last4 = digits[-4:] if len(digits) > 4 else ""
    if digits.startswith("+1"):
        return f"+1 *** *** {last4}"
    if digits.startswith("+86"):
        return f"+86 *** **** {last4}"
    prefix = digits[:3] if digits.startswith("+") else ""
    return f"{prefix} *** {last4}".strip()


def mask_email(value: str | None, role: str | None) -> str:
    """``jane.doe@example.com`` -> ``j***@example.com``."""
    if not value:
        return ""
    if sees_full_pii(role):
        return value
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_id(value: str | None, role: str | None) -> str:
    """ID numbers (or their last digits): all stars but the last two."""
    if not value:
        return ""
    if sees_full_pii(role):
        return value
    return "*" * max(len(value) - 2, 2) + value[-2:] if len(value) > 2 else "**"


def mask_address(channel: str, value: str | None, role: str | None) -> str:
    """A contact address of any channel (web chat and push tokens are always shortened)."""
    if channel == "sms":
        return mask_phone(value, role)
    if channel == "email":
        return mask_email(value, role)
    if not value:
        return ""
    return value if sees_full_pii(role) or len(value) <= 8 else value[:4] + "…"
