"""The data bus (DESIGN.md "The data bus"): committed tables at a local path or ``s3://`` URI."""

from relforge.bus._bus import DataBus, ShardedWriter
from relforge.bus._contracts import CONTRACTS, Contract, contract_for
from relforge.bus._fs import StorageError, filesystem_for, is_s3
from relforge.bus._manifest import Manifest, fingerprint

__all__ = [
    "CONTRACTS",
    "Contract",
    "DataBus",
    "Manifest",
    "ShardedWriter",
    "StorageError",
    "contract_for",
    "filesystem_for",
    "fingerprint",
    "is_s3",
]
