"""The built-in types and the test handlers, for workers in tests."""

import tests.apps.ordering
import tests.apps.ticks  # noqa: F401
import zkq.worker.builtin  # noqa: F401
