import pytest

from bot.chat_links import ChatLinkError, make_chat_token, read_chat_token


def test_round_trip() -> None:
    assert read_chat_token("s3cret", make_chat_token("s3cret", 42), 3600) == 42


def test_tampered_token_is_invalid() -> None:
    token = make_chat_token("s3cret", 42)
    with pytest.raises(ChatLinkError) as err:
        read_chat_token("other", token, 3600)
    assert err.value.reason == "invalid"
    with pytest.raises(ChatLinkError):
        read_chat_token("s3cret", token[:-2] + "xx", 3600)


def test_expired_token(monkeypatch: pytest.MonkeyPatch) -> None:
    token = make_chat_token("s3cret", 7)
    with pytest.raises(ChatLinkError) as err:
        read_chat_token("s3cret", token, -1)
    assert err.value.reason == "expired"
