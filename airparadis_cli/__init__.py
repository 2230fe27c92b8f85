"""The `airparadis` command, the composition root above every component.

It sits over the core (`airparadis`) and the components (`model_server`, `training_jobs`,
`dashboard`), which never import it; each image installs it with only its own components.
"""
