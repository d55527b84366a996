"""Liaison notes (連絡票): the rules for writing, reading and acknowledging
them, and their announcement in the care team's channel."""
