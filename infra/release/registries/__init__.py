"""Image registries: the OCI client, presence checks and release tags, local builds, image cleanup."""
