"""Export of message trees to OASST jsonl (the oasst_data format) and import of such files."""
