"""`oasst export` and `oasst import`: OASST jsonl files out of and into the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


@contextmanager
def _database_errors(console: Console) -> Iterator[None]:
    """A database that refuses (unreachable, not migrated, ...) ends the command with its message."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        console.print(f"database error: {reason}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _check(parse: Any, value: Any, option: str) -> Any:
    """`parse(value)`, its ValueError shown as a usage error of `option`."""
    try:
        return parse(value)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=f"'{option}'") from None


class _ExportBar:
    """Trees (or messages) done, on stderr, so that stdout can carry the export."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, total: int, unit: str) -> None:
        self.task = self.progress.add_task(f"exporting {unit}", total=total)

    def advance(self, done: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, done)

    def warn(self, message: str) -> None:
        self.progress.console.print(f"warning: {message}", markup=False, highlight=False)


def export(
    export_file: str | None = typer.Option(
        None,
        "--export-file",
        metavar="PATH",
        help="File to write; gzip-compressed when the name contains .gz. Default: standard output.",
    ),
    include_deleted: bool = typer.Option(False, "--include-deleted", help="Also export deleted messages."),
    deleted_only: bool = typer.Option(
        False, "--deleted-only", help="Only deleted messages (implies --include-deleted), as a message list."
    ),
    include_spam: bool = typer.Option(
        False,
        "--include-spam",
        help="Also export unreviewed and rejected messages (by default only accepted ones go out).",
    ),
    spam_only: bool = typer.Option(
        False, "--spam-only", help="Only rejected messages (review_result false), as a message list."
    ),
    include_synthetic: bool = typer.Option(
        False,
        "--include-synthetic",
        help="Also export trees with synthetic (model-written, imported) messages, left out by default.",
    ),
    synthetic_only: bool = typer.Option(
        False, "--synthetic-only", help="Only trees that contain synthetic messages, as a message list."
    ),
    user: str | None = typer.Option(
        None,
        "--user",
        metavar="UUID",
        help="Only the messages of this user (the backend's user id), as a message list. Not with --state.",
    ),
    state: str | None = typer.Option(
        None,
        "--state",
        help="Tree state to export: all, or prompt_lottery_waiting, growing, ranking, ready_for_export, "
        "aborted_low_grade, halted_by_moderator, backlog_ranking, ... (default: ready_for_export)",
    ),
    lang: str | None = typer.Option(
        None,
        "--lang",
        help="Only trees whose prompt is in this language (with --user: messages), e.g. en, pt-BR.",
    ),
    prompts_only: bool = typer.Option(
        False, "--prompts-only", help="Only the prompts: trees without replies."
    ),
    export_labels: bool = typer.Option(
        False, "--export-labels", help="Add each message's labels: the mean value and count of each label."
    ),
    export_events: bool = typer.Option(
        False,
        "--export-events",
        help="Add each message's events: emojis, ratings, and rankings of its replies.",
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, metavar="N", help="At most N trees (with --user: N messages)."
    ),
    anonymizer_seed: int | None = typer.Option(
        None,
        "--anonymizer-seed",
        metavar="SEED",
        help="Replace every message, user and tree id with the sha256 of 'collection:id' followed by SEED.",
    ),
    created_from: str | None = typer.Option(
        None,
        "--from",
        metavar="DATE",
        help="Only trees whose prompt was written at or after DATE (ISO date or datetime, UTC by default).",
    ),
    created_to: str | None = typer.Option(
        None, "--to", metavar="DATE", help="Only trees whose prompt was written before DATE."
    ),
) -> None:
    """Export message trees as OASST jsonl, the format of the oasst1 and oasst2 datasets.

    By default: every ready_for_export tree without synthetic messages, with its accepted, live messages.

    Null fields are left out. The export streams: memory stays flat however big the database.
    """
    import gzip
    import os
    import sys
    import tempfile

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy.engine import make_url

    from oasst.collection.export import service
    from oasst.config import Settings

    if user is not None and state is not None:
        raise typer.BadParameter(
            "cannot be combined with --user (a user's messages come from any tree)", param_hint="'--state'"
        )
    if export_file is not None and not Path(export_file).parent.is_dir():
        raise typer.BadParameter(f"no directory {Path(export_file).parent}", param_hint="'--export-file'")
    options = service.ExportOptions.from_flags(
        include_deleted=include_deleted,
        deleted_only=deleted_only,
        include_spam=include_spam,
        spam_only=spam_only,
        include_synthetic=include_synthetic,
        synthetic_only=synthetic_only,
        user_id=_check(service.parse_user_id, user, "--user"),
        state=_check(service.parse_state, state or "ready_for_export", "--state"),
        lang=_check(service.parse_lang, lang, "--lang"),
        prompts_only=prompts_only,
        labels=export_labels,
        events=export_events,
        limit=limit,
        anonymizer_seed=anonymizer_seed,
        created_from=_check(service.parse_date, created_from, "--from"),
        created_to=_check(service.parse_date, created_to, "--to"),
    )
    settings = Settings()
    console = Console(stderr=True)
    database = make_url(settings.effective_database_url)
    if database.get_backend_name() == "sqlite" and not Path(database.database or "").exists():
        console.print(f"no database at {database.database}: nothing to export", markup=False, highlight=False)
        raise typer.Exit(1)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with _database_errors(console), Progress(*columns, console=console) as progress:
        bar = _ExportBar(progress)
        if export_file is None:
            summary = service.export(settings.effective_database_url, options, sys.stdout, bar)
            sys.stdout.flush()
        else:
            # Written next to the target and renamed at the end: a failed export leaves no half file.
            target = Path(export_file)
            fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
            os.close(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(partial, 0o666 & ~umask)  # the permissions of a file opened for writing, not mkstemp's
            try:
                if ".gz" in target.name:
                    with gzip.open(partial, "wt", encoding="utf-8", compresslevel=6) as out:
                        summary = service.export(settings.effective_database_url, options, out, bar)
                else:
                    with open(partial, "w", encoding="utf-8", buffering=1 << 20) as out:
                        summary = service.export(settings.effective_database_url, options, out, bar)
                os.replace(partial, target)
            finally:
                Path(partial).unlink(missing_ok=True)
    what = (
        f"{summary.messages} messages"
        if options.as_messages
        else f"{summary.trees} trees ({summary.messages} messages)"
    )
    skipped = f"; {summary.skipped} trees skipped (prompt filtered out)" if summary.skipped else ""
    console.print(
        f"exported {what} to {export_file or 'standard output'}{skipped}", markup=False, highlight=False
    )


class _ImportBar:
    """Bytes read of each file and trees imported so far, on stderr; errors print above the bar."""

    def __init__(self, progress: Progress, console: Console) -> None:
        self.progress = progress
        self.console = console
        self.task: TaskID | None = None

    def start_file(self, path: Path, size: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total)
        self.task = self.progress.add_task(path.name, total=size, trees=0)

    def advance(self, position: int, trees: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=position, trees=trees)

    def error(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


def import_(
    files: list[Path] = typer.Argument(
        ...,
        metavar="FILE",
        exists=True,
        dir_okay=False,
        readable=True,
        help="OASST .jsonl or .jsonl.gz files.",
    ),
    origin: str | None = typer.Option(
        None, "--origin", help="Origin recorded on each imported tree (default: the file's name)."
    ),
    model_name: str | None = typer.Option(
        None, "--model-name", help="Model name given to messages that carry none."
    ),
    state: str = typer.Option(
        "file",
        "--state",
        help="Where trees land: file (ready_for_export if the file says so, else backlog_ranking), "
        "ready_for_export, or backlog_ranking.",
    ),
    num_activate: int = typer.Option(
        0,
        "--num-activate",
        min=0,
        metavar="N",
        help="Put the first N backlog trees in ranking (active) instead.",
    ),
    max_count: int | None = typer.Option(
        None, "--max-count", min=1, metavar="N", help="Import at most N trees, then stop."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read and store everything, then roll it all back."
    ),
) -> None:
    """Import OASST jsonl files: our exports, and the oasst1/oasst2 layouts (nested trees or flat rows).

    Messages keep their ids, texts, ranks, labels, emojis and events; authors become import-client users.

    Trees already in the database are skipped: importing a file twice changes nothing.

    A malformed line is reported as FILE:LINE and its tree is left out; the exit code is then 1.
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    from oasst.collection.export import service
    from oasst.config import Settings
    from oasst.db.migrations import upgrade

    if state not in service.IMPORT_STATES:
        choices = ", ".join(service.IMPORT_STATES)
        raise typer.BadParameter(f"unknown state {state!r}; choose one of: {choices}", param_hint="'--state'")
    options = service.ImportOptions(
        origin=origin,
        model_name=model_name,
        state=state,
        num_activate=num_activate,
        max_count=max_count,
        dry_run=dry_run,
    )
    settings = Settings()
    upgrade(settings.effective_database_url)
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[trees]} trees"),
        TimeElapsedColumn(),
    )
    with _database_errors(console), Progress(*columns, console=console) as progress:
        summary = service.import_files(
            settings.effective_database_url, files, options, _ImportBar(progress, console)
        )
    parts = [f"imported {summary.trees} trees ({summary.messages} messages)"]
    if summary.skipped:
        parts.append(f"{summary.skipped} already there")
    if summary.failed:
        parts.append(f"{summary.failed} failed")
    rolled_back = " (dry run: rolled back)" if dry_run else ""
    console.print("; ".join(parts) + rolled_back, markup=False, highlight=False)
    if summary.failed:
        raise typer.Exit(1)
