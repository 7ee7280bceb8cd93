"""Workflows: every multi-step job of gridgis written once.

Each workflow takes a :class:`~gridgis.store.Store` and :class:`~gridgis.standards.Settings`
(plus its options), reads the layers it needs, calls the pure analyses, writes through the
store in one atomic step and returns a :class:`JobResult` saying what it wrote. The CLI,
the API's jobs and the demo call these and add only their own input and presentation.
"""

from gridgis.workflows.analyses import audit, coverage, site, site_gates
from gridgis.workflows.base import (
    JobResult,
    MissingLayerError,
    ProgressFactory,
    layers_note,
    no_progress,
    read_present,
    require_layers,
)
from gridgis.workflows.demo import DEMO_STEPS, DemoStep, make_demo_city, run_demo
from gridgis.workflows.diff import GridDiff, compare_plans
from gridgis.workflows.diff import diff as diff_plans
from gridgis.workflows.edits import apply_edit, preview_edit, undo_last
from gridgis.workflows.grids import assign, delineate
from gridgis.workflows.outputs import lookup_sample, make_map
from gridgis.workflows.refresh import refresh
from gridgis.workflows.versions import (
    effective_date,
    grids_as_of,
    history,
    lookup_as_of,
    record_versions,
)

__all__ = [
    "DEMO_STEPS",
    "DemoStep",
    "GridDiff",
    "compare_plans",
    "diff_plans",
    "JobResult",
    "MissingLayerError",
    "ProgressFactory",
    "assign",
    "audit",
    "coverage",
    "delineate",
    "layers_note",
    "lookup_sample",
    "make_demo_city",
    "make_map",
    "no_progress",
    "read_present",
    "record_versions",
    "refresh",
    "apply_edit",
    "preview_edit",
    "undo_last",
    "effective_date",
    "grids_as_of",
    "history",
    "lookup_as_of",
    "require_layers",
    "run_demo",
    "site",
    "site_gates",
]
