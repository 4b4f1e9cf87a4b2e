"""End users of tenants' apps."""
