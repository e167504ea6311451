"""Hook specifications: the whole contract between alignbench and its plugins.

A plugin is a module that a package lists under the ``alignbench`` entry-point group and that
implements one or more of these hooks with ``@alignbench.hookimpl``. Each hook receives a
``register`` callable; call it once per component::

    @alignbench.hookimpl
    def alignbench_register_aligners(register):
        register("cca", "my_package.cca:CCAAligner", description="Canonical correlation analysis")

The target is a ``"module:attribute"`` string, imported only when the component is used, so that
``alignbench --help`` and ``alignbench list`` never pay for heavy imports (torch, models).

What a registration must be (alignbench.registry checks it; a rejected one is recorded as a failure
of the plugin that made it, and the plugin's other registrations go on):

- the name matches ``[a-z0-9][a-z0-9._-]*`` (names become file names);
- the class subclasses the kind's interface (Aligner, Dataset, Encoder, Metric, Perturbation),
  implements its abstract methods and has ``name`` equal to the registered name (a class is checked
  when registered, a ``"module:Class"`` target when first loaded);
- the name is not taken: hooks run built-ins first (entry points under ``alignbench_plugins``), then
  the other distributions by name, and the first registration of a name wins.
"""

from __future__ import annotations

import pluggy

PROJECT = "alignbench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def alignbench_register_aligners(register):
    """Register Aligner classes: ``register(name, "module:Class", description=...)``."""


@hookspec
def alignbench_register_datasets(register):
    """Register Dataset classes: ``register(name, "module:Class", description=...)``."""


@hookspec
def alignbench_register_encoders(register):
    """Register Encoder classes: ``register(name, "module:Class", description=...)``."""


@hookspec
def alignbench_register_metrics(register):
    """Register Metric classes: ``register(name, "module:Class", description=...)``."""


@hookspec
def alignbench_register_perturbations(register):
    """Register Perturbation classes (robustness suite): ``register(name, "module:Class", description=...)``."""
