"""Generated test data: files are made by scripts here, into temporary folders, never committed."""
