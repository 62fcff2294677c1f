"""The `dockyard` command: promote, roll back and inspect releases through the Automation API."""
