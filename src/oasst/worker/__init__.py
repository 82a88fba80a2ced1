"""The model worker: connects out to the server's websocket and streams a backend's tokens back."""
