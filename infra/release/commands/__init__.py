"""The dockyard command's operations: one module per verb (promote, rollback, abort, branch, status, build, demo)."""
