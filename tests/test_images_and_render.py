"""Pictures that travel with their issue, and `render` writing the copy one member gets.

A picture file in `issues/<slug>/` is checked (there, a picture mail clients show, not too heavy,
wide enough for where it is shown), copied beside the rendered email and published by the archive at
the very address the email links to. `render` fills the personal links (a sample member's, or
`--as` a member's own) and writes the whole message as `email.eml`.
"""

from __future__ import annotations

import re
import struct
import zlib
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from archive_support import settings_for
from delivery_support import member_row, run_cli, write_members
from newsletter.archive.build import build
from newsletter.audience.service import Audience
from newsletter.audience.store import Store
from newsletter.db.models import Subscriber
from newsletter.errors import ProblemsFound
from newsletter.settings import Settings
from newsletter.tokens import BadToken, Tokens
from user_support import init_project, newsletter

SLUG = "2023-10"
BASE_URL = "https://news.health-equity-network.example.org"
LEAD_STORY = "  - kind: story\n    label: Lead story\n"


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Messages name files as the editor sees them, from the project's folder."""
    monkeypatch.chdir(tmp_path)


# --- picture files, made byte by byte (no image library is installed) ------------------------------


def png(width: int, height: int = 2, padding: int = 0) -> bytes:
    """A real PNG of grey pixels; `padding` bytes of comment make it as heavy as wanted."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    comment = chunk(b"tEXt", b"Comment\x00" + b"x" * padding) if padding else b""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + comment
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def gif(width: int, height: int = 2) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def jpeg(width: int, height: int = 2) -> bytes:
    """A JPEG's headers: a JFIF segment, an EXIF-sized segment before the frame, the frame header."""
    jfif = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    exif = b"\xff\xe1" + struct.pack(">H", 2 + 3000) + b"\x00" * 3000
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00" * 3
    return b"\xff\xd8" + jfif + exif + frame + b"\xff\xd9"


def webp(chunk: bytes, width: int, height: int = 2) -> bytes:
    if chunk == b"VP8X":
        body = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    elif chunk == b"VP8L":
        body = b"\x2f" + ((width - 1) | (height - 1) << 14).to_bytes(4, "little") + b"\x00" * 5
    else:
        body = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", width, height)
    data = b"WEBP" + chunk + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", len(data)) + data


def issue_with_picture(src: str, width: str = "") -> str:
    """An issue whose story shows `src`; its `src:` is on line 11."""
    return (
        "title: November 2023 Newsletter\n"  # 1
        "date: 2023-11-01\n"
        "subject: News from the network\n"
        "preheader: What happened this month\n"
        "editor: E\n"  # 5
        "sections:\n"
        "  - kind: story\n"
        "    title: A story\n"
        "    body: Text.\n"
        "    image:\n"  # 10
        f"      src: {src}\n"  # 11
        "      alt: The conference hall\n" + (f"      width: {width}\n" if width else "")
    )


def picture_at(tmp_path: Path, name: str, content: bytes) -> None:
    target = tmp_path / "issues" / "draft" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


def warnings_about_pictures(checked) -> list[str]:
    return [str(warning) for warning in checked.warnings if warning.where.endswith("image.src")]


# --- check ---------------------------------------------------------------------------------------


def test_a_missing_picture_is_a_problem_at_its_line(check_yaml):
    with pytest.raises(ProblemsFound) as raised:
        check_yaml(issue_with_picture("hall.png"))
    assert str(raised.value) == (
        "issues/draft/issue.yaml:11: story.image.src: no file 'hall.png' next to issue.yaml"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "hall.png",
            b'<svg xmlns="http://www.w3.org/2000/svg"/>',
            "'hall.png' is not a PNG, JPEG, GIF or WebP picture but an SVG drawing; mail clients show "
            "only those, so save it as JPEG (photos) or PNG (drawings, screenshots)",
        ),
        (
            "hall.png",
            jpeg(600),
            "'hall.png' holds a JPEG picture; web servers send a file as what its name says, "
            "so name it 'hall.jpg'",
        ),
        (
            "my hall.png",
            png(600),
            "'my hall.png': name picture files with letters, digits, '-', '_' and '.' only "
            "(the name becomes part of the picture's address); rename the file",
        ),
    ],
)
def test_a_file_mail_clients_cannot_show_under_its_address_is_a_problem_at_its_line(
    check_yaml, tmp_path, name, content, message
):
    picture_at(tmp_path, name, content)
    with pytest.raises(ProblemsFound) as raised:
        check_yaml(issue_with_picture(name))
    assert str(raised.value) == f"issues/draft/issue.yaml:11: story.image.src: {message}"


def test_a_heavy_picture_is_a_warning_at_its_line_and_the_issue_still_checks(check_yaml, tmp_path):
    picture_at(tmp_path, "hall.png", png(1000, padding=1_500_000))
    checked = check_yaml(issue_with_picture("hall.png"))
    assert checked.problems == []
    assert warnings_about_pictures(checked) == [
        "issues/draft/issue.yaml:11: sections[1].image.src: 'hall.png' is 1.5 MB, seconds of waiting on a "
        "phone's connection; save it smaller (a JPEG photo 1,104 px wide is about 200 KB)"
    ]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("hall.png", png(300)),
        ("hall.gif", gif(300)),
        ("hall.jpg", jpeg(300)),
        ("hall.webp", webp(b"VP8X", 300)),
        ("lossless.webp", webp(b"VP8L", 300)),
        ("lossy.webp", webp(b"VP8 ", 300)),
    ],
)
def test_the_width_is_read_from_each_kind_of_picture(check_yaml, tmp_path, name, content):
    picture_at(tmp_path, name, content)
    stretched = check_yaml(issue_with_picture(name, width="600"))
    assert warnings_about_pictures(stretched) == [
        f"issues/draft/issue.yaml:11: sections[1].image.src: '{name}' is 300 px wide but shown 552 px "
        f"wide, so it looks blurred; use a picture at least 552 px wide, or 'width: 300'"
    ]
    # Without `width:`, the file's own width is used: shown at 300 px, not stretched to the column.
    natural = check_yaml(issue_with_picture(name))
    assert warnings_about_pictures(natural) == []
    assert natural.issue.sections[0].image.width == 300
    assert re.search(r'<img [^>]*src="[^"]*/' + re.escape(name) + r'"[^>]*width="300"', natural.edition.html)


def test_an_absurdly_wide_picture_is_a_warning(check_yaml, tmp_path):
    picture_at(tmp_path, "hall.png", png(4000))
    checked = check_yaml(issue_with_picture("hall.png"))
    assert warnings_about_pictures(checked) == [
        "issues/draft/issue.yaml:11: sections[1].image.src: 'hall.png' is 4,000 px wide; the email shows "
        "it at most 552 px wide (1,104 px is sharp on any screen), so scale it down"
    ]


def test_a_remote_picture_is_judged_by_its_address_without_fetching_it(check_yaml):
    checked = check_yaml(issue_with_picture("https://example.org/hall.svg"))
    assert warnings_about_pictures(checked) == [
        "issues/draft/issue.yaml:11: sections[1].image.src: 'https://example.org/hall.svg' is named as "
        "SVG, which many mail clients do not show; use a PNG, JPEG, GIF or WebP picture"
    ]
    with pytest.raises(ProblemsFound, match=re.escape("must be an https:// address, not 'http://ex")):
        check_yaml(issue_with_picture("http://example.org/a.png"))


# --- render and the archive ------------------------------------------------------------------------


def add_picture_to_sample(project: Path, src: str, content: bytes) -> None:
    folder = project / "issues" / SLUG
    (folder / src).parent.mkdir(parents=True, exist_ok=True)
    (folder / src).write_bytes(content)
    text = (folder / "issue.yaml").read_text(encoding="utf-8")
    picture = f"    image:\n      src: {src}\n      alt: The conference hall in Birmingham\n"
    (folder / "issue.yaml").write_text(text.replace(LEAD_STORY, LEAD_STORY + picture, 1), encoding="utf-8")


def test_a_picture_file_is_in_the_render_and_the_archive_at_the_address_the_email_links_to(
    project, repo_root, tmp_path
):
    picture = png(1104, 600)
    add_picture_to_sample(project, "pictures/hall.png", picture)
    settings = settings_for(project, repo_root)

    rendered = run_cli(settings, "render", SLUG, "--out", "out")
    assert rendered.exit_code == 0, rendered.output
    assert (project / "out" / "pictures" / "hall.png").read_bytes() == picture
    html = (project / "out" / "email.html").read_text(encoding="utf-8")
    (linked,) = re.findall(r'<img [^>]*src="([^"]+/hall\.png)"', html)
    assert linked == f"{BASE_URL}/archive/{SLUG}/pictures/hall.png"

    build(settings, tmp_path / "site")
    published = tmp_path / "site" / linked.removeprefix(f"{BASE_URL}/")
    assert published.read_bytes() == picture


def sample_copy(out: Path) -> tuple[EmailMessage, str, str]:
    message = message_from_bytes((out / "email.eml").read_bytes(), policy=policy.default)
    return message, (out / "email.html").read_text("utf-8"), (out / "email.txt").read_text("utf-8")


def test_render_writes_a_sample_members_copy_without_placeholders(project, repo_root):
    settings = settings_for(project, repo_root)
    rendered = run_cli(settings, "render", SLUG, "--out", "out")
    assert rendered.exit_code == 0, rendered.output
    assert "as a sample member (member@example.org" in rendered.output
    message, html, text = sample_copy(project / "out")
    assert "%%" not in html and "%%" not in text
    assert message["To"] == "member@example.org"
    assert message["Subject"].startswith("First Health Equity Network conference")
    assert message.get_body(("html",)).get_content().replace("\r\n", "\n") == html
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
    # The sample's links name nobody: subscriber 0, whom no member is.
    (unsubscribe,) = set(re.findall(rf"{BASE_URL}/unsubscribe/([\w.-]+)", text))
    assert unsubscribe.startswith("0.")
    assert f"{BASE_URL}/archive/{SLUG}/" in html


MEMBER = "laura.morgan@blaenau-gwent.gov.example"  # picked only housing, so no Gwent report
READS_TEXT = "amir.khan@leeds.ac.example"


@pytest.fixture
def with_members(project, repo_root) -> Settings:
    settings = Settings(
        issues_dir=project / "issues",
        theme_dir=repo_root / "templates",
        vocabulary_dir=repo_root / "subscribers",
        database_url=f"sqlite:///{project / 'newsletter.sqlite3'}",
        secret_key="a-test-key-that-is-long-enough-to-sign-links",
    )
    csv = write_members(
        project / "members.csv",
        [
            member_row(MEMBER, name="Laura Morgan", region="wales", topics="housing"),
            member_row(READS_TEXT, name="Amir Khan", format="text"),
        ],
    )
    store = Store.open(settings)
    try:
        store.upgrade()
        assert Audience(store).import_csv(csv).rejected == 0
    finally:
        store.close()
    return settings


def test_render_as_a_member_writes_their_copy_with_links_that_act_on_nobody(project, with_members):
    rendered = run_cli(with_members, "render", SLUG, "--out", "out", "--as", MEMBER)
    assert rendered.exit_code == 0, rendered.output
    assert f"as {MEMBER}, HTML and text" in rendered.output
    message, html, text = sample_copy(project / "out")
    assert message["To"].addresses[0].addr_spec == MEMBER
    assert message["To"].addresses[0].display_name == "Laura Morgan"
    assert "%%" not in html and "%%" not in text
    assert "Building a Fairer Gwent" not in text  # the report she did not choose
    (token,) = set(re.findall(rf"{BASE_URL}/unsubscribe/([\w.-]+)", text))
    store = Store.open(with_members)
    try:
        with store.session() as session:
            member = session.scalars(select(Subscriber).where(Subscriber.email == MEMBER)).one()
            keys = {member.id: member.link_key}
    finally:
        store.close()
    # The folder may be shared: its links open the pages but name nobody, never the member.
    assert token.startswith("0.")
    with pytest.raises(BadToken):
        Tokens(with_members.secret_key).read("unsubscribe", token, keys.get)


def test_render_as_a_member_who_reads_plain_text_writes_no_html(project, with_members):
    (project / "out").mkdir()
    (project / "out" / "email.html").write_text("an earlier render", encoding="utf-8")
    rendered = run_cli(with_members, "render", SLUG, "--out", "out", "--as", READS_TEXT)
    assert rendered.exit_code == 0, rendered.output
    assert not (project / "out" / "email.html").exists()
    message = message_from_bytes((project / "out" / "email.eml").read_bytes(), policy=policy.default)
    assert message.get_content_type() == "text/plain"
    assert "%%" not in (project / "out" / "email.txt").read_text(encoding="utf-8")


def test_render_as_someone_who_is_not_a_member_says_so(with_members):
    rendered = run_cli(with_members, "render", SLUG, "--out", "out", "--as", "nobody@example.org")
    assert rendered.exit_code == 1
    assert "nobody@example.org: no member with this address" in rendered.output


# --- as a user -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_picture_and_a_members_copy_through_the_installed_command(tmp_path, repo_root):
    folder = init_project(tmp_path)
    issue = folder / "issues" / SLUG
    issue.mkdir()
    (issue / "issue.yaml").write_text(
        (repo_root / "issues" / SLUG / "issue.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    picture = png(1104, 600)
    add_picture_to_sample(folder, "hall.png", picture)
    (folder / "subscribers" / "members.csv").write_text(
        "email,name,region,topics\nlaura.morgan@blaenau-gwent.gov.example,Laura Morgan,wales,housing\n",
        encoding="utf-8",
    )
    newsletter(folder, "subscribers", "import", "subscribers/members.csv", "--list", "newsletter")

    checked = newsletter(folder, "check", SLUG)
    assert "hall.png" not in checked.stderr  # a picture of the right size draws no warning
    rendered = newsletter(folder, "render", SLUG, "--out", "out", "--as", MEMBER)
    assert "Wrote out/email.html, out/email.txt, out/email.eml, out/web.html" in rendered.stdout
    message, html, text = sample_copy(folder / "out")
    assert message["To"].addresses[0].addr_spec == MEMBER
    assert "%%" not in html + text
    assert (folder / "out" / "hall.png").read_bytes() == picture

    newsletter(folder, "archive", "build", "--out", "site")
    (linked,) = re.findall(r'<img [^>]*src="https?://[^/"]+/([^"]+hall\.png)"', html)
    assert (folder / "site" / linked).read_bytes() == picture
