"""Back-channel calls from Bridgekeeper to tenant endpoints (DESIGN §5.2).

``addresses`` vets endpoint URLs against SSRF (scheme, host, every resolved
address); ``client`` makes the one bounded, redirect-free request and turns the
tenant's answer into a verdict.
"""
