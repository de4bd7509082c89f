"""Live state in Redis: visitors' behaviour, profiles and the catalog.

Shared by the server (which reads and writes it per request) and the offline `load` and
`export` jobs, so a backfill goes through exactly the code path live events take.
"""
