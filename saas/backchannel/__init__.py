"""Back-channel calls from Bridgekeeper to tenant endpoints (docs/protocol.md §5.2).

``addresses`` vets endpoint URLs against SSRF (scheme, host, every resolved
address); ``client`` makes the one bounded, redirect-free request and turns the
tenant's answer into a verdict.
"""
