"""The prediction service: FastAPI app, deployment router, API keys and Prometheus metrics; never imports torch."""
