# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the browser tests: the integration tests' fixtures (throwaway
PostgreSQL, PKI, collector processes; see tests/integration/conftest.py),
plus helpers of tests/integration (vigiltest, apitest)."""

import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_it = os.path.join(_here, "..", "integration")
sys.path.insert(0, _it)

_spec = importlib.util.spec_from_file_location("vigil_it_conftest",
                                               os.path.join(_it, "conftest.py"))
_it_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_it_conftest)
globals().update({k: v for k, v in vars(_it_conftest).items() if not k.startswith("__")})
