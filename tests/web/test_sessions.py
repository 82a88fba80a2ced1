"""The signed session cookie: a round trip, and nothing accepted that this server did not sign in time."""

from __future__ import annotations

from pathlib import Path

from oasst.config import Settings
from oasst.web.sessions import COOKIE, SessionCodec, SignedIn, WebSession, load_secret, read_cookie

SECRET = "s" * 40


def test_a_session_round_trips_through_its_cookie() -> None:
    codec = SessionCodec(SECRET, max_age_seconds=60)
    session = WebSession(user=SignedIn("local", "1234", 'Ada "<b>"', "admin"), lang="de")
    loaded = codec.loads(codec.dumps(session))
    assert loaded is not None
    assert (loaded.user, loaded.lang, loaded.csrf) == (session.user, "de", session.csrf)
    assert read_cookie(f"other=1; {COOKIE}={codec.dumps(session)}") == codec.dumps(session)


def test_forged_expired_and_foreign_cookies_are_no_session() -> None:
    codec = SessionCodec(SECRET, max_age_seconds=60)
    value = codec.dumps(WebSession(user=SignedIn("dev", "eve", "eve", "admin")))
    payload, signature = value.rsplit(".", 1)
    assert codec.loads(f"{payload}x.{signature}") is None
    assert codec.loads(value.replace(".", "")) is None
    assert SessionCodec("t" * 40, 60).loads(value) is None
    assert (
        SessionCodec(SECRET, max_age_seconds=-1).loads(SessionCodec(SECRET, -1).dumps(WebSession())) is None
    )
    assert codec.loads("") is None and read_cookie('bad"cookie') is None


def test_the_secret_is_drawn_once_per_data_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    first = load_secret(settings)
    assert len(first) >= 32 and load_secret(settings) == first
    assert (tmp_path / "web_secret").stat().st_mode & 0o777 == 0o600
    configured = Settings(_env_file=None, data_dir=tmp_path, web_session_secret=SECRET)  # type: ignore[call-arg]
    assert load_secret(configured) == SECRET
