"""Settings: `newsletter.toml`, then `NEWSLETTER_*` on top, converted to the right types or refused clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.errors import UserError
from newsletter.settings import BUNDLED_ROOT, Settings


def write_toml(directory: Path, text: str) -> None:
    (directory / "newsletter.toml").write_text(text, encoding="utf-8")


def test_defaults_without_file_or_environment(tmp_path, monkeypatch, repo_root):
    monkeypatch.chdir(tmp_path)
    settings = Settings.load(tmp_path, environ={})
    assert settings == Settings()
    assert settings.network_name == "Health Equity Network"
    assert settings.max_rate == 0.0
    assert settings.concurrency == 4
    assert settings.issues_dir == tmp_path / "issues"
    assert settings.database_url == f"sqlite:///{tmp_path}/newsletter.sqlite3"
    assert settings.theme_dir == repo_root / "templates"
    assert settings.vocabulary_dir == repo_root / "subscribers"


def test_values_from_the_settings_file(tmp_path):
    write_toml(
        tmp_path,
        'network_name = "North West Network"\nmax_rate = 2\nconcurrency = 8\nissues_dir = "drafts"\n',
    )
    settings = Settings.load(tmp_path, environ={})
    assert settings.network_name == "North West Network"
    assert settings.max_rate == 2.0
    assert isinstance(settings.max_rate, float)
    assert settings.concurrency == 8
    assert settings.issues_dir == tmp_path / "drafts"


def test_environment_wins_over_the_file(tmp_path):
    write_toml(tmp_path, 'network_name = "From the file"\nmax_rate = 2\n')
    settings = Settings.load(
        tmp_path,
        environ={"NEWSLETTER_NETWORK_NAME": "From the environment", "NEWSLETTER_CONCURRENCY": "16"},
    )
    assert settings.network_name == "From the environment"
    assert settings.max_rate == 2.0
    assert settings.concurrency == 16


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("max_rate", "2.5", 2.5),
        ("max_rate", "0", 0.0),
        ("domain_rate", "10", 10.0),
        ("concurrency", "12", 12),
        ("theme_dir", "my-theme", Path("my-theme")),
        ("count_clicks", "yes", True),
        ("count_clicks", "False", False),
        ("count_clicks", "1", True),
    ],
)
def test_environment_text_is_converted(tmp_path, name, raw, expected):
    settings = Settings.load(tmp_path, environ={f"NEWSLETTER_{name.upper()}": raw})
    value = getattr(settings, name)
    if isinstance(expected, Path):
        expected = tmp_path / expected  # a path typed in a shell is taken from where it was typed
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("max_rate", "abc", "setting 'max_rate' must be a number, 0 or more, not 'abc'"),
        ("max_rate", "-1", "setting 'max_rate' must be a number, 0 or more, not '-1'"),
        ("concurrency", "0", "setting 'concurrency' must be a positive whole number, not '0'"),
        ("concurrency", "many", "setting 'concurrency' must be a positive whole number, not 'many'"),
        ("count_clicks", "maybe", "setting 'count_clicks' must be true or false, not 'maybe'"),
    ],
)
def test_bad_environment_values_are_refused(tmp_path, name, raw, message):
    with pytest.raises(UserError, match=message):
        Settings.load(tmp_path, environ={f"NEWSLETTER_{name.upper()}": raw})


def test_text_setting_given_a_number_is_refused(tmp_path):
    write_toml(tmp_path, "network_name = 5\n")
    with pytest.raises(UserError, match=r"newsletter.toml: setting 'network_name' must be text, not 5"):
        Settings.load(tmp_path, environ={})


def test_a_switch_is_true_or_false_in_the_file(tmp_path):
    write_toml(tmp_path, "count_clicks = true\n")
    assert Settings.load(tmp_path, environ={}).count_clicks is True
    write_toml(tmp_path, "count_clicks = 1\n")
    with pytest.raises(
        UserError, match=r"newsletter.toml: setting 'count_clicks' must be true or false, not 1"
    ):
        Settings.load(tmp_path, environ={})


@pytest.mark.parametrize("value", ["2.5", "true"])
def test_concurrency_that_is_not_a_whole_number_is_refused(tmp_path, value):
    write_toml(tmp_path, f"concurrency = {value}\n")
    with pytest.raises(UserError, match="concurrency"):
        Settings.load(tmp_path, environ={})


def test_unknown_key_suggests_the_right_one(tmp_path):
    write_toml(tmp_path, "concurency = 2\n")
    with pytest.raises(UserError) as caught:
        Settings.load(tmp_path, environ={})
    assert str(caught.value).endswith("unknown setting 'concurency' (did you mean 'concurrency'?)")


def test_unknown_key_without_a_close_match(tmp_path):
    write_toml(tmp_path, "colour = 'blue'\n")
    with pytest.raises(UserError) as caught:
        Settings.load(tmp_path, environ={})
    assert str(caught.value).endswith("unknown setting 'colour'")


def test_unrelated_environment_variables_are_ignored(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Settings.load(tmp_path, environ={"NEWSLETTER_COLOUR": "blue", "MAX_RATE": "x"}) == Settings()


def test_project_theme_and_vocabulary_override_the_bundled_ones(tmp_path, monkeypatch, repo_root):
    shutil.copytree(repo_root / "templates", tmp_path / "templates")
    shutil.copytree(repo_root / "subscribers", tmp_path / "subscribers")
    monkeypatch.chdir(tmp_path)
    settings = Settings.load(tmp_path, environ={})
    assert settings.theme_dir == tmp_path / "templates"
    assert settings.vocabulary_dir == tmp_path / "subscribers"
    assert repo_root == BUNDLED_ROOT


def test_relative_paths_in_the_file_are_taken_from_its_folder(tmp_path, monkeypatch):
    project = tmp_path / "network"
    (project / "templates" / "email").mkdir(parents=True)
    write_toml(project, 'issues_dir = "drafts"\ndatabase_url = "sqlite:///data/news.sqlite3"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = Settings.load(elsewhere, environ={"NEWSLETTER_CONFIG": "../network/newsletter.toml"})
    assert settings.issues_dir == project / "drafts"
    assert settings.database_url == f"sqlite:///{project}/data/news.sqlite3"
    assert settings.theme_dir == project / "templates"  # the project's own theme, found from elsewhere
    assert Settings.load(elsewhere, environ={}, config=project / "newsletter.toml") == settings


def test_no_setting_is_ever_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = Settings(issues_dir=Path("issues"), database_url="sqlite:///x.sqlite3")
    assert built.issues_dir == tmp_path / "issues"
    assert built.database_url == f"sqlite:///{tmp_path}/x.sqlite3"
    for url in ("sqlite:///:memory:", "sqlite:////abs/file.db", "postgresql+psycopg://u@h/db"):
        assert Settings(database_url=url).database_url == url


def test_a_settings_file_that_is_not_there_is_one_clear_error(tmp_path):
    with pytest.raises(
        UserError, match=r"environment variable NEWSLETTER_CONFIG: there is no settings file at"
    ):
        Settings.load(tmp_path, environ={"NEWSLETTER_CONFIG": "missing.toml"})
    with pytest.raises(UserError, match=r"^--config: there is no settings file at"):
        Settings.load(tmp_path, environ={}, config=Path("missing.toml"))


def test_network_name_from_the_environment_reaches_the_email(project, tmp_path):
    out = tmp_path / "rendered"
    result = CliRunner().invoke(
        cli, ["render", "2023-10", "--out", str(out)], env={"NEWSLETTER_NETWORK_NAME": "Marmot Partners"}
    )
    assert result.exit_code == 0, result.output
    assert "Marmot Partners" in (out / "email.html").read_text(encoding="utf-8")
    assert "MARMOT PARTNERS" in (out / "email.txt").read_text(encoding="utf-8")


def test_settings_file_in_the_project_reaches_the_email(project, tmp_path):
    write_toml(project, 'postal_address = "1 Test Street, Leeds LS1 1AA"\n')
    out = tmp_path / "rendered"
    result = CliRunner().invoke(cli, ["render", "2023-10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 Test Street, Leeds LS1 1AA" in (out / "email.html").read_text(encoding="utf-8")
    assert "1 Test Street, Leeds LS1 1AA" in (out / "email.txt").read_text(encoding="utf-8")
