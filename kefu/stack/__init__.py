"""Running kefu: the process runner, the `kefu` CLI, the front, the demo orders, logs."""
