"""Imports every block's models so that ``Base.metadata`` knows every table (for Alembic).

Add a block's ``models`` module here when the block gets tables.
"""

from jisr.core.audit import models as audit_models
from jisr.core.crypto import models as crypto_models
from jisr.core.federation import models as federation_models
from jisr.credentials import models as credentials_models
from jisr.exchange import models as exchange_models
from jisr.exchange import pubsub_models as exchange_pubsub_models
from jisr.identity import models as identity_models
from jisr.identity.oidc import models as oidc_models
from jisr.services import models as services_models
from jisr.services import registries_models

__all__ = [
    "audit_models",
    "credentials_models",
    "crypto_models",
    "exchange_models",
    "exchange_pubsub_models",
    "federation_models",
    "identity_models",
    "oidc_models",
    "registries_models",
    "services_models",
]
