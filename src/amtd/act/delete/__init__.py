"""The ``delete`` action: that incarnation of the pod is deleted; its workload replaces it."""
