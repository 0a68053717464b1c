"""flowservice: a self-hosted implementation of Adobe Experience Platform's Flow Service API."""

import os as _os

# pyarrow's allocator (mimalloc) asks the kernel for transparent huge pages, each zeroed whole (2 MiB)
# when first touched. A run allocates and frees hundreds of MiB of short-lived Arrow buffers, so that
# zeroing took ~20% of the ingestion benchmark's CPU (BENCHMARKS.md). Read by mimalloc when pyarrow
# loads, hence here, before any module imports pyarrow; set the variable yourself to choose otherwise.
_os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")

__version__ = "0.1.0"
