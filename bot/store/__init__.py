"""The record: SQLModel tables, sessions, and the queries commands share."""
