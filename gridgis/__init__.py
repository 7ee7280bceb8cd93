"""gridgis: grid-management GIS for Chinese urban community governance (城乡社区网格化服务管理).

Layers in, analyses as pure functions of GeoDataFrames plus :class:`~gridgis.standards.Settings`,
layers out. The faces (CLI, maps, HTTP API) call the library; the library never prints.
"""

import logging

from gridgis.standards import DEFAULT, Settings

# The library logs and never prints; the faces (CLI, server) choose the handlers.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"
__all__ = ["Settings", "DEFAULT", "__version__"]
