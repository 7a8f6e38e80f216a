"""Desk benchmark: saving an edited section and seeing the refreshed preview, against `check` + render.

An editor at the desk changes one story's title on the sample issue's edit page and presses Save; the
desk writes issue.yaml (keeping its comments), shows the page again with what `check` finds, and the
preview shows the new email. This times that round, through the real app (`create_app` over a SQLite
file and a copy of the issues, the form posted as a browser posts it, read from the edit page itself):

    save     POST the edit form (op=save): merge, write, record in the history; the redirect
    page     GET the edit page it redirects to (the problems `check` finds, at their fields)
    preview  GET the preview page and the email its frames show

Why the references are measured in the same run: the machine is shared and noisy. The reference is
what an editor without the desk does after saving the file: run `newsletter check` and `newsletter
render` of the issue (the installed command, in the repository's folder, two processes). A second,
stricter figure leaves out the commands' start-up: the same check and render in this process with a
fresh `Editor` (vocabulary and theme loaded afresh, as each command does).

Target: the desk's save-and-preview round is no slower than `newsletter check` + `newsletter render`
(ratio <= 1.0). It prints the medians of each part and both ratios, and exits 0 whether or not the
target is met (a benchmark, not a test).

    .venv/bin/python bench/desk.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLUG = "2023-10"
EDITOR = "bench.editor@example.org"
TARGET = 1.0


class FormFields(HTMLParser):
    """The fields the edit form would send as it stands (inputs, checked boxes, textareas, selects)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._text: list[str] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form" and found.get("method") == "post" and "/edit" in found.get("action", ""):
            self._in_form = True
        if not self._in_form:
            return
        name = found.get("name")
        if tag == "input" and name and found.get("type") not in ("submit", "button"):
            if found.get("type") in ("checkbox", "radio") and "checked" not in found:
                return
            self.fields.append((name, found.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in found:
            self.fields.append((self._select, found.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self.fields.append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self._in_form = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="edits timed, after one untimed")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    from newsletter.audience.store import Store
    from newsletter.db.models import Role
    from newsletter.editor import Editor
    from newsletter.settings import Settings
    from newsletter.team import Team
    from newsletter.web.app import close_app, create_app

    with tempfile.TemporaryDirectory(prefix="bench-desk-") as folder:
        work = Path(folder)
        shutil.copytree(ROOT / "issues", work / "issues")
        settings = Settings(
            database_url=f"sqlite:///{work / 'bench.sqlite3'}",
            secret_key="a-long-secret-key-for-the-desk-benchmark-only-0123456789",
            base_url="http://127.0.0.1:8000",
            smtp_url="smtp://127.0.0.1:9",  # nothing is mailed: the editor signs in with a made link
            issues_dir=work / "issues",
            theme_dir=ROOT / "templates",
            vocabulary_dir=ROOT / "subscribers",
        )
        store = Store.open(settings)
        store.upgrade()
        team = Team(store.database, settings.secret_key)
        team.add(EDITOR, Role.EDITOR)
        made = team.sign_in_token(EDITOR)
        assert made is not None
        app = create_app(settings, store=store)
        client = app.test_client()
        link = f"/desk/sign-in/{made[1]}"
        token = csrf(client.get(link).text)
        assert client.post(link, data={"csrf_token": token}).status_code == 302

        issue_file = work / "issues" / SLUG / "issue.yaml"
        rounds: dict[str, list[float]] = {"save": [], "page": [], "preview": [], "desk": [], "reference": []}
        for number in range(args.rounds + 1):
            form = FormFields()
            form.feed(client.get(f"/desk/issues/{SLUG}/edit").text)
            fields = [
                (
                    name,
                    f"Growing a Movement for Health Equity: round {number}"
                    if value.startswith("Growing a")
                    else value,
                )
                for name, value in form.fields
            ]
            data: dict[str, list[str]] = {}
            for name, value in [*fields, ("op", "save")]:
                data.setdefault(name, []).append(value)

            started = time.perf_counter()
            saved = client.post(f"/desk/issues/{SLUG}/edit", data=data)
            after_save = time.perf_counter()
            assert saved.status_code == 302, saved.text[:500]
            page = client.get(saved.headers["Location"])
            after_page = time.perf_counter()
            preview = client.get(f"/desk/issues/{SLUG}/preview")
            email = client.get(f"/desk/issues/{SLUG}/preview/email.html")
            finished = time.perf_counter()
            assert page.status_code == preview.status_code == email.status_code == 200
            assert f"round {number}" in email.text and f"round {number}" in issue_file.read_text(
                encoding="utf-8"
            )

            reference_started = time.perf_counter()
            editor = Editor(settings)  # what each command does: vocabulary and theme loaded afresh
            editor.check(SLUG)
            editor.render_to(SLUG, work / "out", force=True)
            reference = time.perf_counter() - reference_started
            if number == 0:
                continue  # the first round warms the caches of both
            rounds["save"].append(after_save - started)
            rounds["page"].append(after_page - after_save)
            rounds["preview"].append(finished - after_page)
            rounds["desk"].append(finished - started)
            rounds["reference"].append(reference)
        close_app(app)

    newsletter = Path(sys.executable).with_name("newsletter")
    for _ in range(max(3, args.rounds // 3)):
        with tempfile.TemporaryDirectory(prefix="bench-desk-render-") as out:
            started = time.perf_counter()
            for command in (["check", SLUG], ["render", SLUG, "--out", out]):
                subprocess.run([str(newsletter), *command], cwd=ROOT, check=True, capture_output=True)
            rounds.setdefault("commands", []).append(time.perf_counter() - started)

    median = {name: statistics.median(times) * 1000 for name, times in rounds.items()}
    ratio = median["desk"] / median["commands"]
    strict = median["desk"] / median["reference"]
    print(f"desk benchmark: issue {SLUG}, one story title changed a round, {args.rounds} rounds (medians)")
    print(f"  save (POST, merge, write, history):   {median['save']:7.1f} ms")
    print(f"  edit page with check's problems:      {median['page']:7.1f} ms")
    print(f"  preview page and its email:           {median['preview']:7.1f} ms")
    print(f"  desk round:                           {median['desk']:7.1f} ms")
    print(f"  reference: newsletter check + newsletter render: {median['commands']:7.1f} ms")
    print(f"  stricter: the same in this process, fresh Editor: {median['reference']:7.1f} ms")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"ratio desk / (check + render commands): {ratio:.2f} (target <= {TARGET}: {verdict})")
    print(f"ratio desk / in-process check + render: {strict:.2f} (not a target: start-up left out)")
    return 0


def csrf(page: str) -> str:
    marker = 'name="csrf_token" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]


if __name__ == "__main__":
    raise SystemExit(main())
