"""The docs tests render the chart with the deployment tests' helm."""

from tests.k8s.conftest import tools  # noqa: F401 (the fixture: helm and kubectl from .tools/bin)
