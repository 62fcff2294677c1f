"""What a promotion brings and when it may happen: changelogs, freeze windows, notifications, soak-gated
auto-promotion and delivery metrics, all from the release history the stores already keep."""
