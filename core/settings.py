"""Configuration: one pydantic-settings class, built by :func:`load_settings` and passed down.

No PIN or secret has a default. The PIN is named by a *source* (``env:VAR`` or ``file:/path``) and read
only when a token session is opened; it never appears in ``repr`` or logs.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIZHANG_", extra="ignore", frozen=True)

    home: Path = Field(default=Path("./var"), description="deployment state: database, token, CRLs")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in home by default")
    pkcs11_uri: str | None = Field(
        default=None,
        description="RFC 7512 URI of the token, e.g. pkcs11:token=yizhang?module-path=/usr/lib/...so",
    )
    pin_source: str | None = Field(
        default=None, description="where the user PIN is read from: env:VAR or file:/path (no default PIN)"
    )
    so_pin_source: str | None = Field(default=None, description="security officer PIN source, init only")
    token_timeout_s: float = Field(default=10.0, gt=0, description="bound on one token call")
    session_pool_size: int = Field(default=4, ge=1, le=64)
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="where this server is reached; at `county init` it also becomes the base of the names "
        "signed artefacts carry (CRL URLs, verification links, the log origin), which never change after",
    )
    county_code: str | None = None
    cookie_secure: bool | None = Field(
        default=None,
        description="console cookies carry Secure (sent over HTTPS only); unset: yes, unless public_base_url "
        "is plain http on a loopback address (the demo, a developer's machine)",
    )
    metrics_token_source: str | None = Field(
        default=None,
        description="where the bearer token the Prometheus scraper sends to /metrics is read: env:VAR or "
        "file:/path (like the PIN); unset: /metrics answers 404 to everyone (issue 21 finding 14)",
    )
    max_pdf_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    verify_qr: bool = Field(
        default=True,
        description="print the verification QR code on sealed documents: every template document, and an "
        "uploaded PDF that is unsigned and blank where the code goes (signer.qr_fits)",
    )
    log_key_source: str = Field(default="token", description="token | file:/path (Ed25519 PEM)")
    tsa_url: str | None = Field(default=None, description="external RFC 3161 TSA; county TSA when unset")
    signature_level: str = Field(default="B-LTA", description="B-T | B-LT | B-LTA")
    document_number_format: str = Field(
        default="{issuer}{family}〔{year}〕{seq}号",
        description="document number format (signer): fields issuer (the township's short name, or a No. 2 "
        "seal's department), family (审批/受理/意见), year, seq (all four required), township_short, "
        "township, county, department, seal_number; one series per issuer and family (issue 22)",
    )
    secret_key: SecretStr | None = Field(default=None, description="signs sessions/webhooks; read from home")
    checkpoint_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="serve: forward lifecycle/policy changes into the ledger and sign a checkpoint when the "
        "tree grew, this often (seconds; 0 = only on demand)",
    )
    crl_republish_s: float = Field(
        default=86400.0,
        gt=0,
        description="serve: sign and publish fresh CRLs this often (seconds; also at start and at once on "
        "every suspension, resumption, cancellation or re-key); kept at most half the CRL validity",
    )
    crl_validity_days: float = Field(
        default=7.0, gt=0, le=90, description="the issuing CA's CRL nextUpdate, days after thisUpdate"
    )
    ltv_tsa_rotate_days: float = Field(
        default=365.0,
        gt=0,
        description="long-term validation: the county TSA gets a new key and certificate when its "
        "certificate has fewer days left than this (serve and `yizhang ltv renew`)",
    )
    ltv_renew_days: float = Field(
        default=300.0,
        gt=0,
        description="long-term validation: a stored sealed document gets a new archive timestamp when the "
        "TSA certificate of its latest timestamp has fewer days left than this (keep it below "
        "ltv_tsa_rotate_days)",
    )
    ltv_batch: int = Field(default=200, ge=1, description="long-term validation: documents renewed per round")
    status_list_validity_s: float = Field(
        default=7 * 86400.0,
        ge=3600,
        description="the decision status list's nextUpdate, seconds after its thisUpdate; a verifier holding "
        "an older list is INDETERMINATE (STATUS_LIST_STALE)",
    )
    status_list_republish_s: float = Field(
        default=86400.0,
        gt=0,
        description="serve: sign the decision status list again this often (seconds; at once on every status "
        "change); keep it well inside status_list_validity_s",
    )
    number_reservation_ttl_s: float = Field(
        default=600.0,
        ge=1,
        description="a document number reserved for a signing that has not ended after this long (its "
        "process died) is voided by the serve workers' sweeper (seconds; longer than any signing can take)",
    )

    keepalive_requests: int = Field(
        default=10,
        ge=0,
        description="answers on one kept-alive HTTP connection before the server closes it (0: no limit); "
        "reconnecting clients spread over the serve workers (a reconnect costs well under a millisecond; "
        "with 100 a 20 s bench still left one worker at 0.83 of a core and the other at 0.41)",
    )

    account_rate_per_s: float = Field(
        default=20.0,
        gt=0,
        description="rate limit per signed-in account and serve worker: sustained requests per second "
        "(429 RATE_LIMITED beyond it, with Retry-After)",
    )
    account_burst: int = Field(default=120, ge=1, description="requests an account may send at once")
    public_rate_per_s: float = Field(
        default=5.0, gt=0, description="rate limit per client address on public endpoints (verify, proofs)"
    )
    public_burst: int = Field(
        default=30, ge=1, description="public requests a client address may send at once"
    )

    # OpenID Connect login for the console (disabled while oidc_issuer is unset). The provider proves the
    # person; the claim below names an existing local account, which carries the role and organisation.
    oidc_issuer: str | None = Field(
        default=None, description="OpenID Provider issuer URL (https); discovery at {issuer}/.well-known/..."
    )
    oidc_client_id: str | None = Field(default=None, description="this service's client id at the provider")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="client secret (confidential client); never logged"
    )
    oidc_scopes: str = Field(default="openid profile", description="space-separated scopes requested")
    oidc_username_claim: str = Field(
        default="preferred_username", description="the claim whose value is the local account's username"
    )
    oidc_required_claim: str | None = Field(
        default=None, description="a claim every OIDC login must carry (e.g. acr), with the value below"
    )
    oidc_required_claim_value: str | None = Field(default=None, description="the required claim's value")
    oidc_timeout_s: float = Field(default=5.0, gt=0, le=60, description="bound on one call to the provider")

    webhook_allow_hosts: str = Field(
        default="",
        description="comma-separated host names or IP addresses webhooks may post to although they resolve "
        "to loopback, private, link-local or other non-public addresses (an on-premises receiver); empty: "
        "public destinations only",
    )
    refusal_limit_per_minute: int = Field(
        default=10,
        ge=1,
        description="policy refusals recorded per account a minute; beyond it a submission the policy "
        "would refuse is answered 429 RATE_LIMITED and not recorded",
    )

    @property
    def home_dir(self) -> Path:
        return self.home.resolve()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_dir / 'yizhang.db'}"

    @property
    def softhsm_conf(self) -> Path:
        return self.home_dir / "softhsm2.conf"

    @property
    def effective_pkcs11_uri(self) -> str:
        if self.pkcs11_uri:
            return self.pkcs11_uri
        return f"pkcs11:token=yizhang?module-path={DEFAULT_SOFTHSM_MODULE}"

    @property
    def effective_pin_source(self) -> str:
        if self.pin_source:
            return self.pin_source
        # The embedded default keeps a random PIN, made at `county init`, in a 0600 file in the home.
        return f"file:{self.home_dir / 'secrets' / 'token.pin'}"

    @property
    def effective_so_pin_source(self) -> str:
        if self.so_pin_source:
            return self.so_pin_source
        return f"file:{self.home_dir / 'secrets' / 'token.so-pin'}"


def load_settings(home: Path | str | None = None, **overrides: object) -> Settings:
    """Build the settings from the environment; ``home`` (``--home``) wins over ``YIZHANG_HOME``."""
    kwargs: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
    if home is not None:
        kwargs["home"] = Path(home)
    elif "YIZHANG_HOME" not in os.environ and "home" not in kwargs:
        kwargs["home"] = Path("./var")
    # pydantic-settings boundary: BaseSettings.__init__ types its own ``_env_file``-style options, not the
    # fields, which pydantic validates at run time (an unknown or ill-typed override fails there).
    return Settings(**kwargs)  # type: ignore[arg-type]


def read_secret(source: str) -> str:
    """Read a secret from ``env:VAR`` or ``file:/path``; the value is never logged."""
    from core.errors import BadInput

    kind, _, ref = source.partition(":")
    if kind == "env":
        value = os.environ.get(ref)
        if value is None:
            raise BadInput(
                "SECRET_MISSING", f"environment variable {ref} is not set", f"环境变量 {ref} 未设置"
            )
        return value
    if kind == "file":
        path = Path(ref)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BadInput(
                "SECRET_MISSING", f"secret file {path} cannot be read", f"无法读取密钥文件 {path}"
            ) from exc
    raise BadInput(
        "SECRET_SOURCE_INVALID",
        "a secret source must be env:VAR or file:/path",
        "密钥来源须为 env:变量名 或 file:路径",
    )
