"""The verifier's stable reason codes, each with its weight, ETSI sub-indication and bilingual message."""

from __future__ import annotations

from verifier._model import Reason, Severity, SubIndication

_F, _I, _N = Severity.FAIL, Severity.INDETERMINATE, Severity.INFO
S = SubIndication

# code: (severity, sub-indication, message_en, message_zh)
CATALOG: dict[str, tuple[Severity, SubIndication | None, str, str]] = {
    "PDF_UNREADABLE": (_F, S.FORMAT_FAILURE, "the file is not a readable PDF", "文件不是可读取的PDF"),
    "PDF_TOO_LARGE": (_F, S.FORMAT_FAILURE, "the file exceeds the size limit", "文件超过大小限制"),
    "VERIFY_RESOURCE_LIMIT": (
        _F,
        S.FORMAT_FAILURE,
        "verification exceeded its time or memory bound; the file is refused",
        "验证超出时间或内存限制，文件被拒绝",
    ),
    "NO_SIGNATURE": (_F, S.SIGNED_DATA_NOT_FOUND, "the document carries no signature", "文件未加盖电子印章"),
    "TOO_MANY_SIGNATURES": (_F, S.FORMAT_FAILURE, "too many signatures", "签名数量超出限制"),
    "TOO_MANY_REVISIONS": (_F, S.FORMAT_FAILURE, "too many incremental updates", "增量更新次数超出限制"),
    "STRUCTURE_INVALID": (
        _F,
        S.FORMAT_FAILURE,
        "the PDF structure check failed (qpdf)",
        "PDF结构检查未通过（qpdf）",
    ),
    "XREF_INVALID": (
        _F,
        S.FORMAT_FAILURE,
        "a cross-reference section is broken or misplaced",
        "交叉引用表损坏或位置不符",
    ),
    "ACTIVE_CONTENT": (
        _F,
        S.FORMAT_FAILURE,
        "the document carries scripts or automatic actions that can change what a viewer shows",
        "文件含有可改变显示内容的脚本或自动动作",
    ),
    "VISIBLE_CHANGE": (
        _F,
        S.FORMAT_FAILURE,
        "what a person sees on a page differs from the document as sealed",
        "页面显示内容与盖章时不一致",
    ),
    "VISIBLE_WIDGET_AFTER_SEAL": (
        _F,
        S.FORMAT_FAILURE,
        "a signature or timestamp added or filled after the seal shows something on a page",
        "盖章后追加或填写的签名、时间戳在页面上可见（可能覆盖原内容）",
    ),
    "OPTIONAL_CONTENT_VARIES": (
        _F,
        S.FORMAT_FAILURE,
        "the document has optional content that shows differently on screen, on paper or when toggled",
        "文件含有在屏幕、打印或切换时显示不同的可选内容（图层）",
    ),
    "BINDING_TEXT_MISMATCH": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "the document number on the page differs from the one bound to the seal",
        "页面上的文号与印章绑定的文号不一致",
    ),
    "LEDGER_ENTRY_MISSING": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "the county ledger has no entry for this document",
        "县级用印台账中没有本文件的记录",
    ),
    "LEDGER_ENTRY_PENDING": (
        _I,
        S.TRY_LATER,
        "the document's ledger entry is newer than the latest checkpoint available; check again later",
        "本文件的台账记录晚于可用的最新检查点，请稍后再核验",
    ),
    "VERIFY_BUDGET_EXCEEDED": (
        _F,
        S.FORMAT_FAILURE,
        "the file exceeds a structural budget (objects, expanded streams) and is refused unread",
        "文件结构超出限制（对象数量、解压数据量），拒绝验证",
    ),
    "ARCHIVE_TIMESTAMP_POE": (
        _N,
        None,
        "this archive timestamp's certificate has expired; a later archive timestamp proves it was made "
        "while the certificate was valid",
        "该归档时间戳证书已过期；后续归档时间戳证明其在证书有效期内生成",
    ),
    "TIMESTAMP_EXPIRED_NO_POE": (
        _I,
        S.OUT_OF_BOUNDS_NO_POE,
        "the timestamp authority's certificate has expired and no later archive timestamp proves the "
        "signature existed before: the archive timestamps were not renewed in time",
        "时间戳证书已过期，且无后续归档时间戳证明签名在此之前已存在（归档时间戳未及时续期）",
    ),
    # the ledger's evidence record for an untouched original (issue 19 item 4b, verifier._archive)
    "EVIDENCE_RECORD_POE": (
        _N,
        None,
        "the ledger's evidence record proves this file existed at the time in the detail, while its "
        "certificates were valid: signatures and timestamps are judged at that time",
        "台账证据记录证明该文件在详情所示时间（证书有效期内）已存在：签名与时间戳按该时间判定",
    ),
    "EVIDENCE_RECORD_NOT_APPLIED": (
        _N,
        None,
        "an evidence record was given but not used: this file is not the one the ledger logged (an "
        "extended copy proves itself with its archive timestamps)",
        "提供了证据记录但未采用：该文件不是台账登记的原文件（延期副本由其归档时间戳自证）",
    ),
    "EVIDENCE_CHECKPOINT_MISMATCH": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "the evidence record's first timestamp does not cover the checkpoint its receipt proves against",
        "证据记录的首个时间戳不覆盖回执所依据的检查点",
    ),
    "EVIDENCE_CHAIN_BROKEN": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "a renewal timestamp of the evidence record does not cover the timestamp before it",
        "证据记录中的续期时间戳未覆盖其前一个时间戳",
    ),
    "EVIDENCE_TOKEN_INVALID": (
        _F,
        S.SIG_CRYPTO_FAILURE,
        "a timestamp of the evidence record is not a valid RFC 3161 token (signature or content)",
        "证据记录中的时间戳不是有效的RFC 3161时间戳（签名或内容无效）",
    ),
    "EVIDENCE_LINK_EXPIRED": (
        _I,
        S.OUT_OF_BOUNDS_NO_POE,
        "a timestamp of the evidence record was not renewed before its certificate expired",
        "证据记录中的时间戳未在其证书过期前续期",
    ),
    "EVIDENCE_TSA_UNTRUSTED": (
        _I,
        S.NO_CERTIFICATE_CHAIN_FOUND,
        "a timestamp of the evidence record is not by a trusted time-stamping authority at the time it is "
        "judged",
        "证据记录中的时间戳在判定时间不是由受信任的时间戳机构签发",
    ),
    "EVIDENCE_TSA_REVOKED": (
        _I,
        S.REVOKED_NO_POE,
        "the certificate of a timestamp of the evidence record was revoked before the timestamp was renewed",
        "证据记录中时间戳的证书在续期前已被吊销",
    ),
    "BYTE_RANGE_INVALID": (
        _F,
        S.FORMAT_FAILURE,
        "the signature's byte range is malformed",
        "签名字节范围格式错误",
    ),
    "CONTENTS_GAP_MISMATCH": (
        _F,
        S.FORMAT_FAILURE,
        "the unsigned gap is not exactly the signature value (signature wrapping)",
        "未签名区间并非恰好为签名值（签名包装攻击）",
    ),
    "COVERAGE_UNCLEAR": (
        _F,
        S.FORMAT_FAILURE,
        "the signature does not cover a whole revision of the file",
        "签名未覆盖文件的完整版本",
    ),
    "TRAILING_DATA": (
        _F,
        S.FORMAT_FAILURE,
        "bytes follow the last signed revision",
        "最后签名的版本之后存在多余数据",
    ),
    "CMS_MALFORMED": (
        _F,
        S.FORMAT_FAILURE,
        "the signature container is not valid DER CMS",
        "签名容器不是有效的DER CMS",
    ),
    "HASH_MISMATCH": (
        _F,
        S.HASH_FAILURE,
        "the signed content was altered (digest mismatch)",
        "签名内容已被篡改（摘要不符）",
    ),
    "SIGNATURE_INVALID": (
        _F,
        S.SIG_CRYPTO_FAILURE,
        "the cryptographic signature is invalid",
        "签名值验证失败",
    ),
    "MODIFIED_AFTER_SIGNING": (
        _F,
        S.FORMAT_FAILURE,
        "the document was changed after sealing (only validation data and signatures are allowed)",
        "盖章后文件被修改（仅允许追加验证数据和签名）",
    ),
    "UNSIGNED_FIELD_ADDED": (
        _F,
        S.FORMAT_FAILURE,
        "an empty signature field was added after sealing",
        "盖章后新增了空白签名域",
    ),
    "LATER_SIGNATURE_UNAUTHORISED": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "a signature added after the seal is not by a trusted, authorised signer",
        "盖章后追加的签名不是受信任的授权签名",
    ),
    "TIMESTAMP_INVALID": (
        _F,
        S.HASH_FAILURE,
        "the signature timestamp is invalid",
        "签名时间戳无效",
    ),
    "TIMESTAMP_UNTRUSTED": (
        _I,
        S.NO_CERTIFICATE_CHAIN_FOUND,
        "the timestamp authority is not trusted",
        "时间戳机构不受信任",
    ),
    "SIGNING_TIME_UNPROVEN": (
        _N,
        None,
        "no trusted timestamp: revocation is checked at the current time",
        "无可信时间戳：按当前时间检查吊销状态",
    ),
    "SIGNER_UNTRUSTED": (
        _I,
        S.NO_CERTIFICATE_CHAIN_FOUND,
        "the seal certificate does not chain to a trusted county root",
        "印章证书无法链接到受信任的县级根证书",
    ),
    "CERT_REVOKED": (
        _F,
        S.REVOKED,
        "the seal was cancelled (certificate revoked) before signing",
        "盖章前该印章已注销（证书已吊销）",
    ),
    "CERT_REVOKED_NO_POE": (
        _I,
        S.REVOKED_NO_POE,
        "the seal certificate is revoked and the signing time is not proven",
        "印章证书已吊销且无法证明盖章时间",
    ),
    "CERT_REVOKED_AFTER_SIGNING": (
        _N,
        None,
        "the seal was cancelled after this document was sealed; the document stays valid",
        "该印章在本文件盖章之后注销，本文件仍然有效",
    ),
    "CERT_ON_HOLD": (
        _F,
        S.REVOKED,
        "the seal was suspended (certificate on hold) when this document was sealed",
        "盖章时该印章处于暂停使用状态（证书已挂起）",
    ),
    "CERT_ON_HOLD_NO_POE": (
        _I,
        S.TRY_LATER,
        "the seal is suspended (certificate on hold) and the signing time is not proven",
        "印章处于暂停使用状态（证书已挂起）且无法证明盖章时间",
    ),
    "CERT_ON_HOLD_AFTER_SIGNING": (
        _N,
        None,
        "the seal was suspended after this document was sealed; the document stays valid",
        "该印章在本文件盖章之后暂停使用，本文件仍然有效",
    ),
    "CERT_OUT_OF_VALIDITY": (
        _F,
        S.NOT_YET_VALID,
        "the seal certificate was not valid at the signing time",
        "盖章时印章证书不在有效期内",
    ),
    "REVOCATION_UNKNOWN": (
        _I,
        S.TRY_LATER,
        "no usable revocation information (CRL) for the seal at the signing time",
        "缺少盖章时有效的吊销信息（CRL）",
    ),
    "CHAIN_INVALID": (
        _I,
        S.CERTIFICATE_CHAIN_GENERAL_FAILURE,
        "the certificate path could not be validated",
        "证书路径验证失败",
    ),
    "CROSS_CHECK_DISAGREE": (
        _F,
        S.HASH_FAILURE,
        "the independent verifier (endesive) disagrees on integrity",
        "独立验证器（endesive）对完整性结论不一致",
    ),
    "CROSS_CHECK_UNAVAILABLE": (
        _N,
        None,
        "the independent verifier (endesive) could not run",
        "独立验证器（endesive）无法运行",
    ),
    "BINDING_MISSING": (
        _N,
        None,
        "no matter/document binding found in the signature",
        "签名中未找到事项/文书绑定信息",
    ),
    "BINDING_MALFORMED": (
        _I,
        S.POLICY_PROCESSING_ERROR,
        "the matter/document binding is unreadable",
        "事项/文书绑定信息无法读取",
    ),
    "BINDING_MISMATCH": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "the binding names a different seal than the certificate",
        "绑定信息中的印章与证书不符",
    ),
    "LEDGER_NOT_CHECKED": (
        _N,
        None,
        "no ledger receipt or ledger available: ledger inclusion not checked",
        "未核对台账登记",
    ),
    "LEDGER_ENTRY_MISMATCH": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "the ledger entry does not match this document",
        "台账记录与本文件不符",
    ),
    "LEDGER_PROOF_INVALID": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "the ledger inclusion proof does not verify",
        "台账包含证明验证失败",
    ),
    "CHECKPOINT_INVALID": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "the ledger checkpoint signature does not verify",
        "台账检查点签名验证失败",
    ),
    "DECISION_CHANGED": (
        _I,
        S.POLICY_PROCESSING_ERROR,
        "the decision has since been changed",
        "该决定此后已变更",
    ),
    "DECISION_WITHDRAWN": (_F, S.SIG_CONSTRAINTS_FAILURE, "the decision was withdrawn", "该决定已撤回"),
    "DECISION_REVOKED": (_F, S.SIG_CONSTRAINTS_FAILURE, "the decision was revoked", "该决定已撤销"),
    "DECISION_CANCELLED": (_F, S.SIG_CONSTRAINTS_FAILURE, "the decision was cancelled", "该决定已注销"),
    "MATTER_NOT_DELEGATED": (
        _F,
        S.SIG_CONSTRAINTS_FAILURE,
        "the matter was not delegated to this seal at the signing time",
        "盖章时该事项未委托给此印章",
    ),
    "DELEGATION_UNKNOWN": (
        _N,
        None,
        "the delegation at the signing time could not be looked up",
        "无法查询盖章时的委托情况",
    ),
    "STATUS_LIST_STALE": (
        _I,
        S.TRY_LATER,
        "the county's decision status list is past its next update: fetch a fresh one and verify again",
        "县级决定状态清单已过下次更新时间，请获取最新清单后重新核验",
    ),
    "STATUS_LIST_INVALID": (
        _I,
        S.POLICY_PROCESSING_ERROR,
        "the county's decision status list is not signed by the county's log key or is malformed",
        "县级决定状态清单签名无效或格式错误",
    ),
    "STATUS_UNKNOWN": (
        _N,
        None,
        "the decision's current status could not be looked up",
        "无法查询该决定的当前状态",
    ),
    "TRUST_BUNDLE_STALE": (
        _I,
        S.TRY_LATER,
        "the issuing county's trust bundle is past its next update (how long, and where to refresh it, in "
        "the detail): refresh it (`yizhang trust refresh`, or a new bundle from that county) and verify "
        "again",
        "签发县的信任包已过下次更新时间（过期多久、从何处更新见详情）："
        "请更新信任包（yizhang trust refresh，或向该县索取新的验证包）后重新核验",
    ),
}


def reason(
    code: str,
    *,
    signature: str | None = None,
    detail: str | None = None,
    severity: Severity | None = None,
    sub_indication: SubIndication | None = None,
) -> Reason:
    sev, sub, en, zh = CATALOG[code]
    return Reason(
        code=code,
        message_en=en,
        message_zh=zh,
        severity=severity or sev,
        sub_indication=sub_indication or sub,
        signature=signature,
        detail=(detail[:500] if detail else None),
    )
