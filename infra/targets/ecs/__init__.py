"""Target ecs: ECS Fargate services behind a load balancer (config, program, rollout)."""
