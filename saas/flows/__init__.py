"""Login flows: redirect custom auth, custom tokens, back-channel logins."""
