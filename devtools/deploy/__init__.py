"""Deploying a config: one checked plan (``plan``), rendered as ECS task definitions (``ecs``) or Kubernetes
manifests (``kubernetes``) by ``rendering``, and the connection budget the replicas need (``connections``)."""
