"""Desk strings in English and Chinese. Each page module registers its own strings;
``t`` falls back to English, then to the key itself (so a missing string shows)."""

from __future__ import annotations

LANGUAGES = ("en", "zh")
_STRINGS: dict[str, dict[str, str]] = {}


def register(strings: dict[str, dict[str, str]]) -> None:
    """Add ``{key: {"en": ..., "zh": ...}}``; a key registered twice must agree."""
    for key, texts in strings.items():
        if "en" not in texts:
            raise ValueError(f"desk string {key!r} has no English text")
        known = _STRINGS.get(key)
        if known is not None and known != texts:
            raise ValueError(f"desk string {key!r} registered twice with different texts")
        _STRINGS[key] = dict(texts)


def t(key: str, lang: str, **values: object) -> str:
    texts = _STRINGS.get(key)
    if texts is None:
        return key
    text = texts.get(lang) or texts["en"]
    return text.format(**values) if values else text


def missing(lang: str) -> list[str]:
    """Keys without a text in ``lang`` (a test keeps this empty for zh)."""
    return sorted(k for k, v in _STRINGS.items() if not v.get(lang))


register(
    {
        "app.title": {"en": "Arrears desk", "zh": "催收工作台"},
        "nav.handoffs": {"en": "Handoffs", "zh": "转人工队列"},
        "nav.kpis": {"en": "KPIs", "zh": "指标"},
        "nav.review": {"en": "Compliance review", "zh": "合规审查"},
        "nav.audit": {"en": "Audit log", "zh": "审计日志"},
        "nav.logout": {"en": "Log out", "zh": "退出登录"},
        "nav.signed_in_as": {
            "en": "Signed in as {name} ({role})",
            "zh": "当前用户 {name}（{role}）",
        },
        "nav.language": {"en": "Language", "zh": "语言"},
        "role.collector": {"en": "collector", "zh": "催收员"},
        "role.supervisor": {"en": "supervisor", "zh": "主管"},
        "role.compliance": {"en": "compliance", "zh": "合规"},
        "role.admin": {"en": "admin", "zh": "管理员"},
        "login.title": {"en": "Log in", "zh": "登录"},
        "login.username": {"en": "Username", "zh": "用户名"},
        "login.password": {"en": "Password", "zh": "密码"},
        "login.submit": {"en": "Log in", "zh": "登录"},
        "login.failed": {
            "en": "Wrong username or password.",
            "zh": "用户名或密码错误。",
        },
        "login.locked": {
            "en": "Too many failed attempts. Try again after {until} UTC.",
            "zh": "失败次数过多，请在 UTC {until} 之后再试。",
        },
        "login.logged_out": {"en": "You are logged out.", "zh": "您已退出登录。"},
        "forbidden.title": {"en": "Not allowed", "zh": "无权访问"},
        "forbidden.role": {
            "en": "Your role does not give access to this page.",
            "zh": "您的角色无权访问此页面。",
        },
        "forbidden.csrf": {
            "en": "The form expired or did not come from this site. Reload the page and try again.",
            "zh": "表单已过期或并非来自本站。请刷新页面后重试。",
        },
        "forbidden.back": {"en": "Back to the start page", "zh": "返回首页"},
    }
)
