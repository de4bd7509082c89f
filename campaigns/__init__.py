"""Segments, content, offers and loyalty: the marketer's rules, as pure functions.

Everything here works on plain data (a person's facts, the campaigns configuration) with
no Redis or HTTP inside, so every rule can be tested on its own; the server feeds it the
live profile and stores only what must be counted.
"""
