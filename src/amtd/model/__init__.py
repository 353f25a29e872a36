"""The data every stage shares: targets, rules, actions, policies, SecurityEvents and their status,
the action-event contract, timestamps. Pure: no I/O.
"""
