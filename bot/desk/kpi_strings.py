"""The KPI dashboard's strings in English and Chinese.

Registered with ``bot.desk.i18n.register`` by ``bot.desk.kpi_pages``.
"""

from __future__ import annotations

KPI_STRINGS: dict[str, dict[str, str]] = {
    "kpi.title": {"en": "KPIs", "zh": "关键指标"},
    "kpi.period": {
        "en": "Period (UTC days, end excluded)",
        "zh": "期间（UTC 日期，不含结束日）",
    },
    "kpi.start": {"en": "From", "zh": "开始"},
    "kpi.end": {"en": "To", "zh": "结束"},
    "kpi.show": {"en": "Show", "zh": "查看"},
    "kpi.bad_period": {
        "en": "That period is not valid; showing the last 30 days.",
        "zh": "期间无效，显示最近30天。",
    },
    "kpi.recovery": {"en": "Recovery rate", "zh": "回收率"},
    "kpi.recovery.help": {
        "en": "Share of the arrears at the start that was paid in the period.",
        "zh": "期初逾期金额中在期间内收回的比例。",
    },
    "kpi.arrears_start": {"en": "Arrears at start", "zh": "期初逾期"},
    "kpi.arrears_end": {"en": "Arrears at end", "zh": "期末逾期"},
    "kpi.recovered": {"en": "Recovered", "zh": "已回收"},
    "kpi.payments": {"en": "Payments received", "zh": "收到还款"},
    "kpi.reduction": {"en": "Reduction rate", "zh": "压降率"},
    "kpi.currency": {"en": "Currency", "zh": "币种"},
    "kpi.roll": {"en": "Roll rates between stages", "zh": "阶段迁徙率"},
    "kpi.roll.help": {
        "en": "Rows: stage at the start; columns: stage at the end; cells: share of "
        "the row's accounts.",
        "zh": "行为期初阶段，列为期末阶段，单元格为该行账户所占比例。",
    },
    "kpi.accounts": {"en": "Accounts", "zh": "账户数"},
    "kpi.promises": {"en": "Promises to pay", "zh": "还款承诺"},
    "kpi.promise_rate": {"en": "Kept rate", "zh": "履约率"},
    "kpi.kept": {"en": "kept", "zh": "已履约"},
    "kpi.partly_kept": {"en": "partly kept", "zh": "部分履约"},
    "kpi.broken": {"en": "broken", "zh": "违约"},
    "kpi.open": {"en": "open", "zh": "未到期"},
    "kpi.contacts": {"en": "Contacts per channel", "zh": "各渠道联系次数"},
    "kpi.cost": {"en": "Cost per channel ({currency})", "zh": "各渠道成本（{currency}）"},
    "kpi.total_cost": {"en": "Total cost", "zh": "总成本"},
    "kpi.right_party": {"en": "Right-party contact rate", "zh": "本人联系率"},
    "kpi.handoffs": {"en": "Handoffs", "zh": "转人工"},
    "kpi.handoffs.per_day": {"en": "Handoffs opened per day", "zh": "每日转人工数量"},
    "kpi.handoffs.by_reason": {"en": "By reason", "zh": "按原因"},
    "kpi.opened": {"en": "opened", "zh": "新增"},
    "kpi.closed": {"en": "closed", "zh": "已结束"},
    "kpi.first_response": {"en": "Time to first response", "zh": "首次响应时间"},
    "kpi.median": {"en": "median", "zh": "中位数"},
    "kpi.p90": {"en": "90th percentile", "zh": "90分位"},
    "kpi.within_sla": {"en": "within the {minutes}-minute SLA", "zh": "在{minutes}分钟时限内"},
    "kpi.responded": {"en": "answered", "zh": "已回复"},
    "kpi.later": {"en": "later", "zh": "更久"},
    "kpi.no_data": {"en": "No data in this period.", "zh": "该期间无数据。"},
}
