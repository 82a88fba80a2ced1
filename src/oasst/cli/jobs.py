"""`oasst jobs`: list the periodic jobs and run one now."""

from __future__ import annotations

import typer

app = typer.Typer(help="Periodic jobs (leaderboards, streaks, cached stats, clean-up).", no_args_is_help=True)


@app.command("list")
def list_jobs() -> None:
    """Show every job with its interval under the current settings."""
    from oasst.config import Settings
    from oasst.jobs.jobs import JOBS

    settings = Settings()
    for job in JOBS.values():
        minutes = int(job.interval(settings).total_seconds() // 60)
        typer.echo(f"{job.name:<20} every {minutes:>4} min  {job.description}")


@app.command()
def run(name: str = typer.Argument(..., help="The job to run, as `oasst jobs list` names it.")) -> None:
    """Run one job now, unless another process is running it."""
    from oasst.config import Settings
    from oasst.db.migrations import upgrade
    from oasst.jobs.jobs import JOBS, run_now

    if name not in JOBS:
        raise typer.BadParameter(f"unknown job {name!r}; one of: {', '.join(JOBS)}", param_hint="NAME")
    settings = Settings()
    upgrade(settings.effective_database_url)
    result = run_now(settings, name)
    typer.echo(f"{result.name}: {result.summary}")
