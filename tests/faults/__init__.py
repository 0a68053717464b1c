"""Fault injection: the database restarting, the S3 server vanishing and the lake's disk filling up,
each in the middle of real runs (issue "Hardening", item 7; results in RELIABILITY.md)."""
