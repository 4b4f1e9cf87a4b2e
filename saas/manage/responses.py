"""Headers the management API's answers share.

Apps, secrets and webhooks all answer with secrets or their metadata, so the
rule that keeps those answers out of caches is here rather than in one view.
"""

from __future__ import annotations


def no_store(request) -> None:
    request.response.headers["Cache-Control"] = "no-store"
    request.response.headers["Pragma"] = "no-cache"
