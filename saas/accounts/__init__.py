"""Dashboard accounts beyond the password: mail links, second factors (docs/accounts.md)."""
