"""The tenant dashboard: server-rendered pages, sessions, CSRF on every form."""
