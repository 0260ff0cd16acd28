from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARREARS_PORT", raising=False)
    s = load_settings()
    assert s.port == 8000
    assert s.host == "127.0.0.1"


def test_malformed_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARREARS_PORT", "eighty")
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith("setting ARREARS_PORT:")
    assert "\n" not in message


def test_bad_choice_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARREARS_SMS_BACKEND", "carrier-pigeon")
    with pytest.raises(SettingsError, match="ARREARS_SMS_BACKEND"):
        load_settings()


def test_twilio_variables_and_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARREARS_SMS_BACKEND", raising=False)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
    s = load_settings()
    assert (s.twilio_account_sid, s.twilio_auth_token, s.sms_uses_twilio) == ("AC123", "tok", True)
    monkeypatch.setenv("ARREARS_SMS_BACKEND", "sink")
    assert load_settings().sms_uses_twilio is False


def test_required_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARREARS_API_TOKEN", raising=False)
    with pytest.raises(SettingsError, match="ARREARS_API_TOKEN is required"):
        load_settings().require("api_token")
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    with pytest.raises(SettingsError, match="TWILIO_AUTH_TOKEN is required"):
        load_settings().require("twilio_auth_token")


def test_config_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "arrears.toml"
    cfg.write_text('port = 9100\nemail_from = "Loans <loans@example.org>"\n')
    monkeypatch.setenv("ARREARS_CONFIG_FILE", str(cfg))
    monkeypatch.delenv("ARREARS_PORT", raising=False)
    assert load_settings().port == 9100
    monkeypatch.setenv("ARREARS_PORT", "9200")
    s = load_settings()
    assert (s.port, s.email_from) == (9200, "Loans <loans@example.org>")


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARREARS_CONFIG_FILE", "/nonexistent/arrears.toml")
    with pytest.raises(SettingsError, match="ARREARS_CONFIG_FILE"):
        load_settings()
