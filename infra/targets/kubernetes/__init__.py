"""Target kubernetes: Deployments on a live cluster, or manifests rendered for GitOps."""
