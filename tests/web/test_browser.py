"""End to end in a real browser: Debian's Chromium, driven by Playwright, against a real server.

Volunteers sign in and complete every task type until the tree is ready for export; screenshots of the
main pages go to test-artifacts/screenshots/ (the README shows copies from docs/screenshots/).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, expect

from oasst.config import Settings
from tests.live import serve
from tests.web.browser import Volunteer
from tests.web.flow import A1, A2, FULL_LOOP_TREES, PROMPT, U1, U2


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """Browser tests run on SQLite only: the engines are covered by the HTTP-level tests."""
    return sqlite_database_url


@pytest.fixture
def site(make_settings: Callable[..., Settings]) -> Iterator[str]:
    with serve(make_settings(debug=True, tree_manager=FULL_LOOP_TREES)) as base_url:
        yield base_url


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
        moderator.page.locator(".tree").get_by_role("link", name="Edit").click()
        moderator.page.get_by_label("Text of the message").fill(f"{PROMPT} (edited)")
        moderator.page.get_by_role("button", name="Save the new text").click()
        expect(moderator.page.locator(".tree .text")).to_have_text(f"{PROMPT} (edited)")
        moderator.page.get_by_role("link", name="Moderation").click()
        moderator.page.get_by_role("button", name="Handled").click()
        expect(moderator.page.get_by_text("no open reports")).to_be_visible()

        alice.page.goto(tree_path)
        alice.expect_tree_state("halted_by_moderator")
    finally:
        for volunteer in (alice, bob, moderator):
            volunteer.close()


def test_an_admin_creates_a_gateway_account_in_the_browser(chromium: Browser, site: str) -> None:
    admin = Volunteer(chromium, site, "ada", role="admin")
    try:
        page = admin.page
        page.get_by_role("link", name="Admin").click()
        page.get_by_role("link", name="Gateway accounts").click()
        page.get_by_label("Name").fill("cs-101")
        page.get_by_label("Course").fill("CS-101")
        page.get_by_label("Budget (tokens; empty for the default)").fill("5000")
        page.get_by_role("button", name="Create the account").click()
        key = page.get_by_label("Its key").input_value()
        assert len(key) >= 32
        admin.shoot("admin-gateway-key")

        page.get_by_role("link", name="Back to the gateway accounts").click()
        row = page.locator('[data-gateway-account="cs-101"]')
        expect(row.get_by_label("Budget of cs-101")).to_have_value("5000")
        expect(page.locator("body")).not_to_contain_text(key)
        row.get_by_label("Budget of cs-101").fill("7000")
        with page.expect_response(lambda response: response.url.endswith("/admin/gateway")):
            row.get_by_role("button", name="Save").click()  # saved, then the list again
        page.reload()
        expect(row.get_by_label("Budget of cs-101")).to_have_value("7000")
    finally:
        admin.close()
