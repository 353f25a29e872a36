"""The Kubernetes boundary: the API client wrapper (the only module that talks to the API server),
Event manifests, and writes deferred until after a reply.
"""
