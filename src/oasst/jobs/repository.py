"""Statements of the clean-up job: expired tasks, waiting prompts of disabled or deleted users."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oasst.db.models import Message, MessageTreeState, Task, User
from oasst.protocol.collection import TreeState


async def delete_expired_tasks(session: AsyncSession, now: datetime) -> int:
    """Delete the tasks that expired unanswered; returns how many."""
    result = await session.execute(delete(Task).where(Task.expiry_date < now, Task.done.is_(False)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def halt_prompts_of_inactive_users(session: AsyncSession) -> int:
    """Halt trees waiting in the prompt lottery whose authors are disabled or deleted; returns how many."""
    inactive_roots = (
        select(Message.id)
        .join(User, User.id == Message.user_id)
        .where(Message.parent_id.is_(None), or_(User.enabled.is_(False), User.deleted.is_(True)))
    )
    result = await session.execute(
        update(MessageTreeState)
        .where(
            MessageTreeState.state == TreeState.prompt_lottery_waiting,
            MessageTreeState.message_tree_id.in_(inactive_roots),
        )
        .values(state=TreeState.halted_by_moderator, active=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
