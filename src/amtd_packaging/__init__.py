"""Production packaging behind `make deploy`: stage one function with the shared core and pinned
requirements for Knative func.
"""
