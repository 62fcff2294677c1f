"""Release stores: where an environment's releases, labels and hold are kept (SSM or files)."""
