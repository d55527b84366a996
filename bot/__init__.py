"""Renkei: a Slack bot for a municipality's home medical and long-term care team."""
