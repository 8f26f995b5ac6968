"""jobmesh: a client for the jobmesh broker's HTTP API, and the handler end
of ``jobmesh-worker --serve``. Standard library only."""

from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all
from .serve import Job, serve

__version__ = "0.1.0"
__all__ = ["Job", "serve", "__version__"] + list(_errors_all)

try:  # the HTTP clients (absent only while this package is being split)
    from .client import Client  # noqa: F401
    from .aio import AsyncClient  # noqa: F401
    __all__ += ["Client", "AsyncClient"]
except ImportError:  # pragma: no cover
    pass
