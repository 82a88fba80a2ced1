"""System statistics: counts over messages and trees for /stats and the metrics scrape."""
