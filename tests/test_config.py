"""The configuration file: every key documented, bad keys named with the file."""

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from ground.config import ConfigError, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_the_example_config_loads_and_documents_every_key():
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    Settings(**data)
    text = EXAMPLE.read_text(encoding="utf-8")

    def check(section: str, model: type[BaseModel]) -> None:
        assert f"[{section}]" in text, section
        body = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
        for key, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) \
                    and f"[{section}.{key}]" in text:
                check(f"{section}.{key}", field.annotation)
                continue
            assert re.search(rf"^#? ?{key} =", body, re.M), f"[{section}] {key} is not in config.example.toml"

    for section, field in Settings.model_fields.items():
        check(section, field.annotation)


def test_an_invalid_key_is_named_with_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[bot]\ndefault_locale = "fr"\nadmin = [1]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message
    assert "[bot.default_locale]" in message and "[bot.admin] unknown key" in message


def test_a_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml")


def test_the_token_comes_from_the_environment_first(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text('[telegram]\ntoken = "1:file"\n', encoding="utf-8")
    monkeypatch.setenv("BOT_TOKEN", "2:env")
    assert load_settings(path).token == "2:env"


def test_defaults_need_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    settings = load_settings()
    assert settings.database.url == "sqlite+aiosqlite:///redreserve.db"
    assert settings.bot.default_locale == "vi" and settings.token is None


def test_an_unknown_time_zone_is_named_with_its_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[bot]\ntimezone = "Asia/Saigon_Typo"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "timezone" in str(err.value) and "config.toml" in str(err.value)


def test_a_scalar_margin_from_an_older_config_means_every_urgency(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[dispatch]\nmargin = 1.5\n", encoding="utf-8")
    margin = load_settings(path).dispatch.margin
    assert [margin.of(u) for u in ("critical", "urgent", "planned")] == [1.5, 1.5, 1.5]


def test_a_margin_table_sets_each_urgency_and_an_urgency_left_out_keeps_its_default(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[dispatch]\nmargin = { critical = 2.0, urgent = 1.1 }\n", encoding="utf-8")
    margin = load_settings(path).dispatch.margin
    assert [margin.of(u) for u in ("critical", "urgent", "planned")] == [2.0, 1.1, Settings().dispatch.margin.planned]
    # The default critical margin is none: 1 / (arrives × passes), from the rates (DOMAIN.md §5).
    assert Settings().dispatch.margin.of("critical") is None


@pytest.mark.parametrize("line", ["margin = 0.5", "margin = { planned = 0.9 }"])
def test_a_margin_below_one_is_named_with_its_urgency(tmp_path, line):
    path = tmp_path / "config.toml"
    path.write_text(f"[dispatch]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "[dispatch.margin.planned]" in str(err.value) and "config.toml" in str(err.value)


def test_answer_links_need_their_secret_and_the_server(tmp_path):
    """[http] public_url without link_secret (or without listen) would send links nobody can check."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[http]\npublic_url = "https://rr.example.vn/"\nlisten = "127.0.0.1:8080"\n')
    with pytest.raises(ConfigError, match="link_secret"):
        load_settings(cfg)
    cfg.write_text('[http]\npublic_url = "https://rr.example.vn/"\nlisten = "127.0.0.1:8080"\nlink_secret = "short"\n')
    with pytest.raises(ConfigError, match="at least 16"):
        load_settings(cfg)
    cfg.write_text('[http]\npublic_url = "rr.example.vn"\n')
    with pytest.raises(ConfigError, match="http"):
        load_settings(cfg)
    cfg.write_text('[http]\npublic_url = "https://rr.example.vn/"\nlisten = "127.0.0.1:8080"\n'
                   'link_secret = "0123456789abcdef0123"\n')
    assert load_settings(cfg).http.public_url == "https://rr.example.vn"
@pytest.mark.parametrize("zalo, says", [
    ({"enabled": True}, "[zalo] enabled needs [zalo] token"),
    ({"enabled": True, "token": "t", "mode": "webhook"},
     "[zalo] enabled needs [zalo] webhook_url, [zalo] webhook_secret, [http] listen"),
    ({"webhook_secret": "short"}, "[zalo.webhook_secret] Value error, must be 8 to 256 characters"),
])
def test_an_incomplete_zalo_section_says_what_is_missing(tmp_path, zalo, says):
    path = tmp_path / "config.toml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, zalo=zalo)
    assert says in str(err.value)
