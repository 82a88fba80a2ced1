"""The web UI: server-rendered pages (Jinja2 and htmx) on the collection services, mounted at `/`."""
