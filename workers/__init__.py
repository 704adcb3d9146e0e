"""The Celery side of Macha: the app, its queues and routes, and thin tasks."""
