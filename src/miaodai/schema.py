"""Imports every model module so ``Base.metadata`` holds the whole schema (for Alembic and tests)."""

from miaodai.backoffice import approval_models as _backoffice  # noqa: F401
from miaodai.core import audit as _audit  # noqa: F401
from miaodai.core import idempotency_models as _idempotency  # noqa: F401
from miaodai.core import rollups as _rollups  # noqa: F401
from miaodai.core.db import Base
from miaodai.credit import models as _credit  # noqa: F401
from miaodai.identity import models as _identity  # noqa: F401
from miaodai.ledger import models as _ledger  # noqa: F401
from miaodai.loans import models as _loans  # noqa: F401
from miaodai.payments import models as _payments  # noqa: F401
from miaodai.sandbox import models as _sandbox  # noqa: F401

metadata = Base.metadata
