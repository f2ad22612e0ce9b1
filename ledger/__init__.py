"""The signing ledger (使用登记台账): hash-chained, Merkle-provable (RFC 6962), signed C2SP checkpoints.

Pure core: :mod:`ledger._merkle` (tree, proofs, verifiers) and :mod:`ledger._entry` (canonical encoding).
"""

from ledger._audit import AuditProblem, AuditReport
from ledger._config import key_file_signer, log_key_path, origin_for, publish_vkey, vkey_path
from ledger._entry import FINAL_DECISION_STATUSES, DecisionStatus, EntryFields, EntryKind, commit_personal
from ledger._export import export_ledger, verify_export
from ledger._merkle import ProofError, verify_consistency, verify_inclusion
from ledger._note import (
    CallableSigner,
    Checkpoint,
    KeyFileSigner,
    NoteSigner,
    NoteVerifier,
    Receipt,
    sign_note,
    verify_checkpoint,
    verify_receipt,
    vkey_for,
)
from ledger._service import Ledger, LedgerEntry, StampFacts, UsageRow, entry_indices_by_key, stamp_facts
from ledger._stamps import RENEWAL, STAMP, CheckpointStamp, renewal_imprint, stamp_imprint

__all__ = [
    "StampFacts",
    "stamp_facts",
    "entry_indices_by_key",
    "AuditProblem",
    "AuditReport",
    "CallableSigner",
    "Checkpoint",
    "CheckpointStamp",
    "RENEWAL",
    "STAMP",
    "DecisionStatus",
    "FINAL_DECISION_STATUSES",
    "EntryFields",
    "EntryKind",
    "KeyFileSigner",
    "Ledger",
    "LedgerEntry",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "Receipt",
    "UsageRow",
    "commit_personal",
    "sign_note",
    "key_file_signer",
    "log_key_path",
    "origin_for",
    "publish_vkey",
    "renewal_imprint",
    "stamp_imprint",
    "vkey_path",
    "export_ledger",
    "verify_export",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
    "vkey_for",
]
