"""`oasst contribute`: answer collection tasks in the terminal, or let simulated contributors play them."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import random

    from rich.console import Console

    from oasst.client import CollectionClient
    from oasst.client.autoplay import LabelTask, RankTask
    from oasst.protocol.collection import AnyInteraction, AnyTask, TaskRequestType, User

NO_TASK_AVAILABLE = 1006
# A simulated contributor who fails this many tasks in a row is retired: the server is refusing them.
MAX_CONSECUTIVE_ERRORS = 3


def contribute(
    server: str = typer.Option("http://127.0.0.1:8080", help="Base URL of the collection server."),
    api_key: str = typer.Option(..., envvar="OASST_API_KEY", help="API key of this frontend."),
    user_id: str | None = typer.Option(
        None,
        help="Your id as this frontend knows you (default: your login name). With --auto, the prefix of the "
        "simulated users' ids (default: autoplay).",
    ),
    display_name: str | None = typer.Option(None, help="The name shown for you (default: the user id)."),
    lang: str = typer.Option("en", help="Language of the tasks and of your answers."),
    task_type: str = typer.Option(
        "random",
        "--type",
        help="Task type to ask for, e.g. initial_prompt, assistant_reply, prompter_reply, "
        "label_initial_prompt, label_assistant_reply, rank_assistant_replies; random lets the server pick.",
    ),
    auto: int = typer.Option(
        0, "--auto", metavar="N", min=0, help="Play N tasks automatically with random answers, then stop."
    ),
    users: int = typer.Option(3, "--users", metavar="K", min=1, help="With --auto: how many contributors."),
    seed: int | None = typer.Option(None, help="With --auto: seed of the random answers."),
) -> None:
    """Answer tasks one after another: write prompts and replies, label and rank messages.

    At any question, `s` skips the task and `q` (or Ctrl-D) quits.
    """
    import getpass
    import random

    import httpx
    from rich.console import Console
    from rich.markup import escape

    from oasst.client import CollectionClient, OasstApiError
    from oasst.client.autoplay import make_users
    from oasst.protocol.collection import TaskRequestType, User

    try:
        requested = TaskRequestType(task_type)
    except ValueError:
        choices = ", ".join(t.value for t in TaskRequestType)
        raise typer.BadParameter(f"unknown task type {task_type!r}; choose one of {choices}") from None

    console = Console()
    try:
        with CollectionClient(server, api_key) as client:
            if auto:
                rng = random.Random(seed)
                players = make_users(users, rng, prefix=user_id or "autoplay")
                summary = run_auto(console, client, players, auto, requested, lang, rng)
                print_summary(console, summary)
                if summary.failed:
                    raise typer.Exit(1)
            else:
                name = user_id or getpass.getuser()
                user = User(id=name, display_name=display_name or name, auth_method="local")
                interactive(console, client, user, requested, lang)
    except httpx.TransportError as error:
        console.print(f"[red]Cannot reach {escape(server)}: {escape(str(error))}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("Interrupted.")
        raise typer.Exit(130) from None
    except OasstApiError as error:
        console.print(
            f"[red]The server refused: {escape(error.message)}[/red] "
            f"(HTTP {error.status}, code {error.error_code})"
        )
        raise typer.Exit(1) from None


def register(console: Console, client: CollectionClient, user: User) -> None:
    """Upsert `user` with the terms of service accepted, as the upstream frontends do."""
    from rich.markup import escape

    from oasst.client import OasstApiError
    from oasst.protocol.collection import CreateFrontendUserRequest

    try:
        client.upsert_user(CreateFrontendUserRequest(**user.model_dump(), tos_acceptance=True))
    except OasstApiError as error:
        # Recording the acceptance needs a trusted key. The server may not require it: register the user
        # without it and let the task request say whether it does. A bad key fails here again.
        if error.status != 403:
            raise
        client.upsert_user(CreateFrontendUserRequest(**user.model_dump()))
        console.print(
            f"[yellow]Terms acceptance not recorded for {escape(user.id)}: {escape(error.message)}[/yellow]"
        )


# --- interactive --------------------------------------------------------------------------------------


class _Quit(Exception):
    pass


class _Skip(Exception):
    pass


def interactive(
    console: Console, client: CollectionClient, user: User, requested: TaskRequestType, lang: str
) -> None:
    """Fetch, show, answer, send; again and again until the person quits or no task is left."""
    from rich.markup import escape

    from oasst.client import OasstApiError
    from oasst.client.autoplay import frontend_message_id

    register(console, client, user)
    console.print(
        f"Hello [bold]{escape(user.display_name)}[/bold]. "
        "Answer [bold]s[/bold] to skip a task, [bold]q[/bold] to quit."
    )
    done = 0
    while True:
        try:
            task = client.fetch_task(requested, user, lang)
        except OasstApiError as error:
            if error.error_code != NO_TASK_AVAILABLE:
                raise
            console.print(f"No task available right now: {escape(error.message)}")
            break
        client.ack_task(task.id, frontend_message_id(task))
        try:
            interaction = read_answer(console, task, user, lang)
        except _Skip:
            client.nack_task(task.id, "skipped", user)
            console.print("[dim]Skipped.[/dim]")
            continue
        except (_Quit, KeyboardInterrupt):
            break
        try:
            client.post_interaction(interaction)
        except OasstApiError as error:
            console.print(f"[red]Not accepted: {escape(error.message)} (code {error.error_code})[/red]")
            continue
        done += 1
        console.print("[green]Thank you![/green]")
    console.print(f"Tasks done: {done}. Bye!")


def ask(console: Console, prompt: str) -> str:
    """One line of input after the plain-text `prompt`; `q` or end of input quits, `s` skips."""
    from rich.markup import escape

    try:
        line = console.input(escape(prompt)).strip()
    except EOFError:
        raise _Quit from None
    if line == "q":
        raise _Quit
    if line == "s":
        raise _Skip
    return line


def show_conversation(console: Console, task: AnyTask) -> None:
    from rich.panel import Panel
    from rich.text import Text

    conversation = getattr(task, "conversation", None)
    for message in conversation.messages if conversation else []:
        role, style = ("Assistant", "cyan") if message.is_assistant else ("Prompter", "magenta")
        console.print(Panel(Text(message.text), title=role, title_align="left", border_style=style))


def read_answer(console: Console, task: AnyTask, user: User, lang: str) -> AnyInteraction:
    """Show `task` and turn what the person types into its interaction."""
    import uuid

    from rich.markup import escape
    from rich.rule import Rule

    from oasst.client import autoplay
    from oasst.protocol.collection import AssistantReplyTask, InitialPromptTask, PrompterReplyTask

    console.print(Rule(task.type.replace("_", " ")))
    show_conversation(console, task)
    if isinstance(task, InitialPromptTask | PrompterReplyTask | AssistantReplyTask):
        if isinstance(task, InitialPromptTask):
            console.print("Write a prompt: a question or instruction for the assistant.")
        elif isinstance(task, AssistantReplyTask):
            console.print("Reply as the [cyan]assistant[/cyan] would.")
        else:
            console.print("Reply as the [magenta]prompter[/magenta]: the user talking to the assistant.")
        hint = getattr(task, "hint", None)
        if hint:
            console.print(f"Hint: {escape(hint)}")
        text = ""
        while not text:
            text = ask(console, "> ")
        return autoplay.reply(task, user, text, str(uuid.uuid4()), lang)
    if isinstance(task, autoplay.RANK_TASK_TYPES):
        return autoplay.rank(task, user, read_ranking(console, task))
    if isinstance(task, autoplay.LABEL_TASK_TYPES):
        return autoplay.label(task, user, read_labels(console, task))
    console.print(f"[yellow]This frontend cannot answer {task.type} tasks.[/yellow]")
    raise _Skip


def read_ranking(console: Console, task: RankTask) -> list[int]:
    """The replies numbered from 1; the answer is their order, best first, sent 0-based."""
    from rich.panel import Panel
    from rich.text import Text

    texts = [message.text for message in task.reply_messages] or task.replies
    for number, text in enumerate(texts, 1):
        console.print(Panel(Text(text), title=f"Reply {number}", title_align="left", border_style="yellow"))
    example = " ".join(str(number) for number in range(1, len(texts) + 1))
    while True:
        line = ask(console, f"Order the replies, best first (e.g. {example}): ")
        try:
            order = [int(part) - 1 for part in line.replace(",", " ").split()]
        except ValueError:
            order = []
        if sorted(order) == list(range(len(texts))):
            return order
        console.print(f"[red]Give each number from 1 to {len(texts)} once.[/red]")


def read_labels(console: Console, task: LabelTask) -> dict[str, float]:
    """Ask each label in turn: yes/no questions and flags as y/n, scales from 1 to 5."""
    from oasst.client import autoplay

    descriptions = {description.name: description for description in task.labels or []}
    mandatory = set(task.mandatory_labels or [])
    console.print("Label the last message. Press Enter to leave an optional label out.")
    values: dict[str, float] = {}
    for name in autoplay.labels_to_answer(task):
        description = descriptions.get(name)
        text = description.display_text if description else name.replace("_", " ").capitalize()
        widget = autoplay.label_widget(task, name)
        while True:
            if widget == "likert":
                line = ask(console, f"{text} [1-5]: ")
                if line in {"1", "2", "3", "4", "5"}:
                    values[name] = (int(line) - 1) / 4
                    break
            else:
                line = ask(console, f"{text}? [y/n]: ").lower()
                if line in {"y", "n", "yes", "no"}:
                    values[name] = 1.0 if line.startswith("y") else 0.0
                    break
            if not line and name not in mandatory:
                break
            console.print("[red]Please answer" + (" (required)." if name in mandatory else ".") + "[/red]")
    return values


# --- automatic ----------------------------------------------------------------------------------------


@dataclass
class Summary:
    """What an automatic run did."""

    done: Counter[str] = field(default_factory=Counter)
    errors: Counter[int] = field(default_factory=Counter)
    stopped: str = ""
    failed: bool = False

    @property
    def total(self) -> int:
        return sum(self.done.values())


def run_auto(
    console: Console,
    client: CollectionClient,
    users: list[User],
    total: int,
    requested: TaskRequestType,
    lang: str,
    rng: random.Random,
) -> Summary:
    """Let `users` take turns at tasks until `total` are done or none of them gets any more work."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    for user in users:
        register(console, client, user)
    summary = Summary()
    idle: set[str] = set()  # got "no task available"; cleared when anyone's work may have made new tasks
    retired: set[str] = set()
    errors_in_a_row: Counter[str] = Counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("Contributing", total=total)
        try:
            while summary.total < total:
                playing = [user for user in users if user.id not in idle | retired]
                if not playing:
                    break
                for user in playing:
                    if summary.total >= total:
                        break
                    outcome = play_one(client, user, requested, lang, rng, summary)
                    if outcome == "done":
                        idle.clear()
                        errors_in_a_row[user.id] = 0
                    elif outcome == "no_work":
                        idle.add(user.id)
                    else:
                        errors_in_a_row[user.id] += 1
                        if errors_in_a_row[user.id] >= MAX_CONSECUTIVE_ERRORS:
                            retired.add(user.id)
                    progress.update(bar, completed=summary.total)
        except KeyboardInterrupt:
            summary.stopped = "interrupted"
            return summary
    if summary.total >= total:
        summary.stopped = f"all {total} tasks done"
    elif len(retired) == len(users):
        summary.stopped = "every contributor kept failing"
        summary.failed = True
    else:
        summary.stopped = "no contributor has any task left"
    return summary


def play_one(
    client: CollectionClient,
    user: User,
    requested: TaskRequestType,
    lang: str,
    rng: random.Random,
    summary: Summary,
) -> str:
    """Fetch, ack and answer one task for `user`: "done", "no_work" or "error"."""
    from oasst.client import OasstApiError
    from oasst.client.autoplay import answer, frontend_message_id

    try:
        task = client.fetch_task(requested, user, lang)
    except OasstApiError as error:
        if error.error_code == NO_TASK_AVAILABLE:
            return "no_work"
        summary.errors[error.error_code] += 1
        return "error"
    try:
        client.ack_task(task.id, frontend_message_id(task))
        client.post_interaction(answer(task, user, rng, lang))
    except (OasstApiError, ValueError) as error:
        summary.errors[error.error_code if isinstance(error, OasstApiError) else 0] += 1
        # Skip the failed task so it does not count against the user's pending tasks.
        with contextlib.suppress(OasstApiError):
            client.nack_task(task.id, "autoplay could not answer", user)
        return "error"
    summary.done[task.type] += 1
    return "done"


def print_summary(console: Console, summary: Summary) -> None:
    from rich.table import Table

    from oasst.protocol.collection import ErrorCode

    done = Table(title="Tasks done")
    done.add_column("type")
    done.add_column("count", justify="right")
    for task_type, count in sorted(summary.done.items()):
        done.add_row(task_type, str(count))
    done.add_row("[bold]total[/bold]", f"[bold]{summary.total}[/bold]")
    console.print(done)
    if summary.errors:
        errors = Table(title="Errors")
        errors.add_column("code", justify="right")
        errors.add_column("name")
        errors.add_column("count", justify="right")
        for code, count in sorted(summary.errors.items()):
            try:
                name = ErrorCode(code).name
            except ValueError:
                name = "?"
            errors.add_row(str(code), name, str(count))
        console.print(errors)
    console.print(f"Stopped: {summary.stopped}.")
