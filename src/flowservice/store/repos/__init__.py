"""Data functions per aggregate; they take a session and never commit (services own transactions)."""
