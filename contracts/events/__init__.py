"""Payload schemas of every published event, one module per source service.

Each is registered with ``@event(source, type, version)``; see contracts/envelope.py.
"""
