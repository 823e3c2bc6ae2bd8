"""Hash-chained, append-only audit records with signed checkpoints; see ``service``."""

from jisr.core.audit._canonical import (
    GENESIS_HASH,
    ChainReport,
    CheckpointVerifier,
    Finding,
    FindingKind,
    canonical_json,
    format_timestamp,
    record_hash,
)
from jisr.core.audit.models import AuditChain, AuditCheckpoint, AuditRecord
from jisr.core.audit.service import (
    AuditEntry,
    CheckpointSigner,
    append,
    append_many,
    checkpoint,
    export_chain,
    prepare,
    verify_all,
    verify_chain,
    verify_exported,
    write_many,
    write_prepared,
)

__all__ = [
    "GENESIS_HASH",
    "AuditChain",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditRecord",
    "ChainReport",
    "CheckpointSigner",
    "CheckpointVerifier",
    "Finding",
    "FindingKind",
    "append",
    "append_many",
    "canonical_json",
    "checkpoint",
    "export_chain",
    "format_timestamp",
    "prepare",
    "record_hash",
    "verify_all",
    "verify_chain",
    "verify_exported",
    "write_many",
    "write_prepared",
]
