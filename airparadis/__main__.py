"""`python -m airparadis`: the command line, kept under the core package's name.

The only module of the core that reaches the composition root; the import contract
(pyproject.toml, `tool.importlinter`) names this one exception.
"""

from airparadis_cli.app import main

main()
