"""Notifications: what an ``action.completed`` event tells a person, and the chat payloads. Pure.

:mod:`~amtd.notify.notifications` reads the event and confirms it against its SecurityEvent;
:mod:`~amtd.notify.settings` reads the ``amtd-notify`` Secret's values; :mod:`~amtd.notify.payloads`
renders Slack, Teams or generic-webhook bodies. The post itself is :mod:`amtd.edge.notifying`.
"""
