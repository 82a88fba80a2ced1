"""Every table of oasst, imported here so that metadata and Alembic see them all."""

from oasst.db.models.account import LocalAccount
from oasst.db.models.api_client import ApiClient
from oasst.db.models.gateway import GatewayAccount, GatewayCharge, GatewayChat, GatewayMessage, GatewayUser
from oasst.db.models.inference import (
    Chat,
    ChatMessage,
    ChatReport,
    InferenceUser,
    MessageEvaluation,
    RefreshToken,
    Worker,
)
from oasst.db.models.journal import Journal
from oasst.db.models.message import (
    FlaggedMessage,
    Message,
    MessageEmoji,
    MessageReaction,
    MessageRevision,
    TextLabels,
)
from oasst.db.models.oauth import OAuthAccount
from oasst.db.models.stats import CachedStats, TrollStats, UserStats
from oasst.db.models.task import Task
from oasst.db.models.tree import MessageTreeState
from oasst.db.models.user import User

__all__ = [
    "ApiClient",
    "CachedStats",
    "Chat",
    "ChatMessage",
    "ChatReport",
    "FlaggedMessage",
    "GatewayAccount",
    "GatewayCharge",
    "GatewayChat",
    "GatewayMessage",
    "GatewayUser",
    "InferenceUser",
    "Journal",
    "LocalAccount",
    "Message",
    "MessageEmoji",
    "MessageEvaluation",
    "MessageReaction",
    "MessageRevision",
    "MessageTreeState",
    "OAuthAccount",
    "RefreshToken",
    "Task",
    "TextLabels",
    "TrollStats",
    "User",
    "UserStats",
    "Worker",
]
