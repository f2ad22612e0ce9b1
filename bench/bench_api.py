"""End-to-end sealed documents per second through HTTP: ``yizhang serve`` (2 uvicorn workers, PostgreSQL,
SoftHSM) against bare pyHanko ``sign_pdf`` in 2 processes with the same key in the same token.

Run: .venv/bin/python bench/bench_api.py [--seconds 20] [--concurrency 8] [--rounds 3]

1. A throw-away deployment: a fresh PostgreSQL database, a home with a SoftHSM token and the county PKI,
   the Shanxi catalog, 兴江乡's active seal, a clerk account bound to its service centre with an API token.
2. ``yizhang serve --workers 2`` on it (signature level B-T: county timestamp; the log key in a file).
3. ``--rounds`` rounds (3), each: saturation — ``--concurrency`` clients (8) post the 1-page permit
   (multipart upload) as fast as answers come, each a new signing request (policy pre-check, document
   number, stamp, token signature, timestamp, ledger entry, the sealed PDF stored and returned in the JSON's
   request), for ``--seconds`` — then bare pyHanko for as long: 2 processes, each ``signers.sign_pdf`` of the
   same PDF in a loop (no stamp, no timestamp, no database), with the seal's key in the token through a plain
   pyHanko ``Signer`` subclass (bench/_bare.py). The ratio is the median of the rounds' ratios: on these
   shared 2-core machines the same code's CPU per document moves by a quarter between minutes.
4. Half the median rate, open loop (requests sent on a fixed schedule, latency measured from the scheduled
   time): p50 / p99.
5. Bare pyHanko with the county TSA; then with the TSA and Yizhang's own ``KeystoreSigner`` (which encodes
   the CMS signed attributes once): the ratio to that last one is the service's own overhead.
6. PostgreSQL transactions per sealed document over steps 3 and 4 and the warm-up (``pg_stat_database`` of
   the bench database; each autocommit read and each pool ping counts as one): the round trips a signing
   costs.
7. CPU time per sealed document at saturation by process group (serve workers, PostgreSQL, the bench's
   own HTTP clients, the rest), from ``/proc/*/stat`` of the processes alive at both ends of step 3: what
   the 2 cores are spent on.

Prints a table; writes bench/out/api.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT / "policies" / "catalogs"  # the catalogs shipped as package data
PG_ADMIN = os.environ.get("YIZHANG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
YIZHANG = str(Path(sys.executable).parent / "yizhang")
TOWNSHIP = "360732-11"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def permit_pdf() -> bytes:
    from signer import render_template

    return render_template(
        "public_place_hygiene_permit",
        {
            "issuer": "兴国县兴江乡人民政府",
            "unit_name": "兴国县兴江乡好客来宾馆",
            "legal_representative": "刘某某",
            "address": "兴国县兴江乡兴江大道88号",
            "licensed_items": "住宿（旅店业）",
            "valid_from": "2026年3月5日",
            "valid_until": "2030年3月4日",
            "date": "2026年3月5日",
        },
    )


def setup(env: dict[str, str]) -> dict[str, Any]:
    """The deployment, made with the library (as `county init` and the admin API would)."""
    from api._accounts import create_account, issue_token
    from core.db import make_engine, transaction
    from core.settings import load_settings
    from keystore import Keystore, SealKind, SealRegistry, init_county
    from policies import PolicyStore

    os.environ.update(env)
    settings = load_settings()
    os.environ["SOFTHSM2_CONF"] = str(settings.softhsm_conf)
    init_county(settings, "360732", "兴国县")
    engine = make_engine(settings.effective_database_url)
    store = PolicyStore(engine)
    store.register_county("360732", "兴国县", actor="bench")
    store.import_no2_townships("360732", (SHARED / "xingguo_no2_seals.csv").read_bytes(), actor="bench")
    store.import_catalog("360732", (SHARED / "shanxi_township_catalog.csv").read_bytes(), actor="bench")
    store.grant_powers(TOWNSHIP, None, actor="bench")
    with Keystore.open(settings) as ks:
        registry = SealRegistry(engine, ks, settings)
        ev = registry.issue_seal(
            name="兴国县兴江乡人民政府行政审批服务专用章",
            kind=SealKind.TOWNSHIP_APPROVAL,
            township="兴江乡",
            township_code=TOWNSHIP,
            custodian="李保管",
            requested_by="兴江乡人民政府",
            approved_by="王乡长",
            actor="bench",
        )
        registry.activate(ev.seal_id, actor="bench", approved_by="王乡长")
        seal = registry.get(ev.seal_id)
    centre = store.organisation(TOWNSHIP).service_centre
    with transaction(engine) as s:
        clerk = create_account(
            s,
            username="bench.clerk",
            display_name="窗口",
            role="TOWNSHIP_CLERK",
            org_code=TOWNSHIP,
            service_centre=centre,
            created_by="bench",
        )
        token = issue_token(s, clerk.account_id, name="bench").secret
    engine.dispose()
    return {"seal_id": seal.seal_id, "key_label": seal.key_label, "token": token}


def _bare_worker(
    env: dict[str, str], key_label: str, pdf: bytes, seconds: float, tsa: bool, ours: bool, out: Any
) -> None:
    os.environ.update(env)
    # Until issue 24 importing `signer` installed these in this worker too: the baseline stays what it was.
    from verifier import patches

    patches.install()
    from _bare import bare_signer
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    from core.db import make_engine
    from core.settings import load_settings
    from keystore import Keystore, SealRegistry
    from signer._seal import SealingKey, signer_for

    settings = load_settings()
    os.environ["SOFTHSM2_CONF"] = str(settings.softhsm_conf)
    engine = make_engine(settings.effective_database_url)
    # Two of these start together and each login rewrites SoftHSM's token file: Keystore.open scans again
    # when it reads a torn one (it failed here three times in a row before that, 2026-12-05).
    ks = Keystore.open(settings)
    with ks:
        registry = SealRegistry(engine, ks, settings)
        seal = next(s for s in registry.list() if s.key_label == key_label)
        key = SealingKey(
            key_label=seal.key_label,
            algorithm=seal.key_algorithm.value,
            chain_der=tuple(registry.chain_der(seal)),
            seal_name=seal.name,
        )
        bare = signer_for(ks, key) if ours else bare_signer(ks, key)
        stamper = None
        if tsa:
            from signer import CountyTimeStamper, CountyTsa, ensure_county_tsa

            stamper = CountyTimeStamper(CountyTsa(ks, ensure_county_tsa(engine, ks, registry.pki)))
        meta = signers.PdfSignatureMetadata(field_name="Sig1")
        signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), meta, bare, timestamper=stamper)  # warm-up
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), meta, bare, timestamper=stamper)
            n += 1
        out.put((n, time.perf_counter() - start, None))
    engine.dispose()


def bare_pyhanko(
    env: dict[str, str],
    key_label: str,
    pdf: bytes,
    seconds: float,
    procs: int,
    tsa: bool = False,
    ours: bool = False,
) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [
        ctx.Process(target=_bare_worker, args=(env, key_label, pdf, seconds, tsa, ours, q))
        for _ in range(procs)
    ]
    for p in ps:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in ps]
    for p in ps:
        p.join()
    errors = [e for _, _, e in results if e]
    if errors:
        raise SystemExit("bare pyHanko worker failed: " + errors[0])
    return sum(n / t for n, t, _ in results)


class Load:
    def __init__(self, base: str, token: str, seal_id: str, pdf: bytes) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seal_id = seal_id
        self.pdf = pdf
        self.errors: list[str] = []

    def one(self, client: Any) -> float:
        import httpx

        t0 = time.perf_counter()
        try:
            r = client.post(
                "/v1/signing-requests",
                data={
                    "seal_id": self.seal_id,
                    "matter_code": "SX-002",
                    "stage": "受理",
                    "document_kind": "受理通知书",
                    "reason": "bench",
                    "idempotency_key": "bench-" + secrets.token_hex(8),
                },
                files={"file": ("permit.pdf", self.pdf, "application/pdf")},
                headers=self.headers,
            )
        except httpx.HTTPError as exc:  # a dropped connection is an error, not the end of this client
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return time.perf_counter() - t0
        if r.status_code != 201 or r.json().get("status") != "SEALED":
            self.errors.append(f"{r.status_code} {r.text[:200]}")
        return time.perf_counter() - t0

    def saturate(self, concurrency: int, seconds: float) -> tuple[float, list[float]]:
        """Closed loop; the rate counts sealed documents only (an error answer is not a document)."""
        import httpx

        lat: list[float] = []
        lock = threading.Lock()
        stop = time.perf_counter() + seconds

        def run() -> None:
            with httpx.Client(base_url=self.base, timeout=60) as c:
                while time.perf_counter() < stop:
                    failed = len(self.errors)
                    d = self.one(c)
                    with lock:
                        if len(self.errors) == failed:
                            lat.append(d)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=run) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(lat) / (time.perf_counter() - t0), lat

    def paced(self, rate: float, seconds: float, max_threads: int = 16) -> list[float]:
        """Open loop: request i is due at start + i/rate; latency counts from when it was due."""
        import httpx

        n = max(1, int(rate * seconds))
        start = time.perf_counter() + 0.2
        lat: list[float] = []
        lock = threading.Lock()
        counter = iter(range(n))

        def run() -> None:
            with httpx.Client(base_url=self.base, timeout=60) as c:
                for i in counter:
                    due = start + i / rate
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    self.one(c)
                    with lock:
                        lat.append(time.perf_counter() - due)

        threads = [threading.Thread(target=run) for _ in range(max_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return lat


WARM_UP = 12  # requests before the measured runs, each on a new connection: every worker, TSA identity, fonts


def _pg_xacts(db: str) -> int:
    """Committed + rolled-back transactions of the bench database so far (pg_stat_database)."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (db,)
        ).fetchone()
    return int(row[0]) if row else 0


def _cpu_by_group(serve_sid: int) -> tuple[dict[str, float], dict[int, float]]:
    """CPU seconds (user + system) used so far by the processes alive now, by group: the serve workers
    (the server's session), PostgreSQL backends, this bench process (the HTTP clients), everything else;
    and each serve process apart (is the load spread over the workers?)."""
    tick = os.sysconf("SC_CLK_TCK")
    groups = {"serve": 0.0, "postgres": 0.0, "bench_client": 0.0, "other": 0.0}
    serve: dict[int, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if int(pid) == os.getpid():
            groups["bench_client"] += cpu
        elif int(fields[3]) == serve_sid:  # session id
            groups["serve"] += cpu
            serve[int(pid)] = cpu
        elif comm == "postgres":
            groups["postgres"] += cpu
        else:
            groups["other"] += cpu
    return groups, serve


def _profile(
    serve_pid: int, directory: Path, seconds: float, waits: bool = False
) -> list[subprocess.Popen[bytes]]:
    """py-spy (the dev extra's, next to this interpreter) samples each serve worker while it holds the GIL,
    or with ``waits`` every thread, idle ones included (``--idle``): where a request waits, not works."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise SystemExit(f"--profile needs py-spy at {spy} (the dev extra: bash scripts/setup.sh)")
    directory.mkdir(parents=True, exist_ok=True)
    children = Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split()
    return [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "-p",
                pid,
                "--idle" if waits else "--gil",
                "--nonblocking",
                "-r",
                "200",
                "-d",
                str(int(seconds) - 1),
            ]
            + ["-f", "raw", "-o", str(directory / f"worker-{pid}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in children
    ]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> None:
    from verifier import patches

    patches.install()  # as the service and the CLI do (verifier/patches.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--rounds", type=int, default=3, help="saturation rounds, each followed by bare pyHanko (median)"
    )
    ap.add_argument(
        "--profile",
        type=Path,
        help="directory: py-spy GIL profiles (collapsed stacks) of each serve worker during saturation",
    )
    ap.add_argument(
        "--profile-waits",
        action="store_true",
        help="with --profile: sample every thread, idle ones included, instead of the GIL holder",
    )
    args = ap.parse_args()

    import httpx
    import psycopg

    db = f"yz_bench_api_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    db_url = "postgresql+psycopg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + "/" + db
    proc = None
    try:
        with tempfile.TemporaryDirectory(prefix="yz-bench-api-") as tmp:
            home = Path(tmp) / "home"
            env = {
                "YIZHANG_HOME": str(home),
                "YIZHANG_DATABASE_URL": db_url,
                "YIZHANG_LOG_KEY_SOURCE": f"file:{home / 'secrets' / 'log.key'}",
                "YIZHANG_SIGNATURE_LEVEL": "B-T",
                # One bench account stands for every window of the county: the per-account limit (20/s per
                # worker by default) would answer 429 long before the signer is saturated.
                "YIZHANG_ACCOUNT_RATE_PER_S": "100000",
                "YIZHANG_ACCOUNT_BURST": "100000",
            }
            ctx = mp.get_context("spawn")
            with ctx.Pool(1) as pool:  # SoftHSM reads its config once per process: set up apart
                made = pool.apply(setup, (env,))
            pdf = permit_pdf()
            port = _free_port()
            log = open(Path(tmp) / "serve.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen(
                [
                    YIZHANG,
                    "serve",
                    "--home",
                    str(home),
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                    "--log-level",
                    "info",
                ],
                env={**os.environ, **env, "SOFTHSM2_CONF": str(home / "softhsm2.conf")},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                raise SystemExit("server not ready:\n" + (Path(tmp) / "serve.log").read_text())
            xacts_before = _pg_xacts(db)
            load = Load(base, made["token"], made["seal_id"], pdf)
            # Warm-up: every worker (its fonts, TSA identity, caches), the TSA identity. One connection per
            # request: on one kept-alive connection all of them went to one worker, and the other one did its
            # first-document work (font subsets, ~seconds of CPU) inside round 1. Sequential: no cold race.
            for _ in range(WARM_UP):
                with httpx.Client(base_url=base, timeout=60) as c:
                    load.one(c)
            if load.errors:
                raise SystemExit("sealing through HTTP failed: " + load.errors[0])
            bare_env = {**env, "SOFTHSM2_CONF": str(home / "softhsm2.conf")}
            # Rounds: saturation through HTTP, then bare pyHanko right after, the pair's ratio per round and
            # the median over rounds (a neighbour's burst on this shared machine hits one round, not all).
            rounds: list[tuple[float, float]] = []
            sat_lat: list[float] = []
            cpu_used = dict.fromkeys(("serve", "postgres", "bench_client", "other"), 0.0)
            serve_used: dict[int, float] = {}
            t_sat = 0.0
            for i in range(args.rounds):
                cpu_before, serve_before = _cpu_by_group(proc.pid)
                spies = (
                    _profile(proc.pid, args.profile, args.seconds, args.profile_waits)
                    if args.profile and i == 0
                    else []
                )
                t0 = time.perf_counter()
                api_rate, lat = load.saturate(args.concurrency, args.seconds)
                for spy in spies:
                    spy.wait(timeout=60)
                t_sat += time.perf_counter() - t0
                cpu_after, serve_after = _cpu_by_group(proc.pid)
                for k in cpu_used:
                    cpu_used[k] += cpu_after[k] - cpu_before[k]
                for pid in serve_after:
                    if pid in serve_before:
                        serve_used[pid] = serve_used.get(pid, 0.0) + serve_after[pid] - serve_before[pid]
                sat_lat += lat
                bare_rate = bare_pyhanko(bare_env, made["key_label"], pdf, args.seconds, args.workers)
                rounds.append((api_rate, bare_rate))
                print(f"round {i + 1}: API {api_rate:.1f}/s, bare pyHanko {bare_rate:.1f}/s", flush=True)
            rate = statistics.median(r for r, _ in rounds)
            bare = statistics.median(b for _, b in rounds)
            ratio = statistics.median(r / b for r, b in rounds if b)
            cpu_ms_per_doc = {k: round(v * 1000 / max(1, len(sat_lat)), 2) for k, v in cpu_used.items()}
            # each serve process's share of a core over the saturation runs (1.0 = one core busy throughout)
            serve_busy = sorted((round(v / t_sat, 2) for v in serve_used.values()), reverse=True)
            half = load.paced(rate / 2, args.seconds)
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            proc = None
            serve_log = (Path(tmp) / "serve.log").read_text(errors="replace")
            restarts = serve_log.count(" died")
            (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
            (ROOT / "bench" / "out" / "api-serve.log").write_text(serve_log)
            time.sleep(0.5)  # server backends report their statistics when they exit
            sealed_total = WARM_UP + len(sat_lat) + len(half)
            xacts_per_doc = (_pg_xacts(db) - xacts_before) / sealed_total
            bare_tsa = bare_pyhanko(bare_env, made["key_label"], pdf, args.seconds, args.workers, tsa=True)
            ours_tsa = bare_pyhanko(
                bare_env, made["key_label"], pdf, args.seconds, args.workers, tsa=True, ours=True
            )
            result = {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "document": "1-page permit (public_place_hygiene_permit)",
                "workers": args.workers,
                "concurrency": args.concurrency,
                "seconds": args.seconds,
                "rounds": [
                    {"api_docs_per_s": round(a, 2), "bare_docs_per_s": round(b, 2)} for a, b in rounds
                ],
                "api_docs_per_s": round(rate, 2),
                "api_saturated_p50_ms": round(statistics.median(sat_lat) * 1000, 1),
                "bare_pyhanko_docs_per_s": round(bare, 2),
                "ratio_api_to_bare": round(ratio, 3),  # the median of the rounds' ratios
                "bare_pyhanko_tsa_docs_per_s": round(bare_tsa, 2),
                "ratio_api_to_bare_tsa": round(rate / bare_tsa, 3) if bare_tsa else None,
                "yizhang_signer_tsa_docs_per_s": round(ours_tsa, 2),
                "ratio_api_to_yizhang_signer_tsa": round(rate / ours_tsa, 3) if ours_tsa else None,
                "half_load_rate_per_s": round(rate / 2, 2),
                "half_load_p50_ms": round(pct(half, 50) * 1000, 1),
                "half_load_p99_ms": round(pct(half, 99) * 1000, 1),
                "half_load_requests": len(half),
                "pg_transactions_per_document": round(xacts_per_doc, 1),
                "saturation_cpu_ms_per_document": cpu_ms_per_doc,
                "saturation_serve_process_busy": serve_busy,
                "worker_restarts": restarts,
                "errors": len(load.errors),
                "first_error": load.errors[0] if load.errors else None,
            }
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    print(f"{'side':44} {'docs/s':>8}")
    api_side = f"HTTP, yizhang serve, {args.workers} workers, PostgreSQL"
    bare_side = f"bare pyHanko sign_pdf, {args.workers} processes"
    print(f"{api_side + ' (median of rounds)':44} {result['api_docs_per_s']:>8}")
    print(f"{bare_side + ' (median of rounds)':44} {result['bare_pyhanko_docs_per_s']:>8}")
    print(f"{bare_side + ' + county TSA':44} {result['bare_pyhanko_tsa_docs_per_s']:>8}")
    ours_side = f"pyHanko sign_pdf with Yizhang's signer + TSA, {args.workers} processes"
    print(f"{ours_side:44} {result['yizhang_signer_tsa_docs_per_s']:>8}")
    print(
        f"ratio API / bare (median of the rounds' ratios): {result['ratio_api_to_bare']}; "
        f"API / bare+TSA: {result['ratio_api_to_bare_tsa']}; "
        "API / Yizhang's signer+TSA (the service's own overhead): "
        f"{result['ratio_api_to_yizhang_signer_tsa']}"
    )
    print(
        f"half load ({result['half_load_rate_per_s']}/s, {result['half_load_requests']} requests): "
        f"p50 {result['half_load_p50_ms']} ms, p99 {result['half_load_p99_ms']} ms; "
        f"errors {result['errors']}; worker restarts {result['worker_restarts']}"
    )
    print(
        f"PostgreSQL transactions per sealed document (autocommit reads count one each, pings included): "
        f"{result['pg_transactions_per_document']}"
    )
    print(
        "CPU per sealed document at saturation (ms; processes alive at both ends): "
        + ", ".join(f"{k} {v}" for k, v in result["saturation_cpu_ms_per_document"].items())
    )
    print(
        "serve processes' share of a core at saturation: "
        + ", ".join(str(b) for b in result["saturation_serve_process_busy"])
    )
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "api.json").write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    if result["errors"]:
        raise SystemExit(f"{result['errors']} requests were not sealed (first: {result['first_error']})")


if __name__ == "__main__":
    main()
