"""The annual business plan (年間事業計画, handbook item H): tasks under the
items A–H, the completion log, and (to come) indicators and the digest."""
