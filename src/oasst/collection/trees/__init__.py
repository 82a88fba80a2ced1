"""The tree manager: tree states, task selection pools, reviews, rankings and the prompt lottery."""
