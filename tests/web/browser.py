"""A person in a real browser: Debian's Chromium, driven by Playwright, signed in with the development
sign-in; helpers to work through tasks and take screenshots."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, expect

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
