"""Statistics: system and tree counts, cached stats, leaderboards with levels and ranks, the trollboard."""
