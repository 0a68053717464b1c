"""The data plane: copy files to staging, promote them into Parquet batches, commit them to the lake.

Engine modules know Arrow, files and the lake; they know nothing of runs, tenants' databases or
HTTP. `services/execution.py` drives them and records what they report.
"""
