"""Mail: messages from templates, sent by a Celery task after commit.

``saas.mail.messages`` builds a message (plain text and HTML) from the
templates in ``saas/templates/mail``; ``saas.mail.outbox`` seals it with the
master key and hands it to the ``workers.mail.send`` task once the request's
transaction commits; the task delivers it through the transport the settings
choose (``saas.mail.transports``): SMTP (``SMTP_URL``), a folder of ``.eml``
files (``saas.mail_dir``, development), or nowhere (a warning per message).
"""

from __future__ import annotations

import logging

from saas.mail.transports import transport_kind

log = logging.getLogger(__name__)


def includeme(config) -> None:
    kind = transport_kind(config.registry.settings)
    config.registry["saas.mail_transport_kind"] = kind
    if kind == "none":
        log.warning("mail: no transport configured (set SMTP_URL); "
                    "verification and reset mails will not be sent")
