"""Tasks: hand-out, ack, nack and interactions of the Open-Assistant task protocol."""
