"""Periodic work of the data-collection backend: leaderboards, streaks, cached stats, clean-up."""
