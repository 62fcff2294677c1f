"""Target nomad: one Nomad job per environment, submitted by the provider or by dockyard."""
