"""End to end in a real browser: Debian's Chromium, driven by Playwright, against a real server.

Volunteers sign in and complete every task type until the tree is ready for export; screenshots of the
main pages go to test-artifacts/screenshots/ (the README shows copies from docs/screenshots/).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from oasst.config import Settings
from tests.conftest import missing_service
from tests.live import serve
from tests.web.flow import A1, A2, FULL_LOOP_TREES, PROMPT, U1, U2

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """Browser tests run on SQLite only: the engines are covered by the HTTP-level tests."""
    path = tmp_path / "oasst.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing_service("Chromium", FileNotFoundError(f"{CHROMIUM} (apt-get install -y chromium)"))
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def site(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(debug=True, tree_manager=FULL_LOOP_TREES)) as base_url:
        yield base_url


class Volunteer:
    """One person in a browser tab of their own (a fresh context: no cookies shared)."""

    def __init__(
        self,
        chromium: Browser,
        site: str,
        name: str,
        role: str = "user",
        width: int = 1200,
        height: int = 900,
    ) -> None:
        self.context = chromium.new_context(base_url=site, viewport={"width": width, "height": height})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        # Script errors and refusals by the content security policy show up on the console.
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto("/signin?next=/contribute")
        self.page.get_by_label("Name", exact=True).fill(name)
        self.page.get_by_label("Role").select_option(role)
        self.page.get_by_role("button", name="Sign in as this name").click()
        expect(self.page.get_by_role("heading", name="Contribute", exact=True)).to_be_visible()
        expect(self.page.locator(".who")).to_have_text(name)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"errors in the browser console: {self.errors}"

    def start(self, kind: str) -> None:
        """Pick a task type on the contribute page and wait for its page."""
        self.page.goto("/contribute")
        self.page.locator(f'.task-card[data-task-type="{kind}"] button').click()
        expect(self.page.locator(f'.task-layout[data-task-type="{kind}"]')).to_be_visible()

    def submit(self) -> None:
        self.page.get_by_role("button", name="Submit").click()
        expect(self.page.locator(".alert.success")).to_be_visible()

    def expect_tree_state(self, state: str) -> None:
        """The tree viewer on screen shows the tree in `state`."""
        expect(self.page.locator("[data-tree-state]")).to_have_attribute("data-tree-state", state)

    def shoot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def reply(self, kind: str, text: str, screenshot: str | None = None) -> None:
        self.start(kind)
        if screenshot:
            self.shoot(screenshot)
        self.page.locator("textarea#text").fill(text)
        self.submit()

    def label_current(self) -> str:
        """Answer the label task on screen: not spam, top quality. The text it was about."""
        labelled = self.page.locator(".conversation .bubble.focus .text").inner_text()
        self.page.locator('fieldset.yes-no:has(input[name="label-spam"])').get_by_label("No").check()
        self.page.locator('input[name="label-quality"]').fill("4")
        self.submit()
        return labelled

    def rank(
        self, kind: str, best_first: list[str], *, drag: bool = False, screenshot: str | None = None
    ) -> None:
        """Put the replies in `best_first` order (dragging them, or with the arrow buttons), then submit."""
        self.start(kind)
        items = self.page.locator(".ranking .rank-item")
        for position, text in enumerate(best_first):
            item = items.filter(has_text=text)
            last = items.count() - 1
            if drag and position < last:
                # From the bottom (so the drag always moves it) onto the upper half of the reply at
                # `position`: it lands before that one.
                while text not in items.nth(last).inner_text():
                    item.get_by_role("button", name="Move down").click()
                item.drag_to(items.nth(position), target_position={"x": 20, "y": 5})
            elif not drag:
                while text not in items.nth(position).inner_text():
                    item.get_by_role("button", name="Move up").click()
        for position, text in enumerate(best_first):
            expect(items.nth(position)).to_contain_text(text)
        if screenshot:
            self.shoot(screenshot)
        self.submit()


def test_volunteers_grow_a_tree_to_ready_for_export_in_the_browser(chromium: Browser, site: str) -> None:
    people: dict[str, Volunteer] = {}

    def person(name: str) -> Volunteer:
        if name not in people:
            people[name] = Volunteer(chromium, site, name)
        return people[name]

    try:
        landing = person("alice")
        landing.page.goto("/")
        landing.shoot("home")
        landing.page.goto("/contribute")
        landing.shoot("contribute")
        person("alice").reply("initial_prompt", PROMPT, screenshot="task-initial-prompt")

        bob = person("bob")
        bob.start("label_initial_prompt")
        bob.shoot("task-label-prompt")
        assert bob.label_current() == PROMPT

        person("carol").reply("assistant_reply", A1, screenshot="task-assistant-reply")
        dave = person("dave")
        dave.start("label_assistant_reply")
        assert dave.label_current() == A1

        person("erin").reply("prompter_reply", U1, screenshot="task-prompter-reply")
        person("frank").reply("prompter_reply", U2)
        # Dave reviews both user replies: the second task follows the first without going back.
        dave.start("label_prompter_reply")
        first = dave.label_current()
        expect(dave.page.locator('.task-layout[data-task-type="label_prompter_reply"]')).to_be_visible()
        second = dave.label_current()
        assert sorted([first, second]) == sorted([U1, U2])
        expect(dave.page.get_by_text("There is no task of this type right now")).to_be_visible()

        person("grace").reply("assistant_reply", A2)
        dave.start("label_assistant_reply")
        assert dave.label_current() == A2

        bob.rank("rank_assistant_replies", [A2, A1], screenshot="task-rank")
        bob.rank("rank_prompter_replies", [U1, U2], drag=True)

        # The tree viewer: the whole tree, ready for export, with the ranks the volunteers gave.
        alice = person("alice")
        alice.page.goto("/profile")
        alice.page.get_by_role("link", name=PROMPT).click()
        alice.expect_tree_state("ready_for_export")
        first_ranked = alice.page.locator(".bubble:has(.badge:text-is('rank 1')) .text")
        expect(first_ranked).to_have_count(2)
        assert sorted(first_ranked.all_inner_texts()) == sorted([A2, U1])
        alice.shoot("tree")
        alice.page.get_by_role("link", name="Leaderboard").click()
        expect(alice.page.get_by_role("heading", name="Leaderboard")).to_be_visible()
        alice.shoot("leaderboard")
        alice.page.goto("/profile")
        alice.shoot("profile")
    finally:
        for volunteer in people.values():
            volunteer.close()


def test_a_volunteer_skips_a_task_and_switches_the_language(chromium: Browser, site: str) -> None:
    alice = Volunteer(chromium, site, "alice")
    try:
        alice.reply("initial_prompt", PROMPT)
        bob = Volunteer(chromium, site, "bob", width=390, height=844)  # a phone
        bob.start("label_initial_prompt")
        bob.shoot("phone-label-prompt")
        bob.page.get_by_text("Skip this task").click()
        bob.page.get_by_label("Why? (optional)").fill("Not sure")
        bob.page.get_by_role("button", name="Skip", exact=True).click()
        expect(bob.page.get_by_text("There is no task of this type right now")).to_be_visible()

        bob.page.get_by_label("Language").select_option("de")
        expect(bob.page.get_by_role("heading", name="Mitmachen")).to_be_visible()
        expect(bob.page.locator("html")).to_have_attribute("lang", "de")
        bob.page.goto("/signin")
        bob.shoot("signin-de")
        bob.close()
    finally:
        alice.close()


def test_a_moderator_halts_a_reported_tree_in_the_browser(chromium: Browser, site: str) -> None:
    alice = Volunteer(chromium, site, "alice")
    bob = Volunteer(chromium, site, "bob")
    moderator = Volunteer(chromium, site, "mia", role="moderator")
    try:
        alice.reply("initial_prompt", PROMPT)
        alice.page.goto("/profile")
        tree_path = alice.page.get_by_role("link", name=PROMPT).get_attribute("href")
        assert tree_path
        expect(alice.page.locator("body")).not_to_contain_text("Halt the tree")

        bob.page.goto(tree_path)
        bob.page.get_by_role("button", name="Report to moderators").click()
        expect(bob.page.locator('[data-count="red_flag"]')).to_have_text("1")

        moderator.page.get_by_role("link", name="Moderation").click()
        moderator.page.locator(".flagged").get_by_role("link", name=PROMPT).click()
        moderator.expect_tree_state("initial_prompt_review")
        moderator.page.get_by_role("button", name="Halt the tree").click()
        moderator.expect_tree_state("halted_by_moderator")
        moderator.shoot("moderation-halted-tree")
        moderator.page.get_by_role("link", name="Moderation").click()
        moderator.page.get_by_role("button", name="Handled").click()
        expect(moderator.page.get_by_text("no open reports")).to_be_visible()

        alice.page.goto(tree_path)
        alice.expect_tree_state("halted_by_moderator")
    finally:
        for volunteer in (alice, bob, moderator):
            volunteer.close()
