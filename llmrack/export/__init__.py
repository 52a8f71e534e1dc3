"""Exports of the service for other platforms (Kubernetes: Helm values and manifests)."""
