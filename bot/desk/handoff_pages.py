"""The handoff desk pages: the queue, the borrower's history, replies, approvals, closing.

Server-rendered; every change is a POST with the CSRF token that redirects back to a
page (post/redirect/get), carrying what happened in the query string (``notice``,
``error``, ``msg``: the transcript line whose gate outcome the page explains).

Who may do what:
- collector, supervisor, admin: see the queue and borrower pages, claim, reply and
  close a handoff they hold, release it;
- supervisor, admin: also assign to a named person, release, reply in or close any
  handoff, and approve or decline proposals (``bot.desk.approvals.APPROVER_ROLES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.desk import approvals
from bot.desk import queue as q
from bot.desk.history import borrower_history
from bot.desk.i18n import register
from bot.desk.replies import ReplyOutcome, outcome_of, recipient_address, reply
from bot.desk.security import DeskUser, desk_now, require_roles, verify_csrf
from bot.desk.templating import env, render
from bot.models import Conversation, Handoff, Message, User
from bot.runtime import Runtime
from channels.templates_render import format_money


def _money(amount: Decimal | str | int | None, currency: str) -> str:
    return format_money(Decimal(str(amount if amount is not None else 0)), currency)


def _summary(terms: Mapping[str, Any], kind: str, lang: str) -> str:
    return approvals.summary(dict(terms), kind, lang)


env.filters["money"] = _money
env.filters["summary"] = _summary

DESK_ROLES = ("collector", "supervisor", "admin")
SUPERVISOR_ROLES = ("supervisor", "admin")
VIEWS = ("all", "mine", "unassigned")

router = APIRouter(prefix="/desk", include_in_schema=False)

register(
    {
        "desk.queue.title": {"en": "Handoff queue", "zh": "转人工队列"},
        "desk.queue.empty": {"en": "No handoffs here.", "zh": "暂无转人工会话。"},
        "desk.view.all": {"en": "All open", "zh": "全部待处理"},
        "desk.view.mine": {"en": "Mine", "zh": "我的"},
        "desk.view.unassigned": {"en": "Unassigned", "zh": "未分配"},
        "desk.col.priority": {"en": "Priority", "zh": "优先级"},
        "desk.col.borrower": {"en": "Borrower", "zh": "借款人"},
        "desk.col.reason": {"en": "Reason", "zh": "原因"},
        "desk.col.stage": {"en": "Stage", "zh": "阶段"},
        "desk.col.overdue": {"en": "Overdue", "zh": "逾期金额"},
        "desk.col.channel": {"en": "Channel", "zh": "渠道"},
        "desk.col.sla": {"en": "SLA (first reply)", "zh": "时限（首次回复）"},
        "desk.col.assignee": {"en": "Assignee", "zh": "处理人"},
        "desk.col.actions": {"en": "Actions", "zh": "操作"},
        "desk.col.time": {"en": "Time", "zh": "时间"},
        "desk.col.who": {"en": "From", "zh": "发送方"},
        "desk.col.text": {"en": "Message", "zh": "内容"},
        "desk.col.status": {"en": "Status", "zh": "状态"},
        "desk.col.gate": {"en": "Gate decision", "zh": "合规判定"},
        "desk.col.kind": {"en": "Kind", "zh": "类型"},
        "desk.col.terms": {"en": "Terms", "zh": "条款"},
        "desk.col.total": {"en": "Total", "zh": "合计"},
        "desk.col.state": {"en": "State", "zh": "状态"},
        "desk.col.decided": {"en": "Decided by", "zh": "审批人"},
        "desk.col.amount": {"en": "Amount", "zh": "金额"},
        "desk.col.date": {"en": "Date", "zh": "日期"},
        "desk.col.loan": {"en": "Loan", "zh": "贷款"},
        "desk.col.dpd": {"en": "DPD", "zh": "逾期天数"},
        "desk.col.outstanding": {"en": "Outstanding", "zh": "未还余额"},
        "desk.col.next_due": {"en": "Next due", "zh": "下期应还"},
        "desk.col.cause": {"en": "Cause", "zh": "逾期原因"},
        "desk.col.source": {"en": "Source", "zh": "来源"},
        "desk.col.approval": {"en": "Approval", "zh": "审批"},
        "desk.col.address": {"en": "Address", "zh": "地址"},
        "desk.sla.left": {"en": "{minutes} min left", "zh": "剩余 {minutes} 分钟"},
        "desk.sla.overdue": {"en": "overdue by {minutes} min", "zh": "已超时 {minutes} 分钟"},
        "desk.sla.met": {"en": "answered in time", "zh": "已按时回复"},
        "desk.sla.missed": {"en": "answered late", "zh": "回复超时"},
        "desk.sla.escalated": {"en": "escalated", "zh": "已升级"},
        "desk.sla.explain": {
            "en": "Time to the first human reply; the target is {minutes} minutes.",
            "zh": "从转人工到首次人工回复的时间；目标为 {minutes} 分钟。",
        },
        "desk.tier.2": {"en": "urgent", "zh": "紧急"},
        "desk.tier.1": {"en": "waiting for a person", "zh": "等待人工"},
        "desk.tier.0": {"en": "other", "zh": "其他"},
        "desk.unassigned": {"en": "nobody yet", "zh": "未分配"},
        "desk.claim": {"en": "Take it", "zh": "领取"},
        "desk.open": {"en": "Open", "zh": "打开"},
        "desk.release": {"en": "Release to the queue", "zh": "退回队列"},
        "desk.assign": {"en": "Assign", "zh": "分配"},
        "desk.assign_to": {"en": "Assign to", "zh": "分配给"},
        "desk.close": {"en": "Close the handoff", "zh": "结束转人工"},
        "desk.close.bot": {
            "en": "The bot resumes the conversation",
            "zh": "交还机器人继续跟进",
        },
        "desk.close.human": {
            "en": "The account stays with people (the bot stays silent)",
            "zh": "账户继续由人工处理（机器人不再回复）",
        },
        "desk.close.note": {"en": "Note (internal)", "zh": "备注（内部）"},
        "desk.close.confirm": {"en": "Close this handoff?", "zh": "确定结束此转人工？"},
        "desk.reply.title": {"en": "Reply to the borrower", "zh": "回复借款人"},
        "desk.reply.on": {
            "en": "Sent on {channel} to {address}, through the compliance gate.",
            "zh": "通过{channel}发送至 {address}，发送前经过合规检查。",
        },
        "desk.reply.send": {"en": "Send", "zh": "发送"},
        "desk.reply.claim_first": {
            "en": "Take this handoff to reply.",
            "zh": "领取此转人工后即可回复。",
        },
        "desk.reply.label": {"en": "Your reply", "zh": "回复内容"},
        "desk.notice.claimed": {"en": "The handoff is yours.", "zh": "已领取此转人工。"},
        "desk.notice.assigned": {"en": "Assigned.", "zh": "已分配。"},
        "desk.notice.released": {"en": "Released to the queue.", "zh": "已退回队列。"},
        "desk.notice.closed_bot": {
            "en": "Closed: the bot resumes.",
            "zh": "已结束：机器人继续跟进。",
        },
        "desk.notice.closed_human": {
            "en": "Closed: the account stays with people.",
            "zh": "已结束：账户继续由人工处理。",
        },
        "desk.notice.reply_sent": {"en": "Reply sent.", "zh": "回复已发送。"},
        "desk.notice.reply_blocked": {
            "en": "Not sent: the compliance gate said no.",
            "zh": "未发送：合规检查未通过。",
        },
        "desk.notice.reply_failed": {
            "en": "Not sent: the channel refused the message.",
            "zh": "未发送：渠道拒绝了该消息。",
        },
        "desk.notice.reply_deferred": {
            "en": "Not sent yet: the channel is unavailable; try again later.",
            "zh": "暂未发送：渠道暂不可用，请稍后重试。",
        },
        "desk.notice.reopened": {
            "en": "Back in the queue as a new handoff.",
            "zh": "已作为新的转人工重新加入队列。",
        },
        "desk.waiting.title": {
            "en": "Kept with people: the borrower wrote again",
            "zh": "人工跟进中：借款人有新消息",
        },
        "desk.waiting.help": {
            "en": "These conversations were closed with the account kept by people, so the "
            "bot does not answer; reopen one to put it back in the queue.",
            "zh": "这些会话结束时保留给人工处理，机器人不会回复；重新打开即可放回队列。",
        },
        "desk.waiting.last": {"en": "Last message", "zh": "最新消息"},
        "desk.reopen": {"en": "Reopen", "zh": "重新打开"},
        "desk.notice.retold": {"en": "Notice tried again.", "zh": "已重新发送通知。"},
        "desk.notify_again": {"en": "Tell the borrower again", "zh": "重新通知借款人"},
        "desk.not_told_yet": {
            "en": "The borrower has not been told yet.",
            "zh": "尚未通知借款人。",
        },
        "desk.error.not_decided": {
            "en": "Only a person's decision can be sent again.",
            "zh": "只有人工审批结果可以重新通知。",
        },
        "desk.notice.approved": {"en": "Approved.", "zh": "已批准。"},
        "desk.notice.declined": {"en": "Declined.", "zh": "已拒绝。"},
        "desk.notice.told": {
            "en": "The borrower was told on their channel.",
            "zh": "已通过借款人的渠道通知其结果。",
        },
        "desk.notice.not_told": {
            "en": "The borrower was NOT told: the compliance gate said no. Tell them later.",
            "zh": "未能通知借款人：合规检查未通过，请稍后再通知。",
        },
        "desk.notice.told_none": {
            "en": "The borrower has no open conversation to be told in.",
            "zh": "借款人没有可用于通知的会话。",
        },
        "desk.blocked.title": {"en": "Why it was not sent", "zh": "未发送原因"},
        "desk.blocked.rule": {"en": "Rule {rule}", "zh": "规则 {rule}"},
        "desk.error.no_handoff": {"en": "No such handoff.", "zh": "没有该转人工记录。"},
        "desk.error.taken": {
            "en": "Someone else took this handoff first.",
            "zh": "该转人工已被其他人领取。",
        },
        "desk.error.closed": {"en": "This handoff is closed.", "zh": "该转人工已结束。"},
        "desk.error.not_yours": {
            "en": "This handoff is not yours: take it first.",
            "zh": "该转人工不属于您，请先领取。",
        },
        "desk.error.outcome": {"en": "Choose how to close it.", "zh": "请选择结束方式。"},
        "desk.error.empty": {"en": "The reply is empty.", "zh": "回复内容为空。"},
        "desk.error.too_long": {
            "en": "The reply is too long (1600 characters at most).",
            "zh": "回复过长（最多1600字）。",
        },
        "desk.error.no_address": {
            "en": "There is no address to reply to.",
            "zh": "没有可回复的地址。",
        },
        "desk.error.no_person": {"en": "No such collector.", "zh": "没有该催收员。"},
        "desk.error.reason_needed": {
            "en": "Give a reason for declining.",
            "zh": "请填写拒绝原因。",
        },
        "desk.error.decided": {
            "en": "This proposal was already decided.",
            "zh": "该申请已被审批。",
        },
        "desk.error.no_arrangement": {"en": "No such proposal.", "zh": "没有该申请。"},
        "desk.proposals.title": {
            "en": "Proposals waiting for approval",
            "zh": "待审批的申请",
        },
        "desk.proposals.none": {"en": "Nothing waiting.", "zh": "暂无待审批申请。"},
        "desk.proposals.who": {
            "en": "Supervisors and admins approve or decline what the bot could not grant "
            "under the policy; collectors see the proposal and its reasons.",
            "zh": "机器人按政策无权批准的申请，由主管或管理员审批；催收员可查看申请及原因。",
        },
        "desk.approve": {"en": "Approve", "zh": "批准"},
        "desk.decline": {"en": "Decline", "zh": "拒绝"},
        "desk.decline.reason": {
            "en": "Reason (internal, not sent)",
            "zh": "原因（内部记录，不发送给借款人）",
        },
        "desk.approve.confirm": {
            "en": "Approve it and tell the borrower?",
            "zh": "批准并通知借款人？",
        },
        "desk.borrower.title": {"en": "Borrower", "zh": "借款人"},
        "desk.borrower.ref": {"en": "Reference", "zh": "编号"},
        "desk.borrower.language": {"en": "Language", "zh": "语言"},
        "desk.borrower.timezone": {"en": "Time zone", "zh": "时区"},
        "desk.borrower.jurisdiction": {"en": "Compliance profile", "zh": "合规规则"},
        "desk.borrower.id": {"en": "ID number (last digits)", "zh": "证件号（末位）"},
        "desk.borrower.contacts": {"en": "Contact points", "zh": "联系方式"},
        "desk.borrower.cease": {"en": "Collection ceased", "zh": "已停止催收"},
        "desk.borrower.ability": {"en": "Ability to pay", "zh": "还款能力"},
        "desk.contact.opted_out": {"en": "opted out", "zh": "已退订"},
        "desk.contact.invalid": {"en": "invalid", "zh": "无效"},
        "desk.contact.verified": {"en": "verified", "zh": "已核实"},
        "desk.contact.unverified": {"en": "not verified", "zh": "未核实"},
        "desk.handoff.title": {"en": "Handoff #{id}", "zh": "转人工 #{id}"},
        "desk.handoff.none": {
            "en": "No open handoff for this borrower.",
            "zh": "该借款人没有进行中的转人工。",
        },
        "desk.handoff.opened": {"en": "Opened", "zh": "转入时间"},
        "desk.handoff.state": {"en": "State", "zh": "状态"},
        "desk.handoff.outcome": {"en": "Outcome", "zh": "结束方式"},
        "desk.state.open": {"en": "open", "zh": "待领取"},
        "desk.state.claimed": {"en": "claimed", "zh": "处理中"},
        "desk.state.closed": {"en": "closed", "zh": "已结束"},
        "desk.balance.title": {"en": "Loans and balances", "zh": "贷款与余额"},
        "desk.balance.total": {
            "en": "Stage {stage}, {dpd} days past due, {overdue} overdue of {outstanding}",
            "zh": "阶段 {stage}，逾期 {dpd} 天，逾期金额 {overdue}，未还余额 {outstanding}",
        },
        "desk.transcript.title": {
            "en": "Every message, every channel",
            "zh": "全部消息（所有渠道）",
        },
        "desk.transcript.none": {"en": "No messages yet.", "zh": "暂无消息。"},
        "desk.gate.allowed": {"en": "allowed", "zh": "允许"},
        "desk.gate.denied": {"en": "denied by {rule}", "zh": "被 {rule} 拒绝"},
        "desk.gate.rules": {"en": "All rules", "zh": "全部规则"},
        "desk.sender.borrower": {"en": "borrower", "zh": "借款人"},
        "desk.sender.bot": {"en": "bot", "zh": "机器人"},
        "desk.sender.collector": {"en": "collector", "zh": "催收员"},
        "desk.sender.system": {"en": "system", "zh": "系统"},
        "desk.causes.title": {"en": "Causes of arrears", "zh": "逾期原因"},
        "desk.offers.title": {
            "en": "Offers available under the policy",
            "zh": "政策允许的方案",
        },
        "desk.offers.auto": {"en": "the bot may grant it", "zh": "机器人可直接批准"},
        "desk.offers.needs": {"en": "needs approval", "zh": "需审批"},
        "desk.promises.title": {"en": "Promises to pay", "zh": "还款承诺"},
        "desk.arrangements.title": {"en": "Arrangements", "zh": "还款安排"},
        "desk.none": {"en": "None.", "zh": "无。"},
        "desk.handoffs.history": {"en": "Handoffs", "zh": "转人工记录"},
        "rule.contact_window": {
            "en": "Outside the borrower's contact hours",
            "zh": "不在借款人可联系时段内",
        },
        "rule.cap": {"en": "Too many contacts in the period", "zh": "该时段内联系次数已达上限"},
        "rule.wait_after_conversation": {
            "en": "Too soon after a conversation",
            "zh": "距上次沟通时间过短",
        },
        "rule.consent": {"en": "No consent on this channel", "zh": "该渠道未获同意"},
        "rule.opt_out": {
            "en": "The borrower opted out of this channel",
            "zh": "借款人已退订该渠道",
        },
        "rule.cease": {"en": "Collection has ceased for this account", "zh": "该账户已停止催收"},
        "rule.holidays": {"en": "A public holiday", "zh": "法定节假日"},
        "rule.disclosure": {"en": "Missing bot disclosure", "zh": "缺少机器人身份说明"},
        "rule.content": {"en": "Wording that is not allowed", "zh": "包含不允许的措辞"},
        "rule.right_party": {
            "en": "Mentions the debt before the borrower is verified",
            "zh": "在核实身份前提及欠款",
        },
        "rule.opt_out_instruction": {
            "en": "Missing opt-out instruction",
            "zh": "缺少退订说明",
        },
        "rule.handoff": {"en": "The conversation is with a person", "zh": "会话由人工处理中"},
        "rule.valid_address": {"en": "The address is invalid", "zh": "地址无效"},
    }
)
DeskDep = Annotated[DeskUser, Depends(require_roles(*DESK_ROLES))]
SupervisorDep = Annotated[DeskUser, Depends(require_roles(*SUPERVISOR_ROLES))]
ApproverDep = Annotated[DeskUser, Depends(require_roles(*approvals.APPROVER_ROLES))]
CSRF = [Depends(verify_csrf)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def is_supervisor(user: DeskUser) -> bool:
    return user.role in SUPERVISOR_ROLES


def _back(path: str, **query: object) -> RedirectResponse:
    params = {k: v for k, v in query.items() if v is not None}
    url = f"{path}?{urlencode(params)}" if params else path
    return RedirectResponse(url, status_code=303)


def _local_path(value: str | None, default: str) -> str:
    """Only our own desk pages as redirect targets (no open redirect)."""
    if value and value.startswith("/desk/") and "//" not in value and "\\" not in value:
        return value
    return default


# -- the queue -----------------------------------------------------------------------


@router.get("/handoffs", response_class=HTMLResponse)
def queue_page(request: Request, user: DeskDep, view: str = "all") -> HTMLResponse:
    runtime = _runtime(request)
    view = view if view in VIEWS else "all"
    now = desk_now(request)
    with runtime.factory() as session:
        items = q.queue(
            session, now, runtime.settings.handoff_sla_minutes, view=view, username=user.username
        )
        proposals = approvals.pending(session)
        waiting = q.kept_with_people_waiting(session)
        people = _assignable(session) if is_supervisor(user) else []
        return render(
            request,
            "desk/queue.html",
            {
                "items": items,
                "view": view,
                "views": VIEWS,
                "proposals": proposals,
                "waiting": waiting,
                "people": people,
                "supervisor": is_supervisor(user),
                "approver": user.role in approvals.APPROVER_ROLES,
                "sla_minutes": runtime.settings.handoff_sla_minutes,
                "now": now,
                "notice": request.query_params.get("notice"),
                "error": request.query_params.get("error"),
            },
        )


def _assignable(session: Session) -> list[User]:
    stmt = (
        select(User)
        .where(User.active.is_(True), User.role.in_(("collector", "supervisor")))
        .order_by(User.username)
    )
    return list(session.scalars(stmt))


@router.post("/handoffs/{handoff_id}/claim", dependencies=CSRF)
def claim_handoff(request: Request, handoff_id: int, user: DeskDep) -> RedirectResponse:
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            q.claim(session, handoff_id, user.username, desk_now(request))
    except q.HandoffError as exc:
        return _back("/desk/handoffs", error=exc.code)
    return _back(f"/desk/handoffs/{handoff_id}", notice="desk.notice.claimed")


@router.post("/handoffs/{handoff_id}/assign", dependencies=CSRF)
def assign_handoff(
    request: Request, handoff_id: int, user: SupervisorDep, assignee: Annotated[str, Form()]
) -> RedirectResponse:
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            person = session.scalars(
                select(User).where(User.username == assignee, User.active.is_(True))
            ).first()
            if person is None or person.role not in ("collector", "supervisor"):
                raise q.HandoffError("desk.error.no_person", f"no collector {assignee!r}")
            q.assign(session, handoff_id, person.username, user.username, desk_now(request))
    except q.HandoffError as exc:
        return _back("/desk/handoffs", error=exc.code)
    return _back("/desk/handoffs", notice="desk.notice.assigned")


@router.post("/handoffs/{handoff_id}/release", dependencies=CSRF)
def release_handoff(request: Request, handoff_id: int, user: DeskDep) -> RedirectResponse:
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            q.release(
                session,
                handoff_id,
                user.username,
                desk_now(request),
                any_holder=is_supervisor(user),
            )
    except q.HandoffError as exc:
        return _back(f"/desk/handoffs/{handoff_id}", error=exc.code)
    return _back("/desk/handoffs", notice="desk.notice.released")


@router.post("/handoffs/{handoff_id}/close", dependencies=CSRF)
def close_handoff(
    request: Request,
    handoff_id: int,
    user: DeskDep,
    outcome: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> RedirectResponse:
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            q.close(
                session,
                handoff_id,
                user.username,
                outcome,
                desk_now(request),
                note=note,
                any_holder=is_supervisor(user),
            )
    except q.HandoffError as exc:
        return _back(f"/desk/handoffs/{handoff_id}", error=exc.code)
    return _back("/desk/handoffs", notice=f"desk.notice.closed_{outcome}")


@router.post("/handoffs/{handoff_id}/reply", dependencies=CSRF)
async def reply_in_handoff(
    request: Request, handoff_id: int, user: DeskDep, text: Annotated[str, Form()]
) -> RedirectResponse:
    page = f"/desk/handoffs/{handoff_id}"
    try:
        outcome = await reply(
            _runtime(request),
            handoff_id,
            user.username,
            text,
            desk_now(request),
            supervisor=is_supervisor(user),
        )
    except q.HandoffError as exc:
        return _back(page, error=exc.code)
    notice = "desk.notice.reply_sent" if outcome.sent else f"desk.notice.reply_{outcome.status}"
    return _back(page, notice=notice, msg=outcome.message_id)


@router.post("/conversations/{conversation_id}/reopen", dependencies=CSRF)
def reopen_conversation(request: Request, conversation_id: int, user: DeskDep) -> RedirectResponse:
    """A conversation kept with people got a new message: put it back in the queue."""
    runtime = _runtime(request)
    try:
        with runtime.factory() as session, session.begin():
            handoff = q.reopen(session, conversation_id, user.username, desk_now(request))
            handoff_id = handoff.id
    except q.HandoffError as exc:
        return _back("/desk/handoffs", error=exc.code)
    return _back(f"/desk/handoffs/{handoff_id}", notice="desk.notice.reopened")


# -- approvals -----------------------------------------------------------------------


async def _decide(
    request: Request, arrangement_id: int, user: DeskUser, approve: bool, reason: str, nxt: str
) -> RedirectResponse:
    try:
        result = await approvals.decide_and_notify(
            _runtime(request), arrangement_id, user.username, approve, desk_now(request), reason
        )
    except q.HandoffError as exc:
        return _back(nxt, error=exc.code)
    notice = "desk.notice.approved" if approve else "desk.notice.declined"
    if result.notice is None:
        return _back(nxt, notice=notice, told="none")
    return _back(nxt, notice=notice, msg=result.notice.message_id)


@router.post("/arrangements/{arrangement_id}/approve", dependencies=CSRF)
async def approve_arrangement(
    request: Request,
    arrangement_id: int,
    user: ApproverDep,
    next_page: Annotated[str, Form(alias="next")] = "",
) -> RedirectResponse:
    nxt = _local_path(next_page, "/desk/handoffs")
    return await _decide(request, arrangement_id, user, True, "", nxt)


@router.post("/arrangements/{arrangement_id}/notify", dependencies=CSRF)
async def notify_again(
    request: Request,
    arrangement_id: int,
    user: ApproverDep,
    next_page: Annotated[str, Form(alias="next")] = "",
) -> RedirectResponse:
    """Tell the borrower about a decision again, when the first notice did not leave."""
    nxt = _local_path(next_page, "/desk/handoffs")
    try:
        notice = await approvals.notify_again(
            _runtime(request), arrangement_id, user.username, desk_now(request)
        )
    except q.HandoffError as exc:
        return _back(nxt, error=exc.code)
    if notice is None:
        return _back(nxt, notice="desk.notice.retold", told="none")
    return _back(nxt, notice="desk.notice.retold", msg=notice.message_id)


@router.post("/arrangements/{arrangement_id}/decline", dependencies=CSRF)
async def decline_arrangement(
    request: Request,
    arrangement_id: int,
    user: ApproverDep,
    reason: Annotated[str, Form()] = "",
    next_page: Annotated[str, Form(alias="next")] = "",
) -> RedirectResponse:
    nxt = _local_path(next_page, "/desk/handoffs")
    return await _decide(request, arrangement_id, user, False, reason, nxt)


# -- the borrower page ---------------------------------------------------------------


@router.get("/handoffs/{handoff_id}", response_class=HTMLResponse)
def handoff_page(request: Request, handoff_id: int, user: DeskDep) -> HTMLResponse:
    with _runtime(request).factory() as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None or handoff.borrower_id is None:
            raise HTTPException(404, "no such handoff")
        borrower_id = handoff.borrower_id
    return _borrower_page(request, user, borrower_id, handoff_id)


@router.get("/borrowers/{borrower_id}", response_class=HTMLResponse)
def borrower_page(request: Request, borrower_id: int, user: DeskDep) -> HTMLResponse:
    return _borrower_page(request, user, borrower_id, None)


def _message_outcome(request: Request, session: Session, borrower_id: int) -> ReplyOutcome | None:
    """The outcome of the line named by ``?msg=``, if it is one of this borrower's."""
    raw = request.query_params.get("msg", "")
    if not raw.isdigit():
        return None
    message = session.get(Message, int(raw))
    if message is None:
        return None
    conversation = session.get(Conversation, message.conversation_id)
    if conversation is None or conversation.borrower_id != borrower_id:
        return None
    return outcome_of(session, message)


def _borrower_page(
    request: Request, user: DeskUser, borrower_id: int, handoff_id: int | None
) -> HTMLResponse:
    runtime = _runtime(request)
    now = desk_now(request)
    sla_minutes = runtime.settings.handoff_sla_minutes
    with runtime.factory() as session:
        history = borrower_history(session, borrower_id, now)
        if history is None:
            raise HTTPException(404, "no such borrower")
        handoff = next((h for h in history.handoffs if h.id == handoff_id), None)
        if handoff is None:
            handoff = next((h for h in history.handoffs if h.state in q.ACTIVE_STATES), None)
        page = f"/desk/handoffs/{handoff.id}" if handoff else f"/desk/borrowers/{borrower_id}"
        conversation = session.get(Conversation, handoff.conversation_id) if handoff else None
        return render(
            request,
            "desk/borrower.html",
            {
                "h": history,
                "handoff": handoff,
                "sla": q.sla_of(handoff, sla_minutes, now) if handoff else None,
                "may_act": bool(handoff and q.may_act(handoff, user.username, is_supervisor(user))),
                "supervisor": is_supervisor(user),
                "approver": user.role in approvals.APPROVER_ROLES,
                "people": _assignable(session) if is_supervisor(user) else [],
                "page": page,
                "outcome": _message_outcome(request, session, borrower_id),
                "notice": request.query_params.get("notice"),
                "error": request.query_params.get("error"),
                "told_none": request.query_params.get("told") == "none",
                "tz": history.borrower.timezone,
                "tier": q.reason_tier(handoff.reason) if handoff else 0,
                "reply_address": (
                    recipient_address(session, conversation) if conversation else None
                ),
            },
        )
