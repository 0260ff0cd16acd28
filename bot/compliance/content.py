"""Deterministic content detectors, English and Simplified Chinese.

Each category is a list of English patterns (regular expressions on the lower-cased
text, whole words only) and Chinese strings (matched anywhere). The lists are literal
on purpose: a collector who trips one rephrases, and a list a compliance officer can
read beats a classifier nobody can audit.

Speed: one compiled expression per category, on lower-cased text, every alternative
starting with a literal so that the regular-expression engine skips ahead by its first
characters; the leading word boundary is checked in Python (a leading ``\\b`` would
defeat that skip). ``scan`` costs a few microseconds for an SMS-length text.

Links: the path and query of a URL are an address, not prose. The links reminders carry
end in signed tokens (base64 with a timestamp), and about one token in 12,000 reads as a
"word" here (``fukbwk...``, ``cny1``), which denied that borrower's reminder at random.
So ``scan`` reads a URL's scheme and host and skips the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WHO_EN = (
    r"(?:employer|boss|manager|workplace|work|office|co-?workers?|colleagues?|family"
    r"|relatives?|parents?|spouse|wife|husband|kids|children|friends?|neighbou?rs?|contacts)"
)
_WHO_ZH = "(?:单位|领导|公司|老板|同事|家人|家里|亲戚|亲友|朋友|父母|配偶|老婆|老公|邻居)"
_TELL_EN = ("contact", "call", "tell", "inform", "notify", "email", "text", "visit", "warn")
_TELL_ZH = ("通知", "告诉", "联系", "打给", "打电话给", "找")

EN: dict[str, tuple[str, ...]] = {
    "violence": (
        r"kill(?:ed|ing)? you",
        r"hurt you",
        r"beat you(?: up)?",
        r"break your \w+",
        r"you'll regret",
        r"you will regret",
        r"watch your back",
        r"we know where you (?:live|work)",
        r"harm",
        r"violen(?:ce|t)",
        r"burn your",
        r"or else",
    ),
    "profanity": (
        r"fuck\w*",
        r"fuk\w*",
        r"shit\w*",
        r"bitch\w*",
        r"bastards?",
        r"assholes?",
        r"damn\w*",
        r"idiots?",
        r"stupid",
        r"morons?",
        r"losers?",
        r"deadbeats?",
        r"scum\w*",
        r"crooks?",
        r"liars?",
        r"thief",
        r"thieves",
        r"dumb\w*",
        r"worthless",
        r"pathetic",
    ),
    "shaming": (
        *(rf"{verb} your {_WHO_EN}" for verb in _TELL_EN),
        r"post\w* (?:it|this|your \w+) (?:online|publicly|on social media)",
        r"publish\w* (?:it|this|your \w+)",
        r"everyone will know",
        r"shame\w*",
        r"humiliat\w*",
        r"embarrass\w*",
        r"black-?list\w*",
        r"come to your (?:home|house|work|office)",
        r"show up at your (?:home|house|work|office)",
    ),
    "arrest": (
        r"arrest\w*",
        r"jail\w*",
        r"prisons?",
        r"imprison\w*",
        r"criminal\w*",
        r"crimes?",
        r"prosecut\w*",
        r"handcuff\w*",
        r"fraud charges?",
    ),
    "false_legal": (
        r"sue[sd]?",
        r"suing",
        r"law-?suits?",
        r"legal (?:action|proceedings?|steps)",
        r"courts?",
        r"court orders?",
        r"judge?ments?",
        r"garnish\w*",
        r"seiz(?:e|ed|ing|ure)",
        r"repossess\w*",
        r"warrants?",
        r"subpoena\w*",
        r"summons",
        r"our (?:attorneys?|lawyers?|legal (?:team|department))",
        r"my (?:attorneys?|lawyers?)",
    ),
    "impersonation": (
        r"police",
        r"fbi",
        r"sheriff\w*",
        r"law enforcement",
        r"government",
        r"federal agents?",
        r"irs",
        r"department of justice",
        r"marshals?",
    ),
    "borrow_to_repay": (
        r"borrow (?:money )?from (?:your )?(?:friends|family|someone|another lender)",
        r"take (?:out )?(?:another|a new|a payday) loan",
        r"payday loans?",
        r"sell your (?:house|car|organs?)",
    ),
    "debt_relief": (
        r"debt relief",
        r"consolidat\w*",
        r"reduce your debts?",
        r"credit repair",
    ),
    "debt": (
        r"debts?",
        r"owe[sd]?",
        r"owing",
        r"over-?due",
        r"past[- ]due",
        r"days? late",
        r"late (?:fees?|payments?|charges?)",
        r"arrears",
        r"balances?",
        r"amounts? (?:is |are )?due",
        r"payments? (?:is |are )?due",
        r"due on",
        r"due date",
        r"is due",
        r"collections?",
        r"repay\w*",
        r"installments?",
        r"instalments?",
        r"delinquen\w*",
        r"unpaid",
        r"default(?:ed)?",
    ),
}

ZH: dict[str, tuple[str, ...]] = {
    "violence": (
        "打死",
        "弄死",
        "砍死",
        "砍你",
        "打断",
        "揍你",
        "收拾你",
        "小心点",
        "后果自负",
        "你等着",
        "知道你住",
        "找人",
        "家人安全",
        "暴力",
    ),
    "profanity": (
        "老赖",
        "骗子",
        "傻",
        "笨蛋",
        "混蛋",
        "王八蛋",
        "废物",
        "不要脸",
        "垃圾",
        "去死",
        "他妈",
        "妈的",
        "贱",
        "无赖",
        "赖账",
        "人渣",
        "畜生",
    ),
    "shaming": (
        "通讯录",
        "曝光",
        "上门",
        "黑名单",
        "失信名单",
        "公开你",
        "让大家都知道",
        "丢人",
    ),
    "arrest": (
        "坐牢",
        "拘留",
        "逮捕",
        "抓你",
        "抓起来",
        "刑事",
        "判刑",
        "犯罪",
        "诈骗罪",
        "入狱",
        "牢饭",
    ),
    "false_legal": (
        "起诉",
        "法院",
        "律师函",
        "传票",
        "强制执行",
        "冻结",
        "查封",
        "立案",
        "判决",
        "诉讼",
        "法律后果",
        "律师",
    ),
    "impersonation": (
        "公安",
        "派出所",
        "警察",
        "检察院",
        "司法机关",
        "政府",
        "网警",
        "经侦",
        "警方",
    ),
    "borrow_to_repay": ("以贷养贷", "借钱还", "网贷还", "套现", "借别的"),
    "debt_relief": ("债务重组", "债务优化", "征信修复", "停息挂账"),
    "debt": (
        "欠",
        "逾期",
        "还款",
        "应还",
        "还钱",
        "债",
        "催收",
        "账单",
        "分期",
        "罚息",
        "滞纳金",
        "本金",
        "利息",
        "到期",
        "未还",
    ),
}

# "tell your employer / family" in Chinese: a verb, an optional 你/您 (的), a person.
ZH_PATTERNS: dict[str, tuple[str, ...]] = {
    "shaming": tuple(rf"{verb}(?:你|您)?的?{_WHO_ZH}" for verb in _TELL_ZH),
}

AMOUNT: tuple[str, ...] = (
    r"[$¥￥]\s?\d",
    r"us\$\s?\d",
    r"usd\s?\d",
    r"cny\s?\d",
    r"rmb\s?\d",
    r"\d[\d,]*(?:\.\d+)?\s?(?:元|块|万|dollars?\b|bucks\b|usd\b|cny\b|rmb\b)",
    r"[一二两三四五六七八九十百千万零〇]+(?:元|块钱|块)",
)

CATEGORIES = frozenset(EN) | frozenset(ZH) | {"amount"}


def _compile(name: str) -> re.Pattern[str]:
    if name == "amount":
        return re.compile("|".join(AMOUNT))
    alternatives = [f"{p}\\b" for p in EN.get(name, ())]
    alternatives += list(ZH_PATTERNS.get(name, ()))
    alternatives += [re.escape(s) for s in ZH.get(name, ())]
    return re.compile("|".join(alternatives))


_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, _compile(name)) for name in sorted(CATEGORIES)
)


def _word_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def _first_hit(pattern: re.Pattern[str], low: str) -> str | None:
    """The first hit that starts a word (English) or anywhere (Chinese, amounts)."""
    pos = 0
    while (m := pattern.search(low, pos)) is not None:
        start = m.start()
        if start == 0 or not _word_char(low[start]) or not _word_char(low[start - 1]):
            return m.group()
        pos = start + 1
    return None


# scheme and host kept; the rest of the URL (printable ASCII, so text written straight
# after it in Chinese is still read) dropped
_URL_TAIL = re.compile(r"(https?://[a-z0-9.:@_\[\]-]*)[!-~]*")


def _without_name(low: str, name: str) -> str:
    """``low`` with each whole-word occurrence of ``name`` (its words apart by any
    whitespace) blanked. Only a name of two or more words, or one in Chinese characters,
    is blanked: a one-word English "name" ("Kill", "Crook") is also a word a sender
    could use about the borrower. Plain string search, no regular expression: every
    borrower's name differs, and compiling one per message tripled the scan's cost."""
    words = name.lower().split()
    if not words or (len(words) == 1 and (words[0].isascii() or len(words[0]) < 2)):
        return low
    first, parts, kept = words[0], [], 0
    start = low.find(first)
    while start != -1:
        end = start + len(first)
        for word in words[1:]:
            gap = end
            while gap < len(low) and low[gap].isspace():
                gap += 1
            if gap == end or not low.startswith(word, gap):
                end = -1
                break
            end = gap + len(word)
        whole = (
            end != -1
            and not (start and _word_char(low[start - 1]))
            and not (end < len(low) and _word_char(low[end]))
        )
        if whole:
            parts += [low[kept:start], " "]
            kept = end
        start = low.find(first, end if whole else start + 1)
    return "".join(parts) + low[kept:] if parts else low


def scan(text: str, names: Iterable[str] = ()) -> dict[str, str]:
    """Every category ``text`` hits, each with the first phrase that hit it. A URL's
    path and query are skipped, and so is each of ``names`` written in full (a
    borrower's name is not the sender's word: "John Crook" is not "you crook")."""
    low = text.lower()
    if "://" in low:
        low = _URL_TAIL.sub(r"\1 ", low)
    for name in names:
        low = _without_name(low, name)
    found: dict[str, str] = {}
    for name, pattern in _PATTERNS:
        hit = _first_hit(pattern, low)
        if hit is not None:
            found[name] = hit
    return found


def contains_any(text: str, phrases: Iterable[str]) -> str | None:
    """The first of ``phrases`` found in ``text`` (case-insensitive), or None."""
    low = text.casefold()
    for phrase in phrases:
        if phrase.casefold() in low:
            return phrase
    return None
