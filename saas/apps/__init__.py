"""Apps: settings, secrets and signing keys."""
