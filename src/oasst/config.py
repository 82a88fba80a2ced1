"""The one settings object: every knob of oasst, read from the environment (prefix OASST_)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PositiveInt, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TEXT_LABELS_PROMPT = [
    "spam",
    "lang_mismatch",
    "quality",
    "creativity",
    "humor",
    "toxicity",
    "violence",
    "not_appropriate",
    "pii",
    "hate_speech",
    "sexual_content",
]
TEXT_LABELS_ASSISTANT = [
    "spam",
    "lang_mismatch",
    "fails_task",
    "quality",
    "helpfulness",
    "creativity",
    "humor",
    "toxicity",
    "violence",
    "not_appropriate",
    "pii",
    "hate_speech",
    "sexual_content",
]


class TreeManagerConfig(BaseModel):
    """The tree manager's knobs, with Open-Assistant's defaults (env `TREE_MANAGER__<NAME>`)."""

    max_active_trees: int = Field(10, ge=0)
    max_initial_prompt_review: int = Field(100, ge=0)
    max_tree_depth: int = Field(3, ge=1)
    max_children_count: int = Field(3, ge=1)
    num_prompter_replies: int = Field(1, ge=1)
    goal_tree_size: int = Field(12, ge=1)
    random_goal_tree_size: bool = False
    min_goal_tree_size: int = Field(5, ge=1)
    num_reviews_initial_prompt: int = Field(3, ge=1)
    num_reviews_reply: int = Field(3, ge=1)
    auto_mod_enabled: bool = True
    auto_mod_max_skip_reply: int = Field(25, ge=1)
    auto_mod_red_flags: int = Field(4, ge=1)
    p_full_labeling_review_prompt: float = Field(1.0, ge=0, le=1)
    p_full_labeling_review_reply_assistant: float = Field(1.0, ge=0, le=1)
    p_full_labeling_review_reply_prompter: float = Field(0.25, ge=0, le=1)
    acceptance_threshold_initial_prompt: float = 0.6
    acceptance_threshold_reply: float = 0.6
    num_required_rankings: int = Field(3, ge=1)
    p_activate_backlog_tree: float = Field(0.1, ge=0, le=1)
    min_active_rankings_per_lang: int = Field(0, ge=0)
    labels_initial_prompt: list[str] = Field(default_factory=lambda: list(TEXT_LABELS_PROMPT))
    labels_assistant_reply: list[str] = Field(default_factory=lambda: list(TEXT_LABELS_ASSISTANT))
    labels_prompter_reply: list[str] = Field(default_factory=lambda: list(TEXT_LABELS_PROMPT))
    mandatory_labels_initial_prompt: list[str] = Field(default_factory=lambda: ["spam"])
    mandatory_labels_assistant_reply: list[str] = Field(default_factory=lambda: ["spam"])
    mandatory_labels_prompter_reply: list[str] = Field(default_factory=lambda: ["spam"])
    rank_prompter_replies: bool = False
    lonely_children_count: int = Field(2, ge=0)
    p_lonely_child_extension: float = Field(0.75, ge=0, le=1)
    recent_tasks_span_sec: int = Field(300, ge=1)
    max_pending_tasks_per_user: int = Field(8, ge=1)
    max_prompt_lottery_waiting: int = Field(250, ge=0)
    init_prompt_disabled_langs: str = ""

    @property
    def init_prompt_disabled_langs_list(self) -> list[str]:
        return [lang.strip() for lang in self.init_prompt_disabled_langs.split(",") if lang.strip()]


OAuthProvider = Literal["discord", "github", "google"]


class OAuthEndpoints(BaseModel):
    """Other endpoints for an OAuth provider (GitHub Enterprise, a test double); unset: the public ones."""

    model_config = ConfigDict(extra="forbid")

    authorize: str | None = None
    token: str | None = None
    userinfo: str | None = None


def _upstream(default: Any, name: str) -> Any:
    """A setting that Open-Assistant also reads: `OASST_<NAME>` or the upstream `<NAME>`."""
    return Field(default, validation_alias=AliasChoices(f"oasst_{name}", name))


def _identities(listed: str) -> list[tuple[str, str]]:
    """(provider, account id) of each `PROVIDER:ACCOUNT_ID` in a comma-separated list."""
    pairs = (entry.strip().partition(":") for entry in listed.split(",") if entry.strip())
    return [(provider.strip(), account_id.strip()) for provider, _, account_id in pairs]


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "oasst"


class Settings(BaseSettings):
    """Everything configurable. Built once by the process entry point and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="OASST_",
        env_nested_delimiter="__",
        case_sensitive=False,
        populate_by_name=True,
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    database_pool_size: int = Field(20, ge=1)
    redis_url: str | None = None
    debug: bool = False
    bootstrap_api_key: str | None = Field(None, min_length=8)
    # Bearer tokens of POST /api/v1/admin/api_client (a JSON list); unlike upstream ("1234"), none by default.
    root_tokens: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("oasst_root_tokens", "root_tokens")
    )
    log_level: str = "info"
    jobs_enabled: bool = True

    rate_limit: bool = _upstream(True, "rate_limit")
    rate_limit_task_user_times: int = _upstream(30, "rate_limit_task_user_times")
    rate_limit_task_user_minutes: int = _upstream(4, "rate_limit_task_user_minutes")
    rate_limit_task_api_times: int = _upstream(10_000, "rate_limit_task_api_times")
    rate_limit_task_api_minutes: int = _upstream(1, "rate_limit_task_api_minutes")
    rate_limit_assistant_user_times: int = _upstream(4, "rate_limit_assistant_user_times")
    rate_limit_assistant_user_minutes: int = _upstream(2, "rate_limit_assistant_user_minutes")
    rate_limit_prompter_user_times: int = _upstream(8, "rate_limit_prompter_user_times")
    rate_limit_prompter_user_minutes: int = _upstream(2, "rate_limit_prompter_user_minutes")

    message_size_limit: int = _upstream(2000, "message_size_limit")
    duplicate_message_filter_window_minutes: int = _upstream(120, "duplicate_message_filter_window_minutes")
    task_validity_minutes: int = _upstream(2880, "task_validity_minutes")
    debug_allow_self_labeling: bool = _upstream(False, "debug_allow_self_labeling")
    debug_allow_self_ranking: bool = _upstream(False, "debug_allow_self_ranking")
    debug_allow_duplicate_tasks: bool = _upstream(False, "debug_allow_duplicate_tasks")
    debug_ignore_tos_acceptance: bool = _upstream(True, "debug_ignore_tos_acceptance")
    enable_prom_metrics: bool = _upstream(True, "enable_prom_metrics")

    # Periodic jobs (minutes, hours for the streak reset), run in the server process when jobs_enabled.
    user_stats_interval_day: PositiveInt = _upstream(5, "user_stats_interval_day")
    user_stats_interval_week: PositiveInt = _upstream(15, "user_stats_interval_week")
    user_stats_interval_month: PositiveInt = _upstream(60, "user_stats_interval_month")
    user_stats_interval_total: PositiveInt = _upstream(240, "user_stats_interval_total")
    user_streak_update_interval: PositiveInt = _upstream(4, "user_streak_update_interval")
    cached_stats_update_interval: PositiveInt = _upstream(60, "cached_stats_update_interval")

    # Inference API (/inference). Without a secret, one is drawn at start: tokens then die with the process.
    allow_debug_auth: bool = _upstream(False, "allow_debug_auth")
    inference_auth_secret: str | None = Field(None, min_length=16)
    auth_access_token_expire_minutes: PositiveInt = _upstream(60, "auth_access_token_expire_minutes")
    auth_refresh_token_expire_minutes: PositiveInt = _upstream(10080, "auth_refresh_token_expire_minutes")
    message_max_length: PositiveInt = _upstream(16_000, "message_max_length")
    chat_max_messages: PositiveInt | None = _upstream(None, "chat_max_messages")
    work_queue_max_size: PositiveInt | None = _upstream(None, "work_queue_max_size")
    assistant_message_timeout: float = _upstream(60.0, "assistant_message_timeout")  # seconds; <= 0: never
    pending_event_interval: float = _upstream(1.0, "pending_event_interval")  # seconds
    worker_ping_interval: float = _upstream(3.0, "worker_ping_interval")  # seconds
    message_queue_expire: float = _upstream(60.0, "message_queue_expire")  # seconds
    # The model worker `oasst serve` starts as its child (`--no-worker` or false: none). Its backend is
    # `transformers` with the bundled SmolLM2 or the folder in embedded_worker_model; `fake` echoes (demos).
    embedded_worker: bool = True
    embedded_worker_backend: Literal["transformers", "fake"] = "transformers"
    embedded_worker_model: str | None = None
    embedded_worker_threads: PositiveInt = 1  # torch threads; more only when cores are idle beside the server
    model_cache_dir: Path | None = (
        None  # models converted for the transformers backend; None: DATA_DIR/models
    )
    # Local accounts: sign-in with a password (`oasst accounts create`); self sign-up only when allowed.
    local_auth: bool = True
    allow_registration: bool = False
    # `oasst serve --only NAME`: one API alone (the inference API then at the root, as upstream serves it).
    serve_only: Literal["collection", "inference"] | None = None

    # Course gateway (/api/accounts, /api/users, /api/chats). Without an admin token the admin routes refuse.
    gateway_admin_token: str | None = Field(
        None, min_length=16, validation_alias=AliasChoices("oasst_gateway_admin_token", "parrot_admin_token")
    )
    gateway_default_budget: int = Field(10_000, ge=0)  # tokens, Parrot's DEFAULT_BUDGET
    gateway_default_model: str | None = None  # None: the first model (by name) the workers serve
    gateway_default_max_tokens: int = Field(
        1024, ge=1, le=65536
    )  # reserved and allowed when max_tokens is null
    gateway_soft_limit: float = Field(0.75, ge=0, le=1)  # share of the budget that sets `over_soft_limit`
    gateway_reservation_ttl: float = Field(600.0, gt=0)  # seconds before a crashed call's reservation lapses
    gateway_max_body_bytes: PositiveInt = 1_000_000

    # Web UI (/). Without a secret, one is drawn once and kept in DATA_DIR/web_secret, so sessions survive
    # restarts; several server processes need the same OASST_WEB_SESSION_SECRET.
    web_session_secret: str | None = Field(None, min_length=32)
    web_session_days: PositiveInt = 14
    web_signin_attempts: PositiveInt = 10  # per client address ...
    web_signin_window_minutes: PositiveInt = 5  # ... in this many minutes
    # OAuth sign-in on the web UI: a provider is offered when its client id is set.
    auth_discord_client_id: str = _upstream("", "auth_discord_client_id")
    auth_discord_client_secret: str = _upstream("", "auth_discord_client_secret")
    auth_github_client_id: str = _upstream("", "auth_github_client_id")
    auth_github_client_secret: str = _upstream("", "auth_github_client_secret")
    auth_google_client_id: str = _upstream("", "auth_google_client_id")
    auth_google_client_secret: str = _upstream("", "auth_google_client_secret")
    oauth_endpoints: dict[OAuthProvider, OAuthEndpoints] = Field(default_factory=dict)
    # People of those providers who are admins or moderators of the web UI at least, as upstream's website
    # lists them: `PROVIDER:ACCOUNT_ID`, comma-separated (`github:583231,discord:80351110224678912`).
    admin_users: str = _upstream("", "admin_users")
    moderator_users: str = _upstream("", "moderator_users")

    tree_manager: TreeManagerConfig = Field(
        default_factory=TreeManagerConfig,
        validation_alias=AliasChoices("oasst_tree_manager", "tree_manager"),
    )

    @field_validator("database_url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("OASST_DATABASE_URL must be sqlite:///PATH or postgresql+psycopg://...")
        return value

    @field_validator("admin_users", "moderator_users")
    @classmethod
    def _oauth_identities(cls, value: str) -> str:
        for provider, account_id in _identities(value):
            if provider not in get_args(OAuthProvider) or not 0 < len(account_id) <= 128:
                raise ValueError(
                    f"{provider}:{account_id} is not PROVIDER:ACCOUNT_ID with PROVIDER one of "
                    + ", ".join(get_args(OAuthProvider))
                )
        return value

    @property
    def web_roles(self) -> dict[tuple[str, str], str]:
        """The role that each (provider, account id) of `admin_users` and `moderator_users` has at least."""
        roles = {identity: "moderator" for identity in _identities(self.moderator_users)}
        return roles | {identity: "admin" for identity in _identities(self.admin_users)}

    @property
    def models_dir(self) -> Path:
        """Where the transformers backend keeps converted models (the bundled SmolLM2)."""
        return self.model_cache_dir or self.data_dir / "models"

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'oasst.db'}"
