"""Test tiers: tests/unit load no model; tests/integration build tiny models or use the zoo.

torch, transformers, transformer_lens and matplotlib are imported here, before any test runs, because
``pytester.runpytest_inprocess`` restores ``sys.modules`` after each inner run: a heavy module
first imported inside an inner run would be dropped and re-imported later, which native
extensions do not survive.
"""

import matplotlib.backends.backend_agg  # noqa: F401  (report.html's figures, drawn at session end)
import matplotlib.backends.backend_svg  # noqa: F401
import matplotlib.figure  # noqa: F401
import scipy.stats  # noqa: F401
import torch  # noqa: F401
import transformer_lens.model_bridge  # noqa: F401
import transformers  # noqa: F401

pytest_plugins = ["pytester"]
