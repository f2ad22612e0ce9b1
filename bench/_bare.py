"""The bare-pyHanko side of the benchmarks: what an integrator writes with pyHanko alone.

A ``Signer`` subclass whose only addition is the private-key operation in the token (through the same
keystore as the service, so both sides pay the same token cost). Nothing else is overridden: pyHanko
builds and encodes the CMS its own way. (The service's ``signer._seal.KeystoreSigner`` also encodes the
signed attributes once instead of re-encoding them on every dump; using it here would speed the baseline
up by the service's own optimisation.)
"""

from __future__ import annotations

import asyncio
from typing import Any


def bare_signer(keystore: Any, key: Any) -> Any:
    from asn1crypto import x509 as asn1_x509
    from asn1crypto.algos import SignedDigestAlgorithm
    from pyhanko.sign.signers.pdf_cms import Signer
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    from keystore import KeyAlgorithm

    alg = KeyAlgorithm(key.algorithm)

    class BareTokenSigner(Signer):
        async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
            if dry_run:
                return bytes(72 if alg is KeyAlgorithm.EC_P256 else 384)
            return await asyncio.to_thread(keystore.sign, key.key_label, data, alg, digest_algorithm)

    certs = [asn1_x509.Certificate.load(d) for d in key.chain_der]
    mech = "sha256_ecdsa" if alg is KeyAlgorithm.EC_P256 else "sha256_rsa"
    return BareTokenSigner(
        signing_cert=certs[0],
        cert_registry=SimpleCertificateStore.from_certs(certs[1:]),
        signature_mechanism=SignedDigestAlgorithm({"algorithm": mech}),
        embed_roots=True,
    )
