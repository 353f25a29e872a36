"""Local Knative Eventing: Brokers, Triggers, deliveries and the sources, driven by the committed
manifests.
"""
