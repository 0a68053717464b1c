"""Pure domain logic: no FastAPI, SQLAlchemy or pyarrow imports (checked by tests/test_layers.py)."""
