"""Raw token signing, signatures/s: the Keystore against python-pkcs11 directly, same run, one thread.

Run: .venv/bin/python bench/bench_keystore.py [--rounds 40] [--p256 200] [--rsa 10]
A throw-away SoftHSM home is made for the run. Both sides sign the same SHA-256 digest of a fresh message
each time with the same key in the same token:

- python-pkcs11 directly: ``hashlib.sha256`` + ``key.sign(digest, CKM_ECDSA)`` (raw r||s, no DER) or
  ``key.sign(DigestInfo || digest, CKM_RSA_PKCS)``, key object held by the caller, one session.
- Keystore: ``ks.sign(label, data, algorithm)``, i.e. pool checkout, the module lock, the cached key handle,
  hashing, the token call and (ECDSA) the DER encoding, as every caller in the service uses it.

Short rounds alternate between the two so drift on a shared machine hits both. The verdict uses each
side's best round (as ``timeit`` does: interference only ever slows a round down); medians are shown too.
Rates are per second of the signing thread's CPU time (``time.thread_time``), so other processes on a busy
machine do not distort the comparison; wall-clock throughput is lower when the machine is shared.
Writes bench/out/keystore.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pkcs11 import Mechanism, ObjectClass  # noqa: E402

from core.settings import load_settings  # noqa: E402
from keystore import KeyAlgorithm, Keystore, init_softhsm_home  # noqa: E402

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rate(fn: Callable[[bytes], object], n: int) -> float:
    msgs = [os.urandom(64) for _ in range(n)]
    # CPU time of this thread: SoftHSM signs in the calling thread, and time spent descheduled (the
    # machine is shared) is not counted against either side.
    start = time.thread_time()
    for m in msgs:
        fn(m)
    return n / (time.thread_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--p256", type=int, default=200, help="signatures per round, P-256")
    parser.add_argument("--rsa", type=int, default=10, help="signatures per round, RSA-3072")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="yz-bench-ks-"))
    settings = load_settings(home)
    init_softhsm_home(settings)
    results = []
    with Keystore.open(settings) as ks:
        # The keystore holds the process's login; a bare python-pkcs11 session on the same token shares it.
        direct_session = ks._token.open()
        try:
            for alg, n in ((KeyAlgorithm.EC_P256, args.p256), (KeyAlgorithm.RSA_3072, args.rsa)):
                label = f"bench:{alg.value}"
                ks.generate_key(label, alg)
                key = direct_session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)

                if alg is KeyAlgorithm.EC_P256:

                    def direct(m: bytes, key=key) -> object:  # type: ignore[no-untyped-def]
                        return key.sign(hashlib.sha256(m).digest(), mechanism=Mechanism.ECDSA)
                else:

                    def direct(m: bytes, key=key) -> object:  # type: ignore[no-untyped-def]
                        return key.sign(
                            SHA256_DIGEST_INFO + hashlib.sha256(m).digest(), mechanism=Mechanism.RSA_PKCS
                        )

                def through(m: bytes, label=label, alg=alg) -> object:  # type: ignore[no-untyped-def]
                    return ks.sign(label, m, alg)

                rate(direct, max(1, n // 10))  # warm both paths (handles cached, pool filled)
                rate(through, max(1, n // 10))
                d_rates, k_rates = [], []
                for _ in range(args.rounds):
                    d_rates.append(rate(direct, n))
                    k_rates.append(rate(through, n))
                d, k = max(d_rates), max(k_rates)
                dm, km = statistics.median(d_rates), statistics.median(k_rates)
                results.append(
                    {
                        "algorithm": alg.value,
                        "signatures_per_round": n,
                        "rounds": args.rounds,
                        "python_pkcs11_sig_per_s": round(d, 1),
                        "keystore_sig_per_s": round(k, 1),
                        "overhead_percent": round((d / k - 1) * 100, 2),
                        "per_signature_overhead_us": round((1 / k - 1 / d) * 1e6, 1),
                        "median_python_pkcs11_sig_per_s": round(dm, 1),
                        "median_keystore_sig_per_s": round(km, 1),
                        "median_overhead_percent": round((dm / km - 1) * 100, 2),
                    }
                )
        finally:
            direct_session.close()

    print("signatures per CPU-second of the signing thread (best round; median overhead in brackets)")
    head = f"{'algorithm':<10} {'python-pkcs11/s':>16} {'keystore/s':>12} {'overhead':>9} {'+us/sig':>8}"
    print(f"{head} {'(median)':>10}")
    for r in results:
        print(
            f"{r['algorithm']:<10} {r['python_pkcs11_sig_per_s']:>16.1f} {r['keystore_sig_per_s']:>12.1f} "
            f"{r['overhead_percent']:>8.2f}% {r['per_signature_overhead_us']:>8.1f} "
            f"({r['median_overhead_percent']:>7.2f}%)"
        )
    shutil.rmtree(home, ignore_errors=True)  # the throw-away token
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "keystore raw token signing (SoftHSM2), single thread",
        "unit": "signatures per second of the signing thread's CPU time (time.thread_time), best round",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "target": "keystore overhead < 10% per signature",
        "results": results,
    }
    (out / "keystore.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out / 'keystore.json'}")


if __name__ == "__main__":
    main()
