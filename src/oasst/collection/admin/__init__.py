"""Moderation and administration: API clients, settings, purges, flagged messages, user merges."""
