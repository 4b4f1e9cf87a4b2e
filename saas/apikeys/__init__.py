"""Tenant API keys for the management API."""
