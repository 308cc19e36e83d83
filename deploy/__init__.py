"""Running blazeasgi behind a load balancer: nginx config, rolling restart harness."""
