"""Messages: reading single messages, listings, threads and trees; emoji reactions."""
