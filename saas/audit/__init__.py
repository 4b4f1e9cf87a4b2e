"""Audit events: recorded in the transaction of the change they describe."""
