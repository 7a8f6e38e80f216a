"""The rules for a member's own details (`audience.profile`): what they keep, and the words people see."""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.audience import profile
from newsletter.audience.profile import FieldProblem, TooLong
from newsletter.db.models import Format, Status
from newsletter.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def vocabulary(repo_root) -> Vocabulary:
    return Vocabulary.load(repo_root / "subscribers")


def message(rule, *args, **options) -> str:
    with pytest.raises(FieldProblem) as caught:
        rule(*args, **options)
    return str(caught.value)


def test_the_limits_are_the_columns():
    assert profile.TEXT_LIMITS == {"name": 200, "organisation": 200, "place": 200}
    assert (profile.LANGUAGE_LIMIT, profile.ATTRIBUTE_LIMIT) == (20, 1000)


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("Jo Bloggs", "Jo Bloggs"),
        ("  Ann\nSmith ", "Ann Smith"),
        ("Ann\r\n  \tSmith", "Ann Smith"),
        ("Ünïcode 😀  Ltd", "Ünïcode 😀 Ltd"),
        ("   ", ""),
    ],
)
def test_text_is_kept_on_one_line(typed, kept):
    assert profile.tidy(typed) == kept
    assert profile.text("name", typed) == kept


def test_text_at_its_limit_is_kept_and_one_more_is_refused():
    assert profile.text("place", "x" * 200) == "x" * 200
    assert profile.text("place", " x " * 100) == " ".join(["x"] * 100)  # counted once tidied
    assert message(profile.text, "organisation", "x" * 201) == "organisation is 201 characters; at most 200"
    assert message(profile.text, "name", "x" * 10_000) == "name is 10000 characters; at most 200"


def test_too_long_gives_its_length_and_limit_for_a_form_to_word():
    with pytest.raises(TooLong) as caught:
        profile.within("email", "y" * 321, 320)
    problem = caught.value
    assert (problem.field, problem.length, problem.limit) == ("email", 321, 320)
    assert str(problem) == "email is 321 characters; at most 320"
    assert profile.within("email", "y" * 320, 320) == "y" * 320


@pytest.mark.parametrize("tag", ["en-GB", "cy", "pa-Guru-IN", "en-GB-oxendict"])
def test_language_tags_are_kept(tag):
    assert profile.language(tag) == tag


def test_a_language_tag_in_any_case_is_kept_in_its_usual_case():
    assert profile.language("EN-gb") == "en-GB"  # BCP 47 tags ignore case; the one rule issues use


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("English", "language must be a tag such as en-GB or cy, not 'English'"),
        ("en-gb-cy", "language must be a tag such as en-GB or cy, not 'en-gb-cy'"),
        ("en-GB-" + "a" * 14, "language must be a tag such as en-GB or cy, not 'en-GB-aaaaaaaaaaaaaa'"),
        ("x" * 10_000, "language must be a tag such as en-GB or cy, not '" + "x" * 59 + "…'"),
    ],
)
def test_a_language_that_is_not_a_tag_is_refused(typed, expected):
    assert message(profile.language, typed) == expected


def test_format_in_any_case_unless_exact():
    assert profile.email_format("HTML") is Format.HTML
    assert profile.email_format("text") is Format.TEXT
    assert profile.email_format("text", exact=True) is Format.TEXT
    assert message(profile.email_format, "Text", exact=True) == "format must be html or text, not 'Text'"
    assert message(profile.email_format, "PDF") == "format must be html or text, not 'PDF'"
    assert message(profile.email_format, "") == "format must be html or text, not ''"


def test_status_in_any_case():
    assert profile.status("Unsubscribed") is Status.UNSUBSCRIBED
    assert (
        message(profile.status, "gone")
        == "status 'gone' is not one of pending, active, unsubscribed, bounced, complained"
    )


def test_joined_is_a_date_or_time_kept_in_utc():
    assert profile.joined("2023-05-01") == dt.datetime(2023, 5, 1)
    assert profile.joined("2023-01-01T00:30:00+02:00") == dt.datetime(2022, 12, 31, 22, 30)
    assert message(profile.joined, "last May") == "joined must be a date (YYYY-MM-DD), not 'last May'"
    assert message(profile.joined, "9" * 100) == f"joined must be a date (YYYY-MM-DD), not '{'9' * 59}…'"


def test_words_by_slug_or_name_in_any_case(vocabulary):
    assert profile.word(vocabulary, "regions", "wales") == "wales"
    assert profile.word(vocabulary, "regions", "Wales") == "wales"
    assert profile.word(vocabulary, "sectors", " NHS ") == "nhs"
    with pytest.raises(FieldProblem) as caught:
        profile.word(vocabulary, "sectors", "nhss")
    assert caught.value.field == "sector"
    assert str(caught.value).startswith(
        "unknown sector 'nhss' (did you mean 'nhs'?); closest sectors: nhs (NHS and health and care), "
    )
    assert str(caught.value).endswith("; all sectors are listed in subscribers/sectors.yaml")
    assert message(profile.word, vocabulary, "topics", "housign").startswith(
        "unknown topic 'housign' (did you mean 'housing'?)"
    )


def test_attributes_are_a_json_object_kept_as_text():
    assert profile.attributes('{"team": "red", "size": 3}') == {"team": "red", "size": "3"}
    assert message(profile.attributes, "team=red") == (
        "attributes must be JSON, as `newsletter subscribers export` writes it"
    )
    assert message(profile.attributes, "[1, 2]") == "attributes must be a JSON object"


def test_an_attribute_has_at_most_1000_characters():
    assert profile.attribute("team", "x" * 1000) == "x" * 1000
    assert message(profile.attribute, "team", "x" * 10_000) == "team is 10000 characters; at most 1000"


def test_each_problem_names_its_field(vocabulary):
    problems = {
        "name": (profile.text, "name", "x" * 201),
        "language": (profile.language, "English"),
        "format": (profile.email_format, "pdf"),
        "status": (profile.status, "gone"),
        "joined": (profile.joined, "soon"),
        "region": (profile.word, vocabulary, "regions", "Walse"),
        "attributes": (profile.attributes, "{"),
        "team": (profile.attribute, "team", "x" * 1001),
    }
    for field, (rule, *args) in problems.items():
        with pytest.raises(FieldProblem) as caught:
            rule(*args)
        assert caught.value.field == field
