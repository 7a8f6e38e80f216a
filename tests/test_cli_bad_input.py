"""Bad input never ends in a traceback: exit code 1 and one clear message naming the file at fault."""

from __future__ import annotations

import os
import shutil

from click.testing import CliRunner

from newsletter.cli import cli


def run(*args, env=None):
    result = CliRunner().invoke(cli, list(args), env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def fails_with(result, *fragments):
    assert result.exit_code == 1
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_missing_issue_folder(project):
    fails_with(run("check", "2023-11"), "issues/2023-11/issue.yaml: no such issue.")


def test_no_issues_folder_at_all(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails_with(run("check", "2023-10"), "issues/2023-10/issue.yaml: no such issue.", "newsletter new 2023-10")


def test_broken_yaml(project, write_issue):
    write_issue(project, "title: T\ndate: [2023\nsubject: S\n", slug="broken")
    result = run("check", "broken")
    fails_with(result, "issues/broken/issue.yaml:3: not valid YAML: ")
    assert result.stderr.strip() == "1 problem found."


def test_wrong_type(project, write_issue):
    write_issue(project, "title: T\nsections: {kind: story}\n", slug="typed")
    fails_with(
        run("check", "typed"),
        "issues/typed/issue.yaml:2: sections: must be a list of sections (each starting with '- kind:'), "
        "not a group of fields",
    )


def test_file_that_is_not_utf8(project, write_issue):
    write_issue(project, b"\xff\xfe title: x", slug="binary")
    fails_with(
        run("check", "binary"),
        "Error: issues/binary/issue.yaml: is not UTF-8 text (byte 0); save it as UTF-8 and try again",
    )


def test_latin1_file_names_the_byte(project, write_issue):
    write_issue(project, "title: Caf\u00e9 news\n".encode("latin-1"), slug="latin")
    fails_with(run("check", "latin"), "issues/latin/issue.yaml: is not UTF-8 text (byte 10)")


def test_utf8_with_byte_order_mark_is_fine(project, write_issue):
    source = (project / "issues" / "2023-10" / "issue.yaml").read_bytes()
    write_issue(project, b"\xef\xbb\xbf" + source, slug="bom")
    assert run("check", "bom").exit_code == 0


def test_issue_file_that_is_a_folder(project):
    (project / "issues" / "folder" / "issue.yaml").mkdir(parents=True)
    fails_with(run("check", "folder"), "Error: issues/folder/issue.yaml: is a folder, not a file")


def test_unreadable_issue_file(project, write_issue):
    path = write_issue(project, "title: T\n", slug="locked")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            # Running as root: permissions do not stop reading, so use the other unreadable case.
            path.unlink()
            path.mkdir()
            expected = "issues/locked/issue.yaml: is a folder, not a file"
        else:
            expected = "issues/locked/issue.yaml: cannot be read: Permission denied"
        fails_with(run("check", "locked"), expected)
    finally:
        if path.is_file():
            path.chmod(0o644)


def test_self_referencing_yaml_alias(project, write_issue):
    write_issue(project, "title: &x [*x]\n", slug="loop")
    fails_with(run("check", "loop"), "issues/loop/issue.yaml")


def test_broken_settings_file(project):
    (project / "newsletter.toml").write_text("[smtp\nurl = 1\n", encoding="utf-8")
    fails_with(run("check", "2023-10"), "Error: newsletter.toml: not valid TOML: ", "line 1")


def test_unknown_setting_suggests_the_right_name(project):
    (project / "newsletter.toml").write_text("max_rat = 3\n", encoding="utf-8")
    fails_with(
        run("check", "2023-10"),
        "Error: newsletter.toml: unknown setting 'max_rat' (did you mean 'max_rate'?)",
    )


def test_settings_file_that_is_not_utf8(project):
    (project / "newsletter.toml").write_bytes(b"network_name = '\xff'\n")
    fails_with(run("check", "2023-10"), "Error: newsletter.toml: cannot be read")


def test_bad_number_in_the_environment(project):
    result = run("check", "2023-10", env={"NEWSLETTER_MAX_RATE": "abc"})
    fails_with(result, "setting 'max_rate' must be a number, 0 or more, not 'abc'")


def test_bad_number_in_the_environment_names_the_variable(project):
    result = run("check", "2023-10", env={"NEWSLETTER_MAX_RATE": "abc"})
    fails_with(result, "NEWSLETTER_MAX_RATE")
    assert "newsletter.toml" not in result.output


def test_theme_with_a_template_error(project, repo_root):
    shutil.copytree(repo_root / "templates", project / "templates")
    template = project / "templates" / "email" / "sections" / "story.mjml.j2"
    template.write_text("{% if section.title %}\n<mj-section>\n", encoding="utf-8")
    result = run("check", "2023-10")
    fails_with(result, "templates/email/sections/story.mjml.j2:", "template error")


def test_yaml_nested_a_thousand_levels_deep(project, write_issue):
    write_issue(project, "title: T\nsubject: " + "[" * 1000 + "]" * 1000 + "\n", slug="deep")
    result = run("check", "deep")
    fails_with(
        result, "issues/deep/issue.yaml:2: values nest more than 100 levels deep here; write them flatter"
    )
    assert result.stderr.strip() == "1 problem found."
