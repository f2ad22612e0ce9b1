"""OpenID Connect login (authorization code flow with PKCE) against a configured provider; no routes here.

The provider proves who someone is; the *local* account decides what they may do. A claim of the ID token
(``preferred_username`` by default, see :class:`core.settings.Settings`) names an existing, enabled account;
OIDC never creates accounts, roles or organisations.

Between the redirect to the provider and the callback, the login's ``state``, ``nonce`` and PKCE verifier
travel in one short-lived cookie, encrypted and authenticated with AES-GCM under a key derived from the
client secret (every worker has it, so the callback may land on any worker). The cookie is cleared by every
callback answer; the provider's code is single-use, so a replayed callback fails either way.

No token, code, verifier or client secret is ever logged or put in an error's details.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from api._errors import Unauthenticated
from api._json import JsonObject
from core.errors import BadInput, PermissionDenied, SealServiceError, Unavailable
from core.settings import Settings

log = logging.getLogger("yizhang.api.oidc")

CALLBACK_PATH = "/ui/login/oidc/callback"
STATE_COOKIE = "yz_oidc"
STATE_COOKIE_PATH = "/ui/login/oidc"
#: How long a started login may take at the provider before its callback is refused.
STATE_TTL_S = 600
#: ID token signature algorithms accepted. Never ``none`` and never HS* (an HMAC keyed with the client
#: secret would let anyone holding that secret mint identities). ``Ed25519`` is RFC 9864's name for EdDSA.
ALLOWED_ALGS = frozenset({"RS256", "ES256", "EdDSA", "Ed25519"})
CLOCK_LEEWAY_S = 60
METADATA_TTL_S = 3600.0
#: An unknown ``kid`` refetches the provider's JWKS (key rotation), at most this often (forged kids must not
#: turn into a request flood against the provider).
JWKS_REFETCH_COOLDOWN_S = 10.0
MAX_RESPONSE_BYTES = 512 * 1024
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _refuse_provider(code: str, en: str, zh: str) -> Unavailable:
    return Unavailable(code, en, zh)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    username_claim: str
    required_claim: str | None
    required_claim_value: str | None
    redirect_uri: str
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The OIDC configuration, or None when no issuer is set (OIDC login disabled)."""
        if not settings.oidc_issuer:
            return None
        issuer = settings.oidc_issuer
        parts = urlsplit(issuer)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
            raise BadInput(
                "OIDC_CONFIG_INVALID",
                "YIZHANG_OIDC_ISSUER must be an https:// URL",
                "统一身份认证地址（YIZHANG_OIDC_ISSUER）须为 https:// 地址",
            )
        secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
        if not settings.oidc_client_id or not secret:
            raise BadInput(
                "OIDC_CONFIG_INVALID",
                "YIZHANG_OIDC_CLIENT_ID and YIZHANG_OIDC_CLIENT_SECRET are required with YIZHANG_OIDC_ISSUER",
                "配置统一身份认证时须同时配置客户端标识和客户端密钥",
            )
        scopes = settings.oidc_scopes.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        required_value = settings.oidc_required_claim_value
        if settings.oidc_required_claim and required_value is None:
            raise BadInput(
                "OIDC_CONFIG_INVALID",
                "YIZHANG_OIDC_REQUIRED_CLAIM needs YIZHANG_OIDC_REQUIRED_CLAIM_VALUE",
                "配置了必需声明但未配置其取值",
            )
        return cls(
            issuer=issuer,
            client_id=settings.oidc_client_id,
            client_secret=secret,
            scopes=" ".join(scopes),
            username_claim=settings.oidc_username_claim,
            required_claim=settings.oidc_required_claim or None,
            required_claim_value=required_value,
            redirect_uri=settings.public_base_url.rstrip("/") + CALLBACK_PATH,
            timeout_s=settings.oidc_timeout_s,
        )


@dataclass(frozen=True)
class PendingLogin:
    """What the callback must see again: kept in the encrypted state cookie, never in a log."""

    state: str
    nonce: str
    code_verifier: str
    started_at: int


@dataclass(frozen=True)
class StartedLogin:
    authorize_url: str
    cookie: str  # the encrypted PendingLogin


@dataclass(frozen=True)
class VerifiedIdentity:
    subject: str
    username: str
    claims: JsonObject


class OidcClient:
    """One relying party: discovery and JWKS cached per process, thread-safe."""

    def __init__(self, config: OidcConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._http = httpx.Client(
            timeout=config.timeout_s, follow_redirects=False, transport=transport, trust_env=False
        )
        self._lock = threading.Lock()
        self._metadata: JsonObject | None = None
        self._metadata_at = 0.0
        self._jwks: KeySet | None = None
        self._jwks_at = -1e9
        self._aead = AESGCM(
            HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"yizhang oidc state cookie v1"
            ).derive(config.client_secret.encode("utf-8"))
        )

    def close(self) -> None:
        self._http.close()

    # -- provider documents ------------------------------------------------------------------------------
    def _get_json(self, url: str, what: str) -> JsonObject:
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("oidc provider unreachable", extra={"what": what, "exc_type": type(exc).__name__})
            raise _refuse_provider(
                "OIDC_PROVIDER_UNAVAILABLE",
                "the identity provider is not reachable; try again later or log in with a password",
                "统一身份认证服务暂不可用，请稍后重试或使用用户名密码登录",
            ) from exc
        if response.status_code != 200 or len(response.content) > MAX_RESPONSE_BYTES:
            log.warning("oidc provider answered badly", extra={"what": what, "status": response.status_code})
            raise _refuse_provider(
                "OIDC_PROVIDER_UNAVAILABLE",
                f"the identity provider's {what} answered {response.status_code}",
                "统一身份认证服务暂不可用，请稍后重试或使用用户名密码登录",
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise _refuse_provider(
                "OIDC_DISCOVERY_INVALID",
                f"the identity provider's {what} is not JSON",
                "统一身份认证服务的配置文档无效",
            ) from exc
        if not isinstance(body, dict):
            raise _refuse_provider(
                "OIDC_DISCOVERY_INVALID",
                f"the identity provider's {what} is not a JSON object",
                "统一身份认证服务的配置文档无效",
            )
        return body

    def metadata(self) -> JsonObject:
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < METADATA_TTL_S:
                return self._metadata
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json(url, "discovery document")
        # OpenID Connect Discovery 1.0 §4.3: the document's issuer must be exactly the configured one.
        if doc.get("issuer") != self.config.issuer:
            log.warning("oidc discovery issuer mismatch", extra={"configured": self.config.issuer})
            raise _refuse_provider(
                "OIDC_DISCOVERY_INVALID",
                "the discovery document names another issuer than YIZHANG_OIDC_ISSUER",
                "统一身份认证服务的配置文档与所配置的地址不符",
            )
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(field), str):
                raise _refuse_provider(
                    "OIDC_DISCOVERY_INVALID",
                    f"the discovery document has no {field}",
                    "统一身份认证服务的配置文档不完整",
                )
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise _refuse_provider(
                "OIDC_DISCOVERY_INVALID",
                "the identity provider does not support PKCE with S256",
                "统一身份认证服务不支持 PKCE（S256）",
            )
        with self._lock:
            self._metadata, self._metadata_at = doc, time.monotonic()
        return doc

    def _key_set(self, *, refresh: bool) -> KeySet:
        with self._lock:
            cached, fetched_at = self._jwks, self._jwks_at
        if cached is not None and not refresh:
            return cached
        if cached is not None and time.monotonic() - fetched_at < JWKS_REFETCH_COOLDOWN_S:
            return cached
        doc = self._get_json(str(self.metadata()["jwks_uri"]), "key set (JWKS)")
        try:
            keys = KeySet.import_key_set(
                {
                    "keys": [
                        k for k in doc.get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"
                    ]
                }
            )
        except (JoseError, ValueError, TypeError) as exc:
            raise _refuse_provider(
                "OIDC_DISCOVERY_INVALID",
                "the identity provider's key set is invalid",
                "统一身份认证服务的密钥集无效",
            ) from exc
        with self._lock:
            self._jwks, self._jwks_at = keys, time.monotonic()
        return keys

    # -- the flow ----------------------------------------------------------------------------------------
    def start_login(self, *, now: float | None = None) -> StartedLogin:
        """A new login: the provider's authorization URL and the encrypted state cookie."""
        meta = self.metadata()
        pending = PendingLogin(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            started_at=int(now if now is not None else time.time()),
        )
        challenge = _b64url(hashlib.sha256(pending.code_verifier.encode("ascii")).digest())
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": self.config.scopes,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if self.config.required_claim == "acr" and self.config.required_claim_value:
            # Ask for it: a provider includes acr (and steps authentication up) when acr_values names it.
            params["acr_values"] = self.config.required_claim_value
        query = urlencode(params)
        endpoint = str(meta["authorization_endpoint"])
        separator = "&" if "?" in endpoint else "?"
        return StartedLogin(endpoint + separator + query, self._seal(pending))

    def _seal(self, pending: PendingLogin) -> str:
        nonce = os.urandom(12)
        plain = json.dumps(pending.__dict__, separators=(",", ":")).encode()
        return _b64url(nonce + self._aead.encrypt(nonce, plain, STATE_COOKIE.encode()))

    def _open(self, cookie: str | None) -> PendingLogin:
        invalid = BadInput(
            "OIDC_STATE_INVALID",
            "no login in progress in this browser (or it was already used); start again",
            "登录状态无效或已使用，请重新登录",
        )
        if not cookie or len(cookie) > 2048:
            raise invalid
        try:
            raw = _b64url_decode(cookie)
            plain = self._aead.decrypt(raw[:12], raw[12:], STATE_COOKIE.encode())
            fields = json.loads(plain)
            return PendingLogin(
                state=str(fields["state"]),
                nonce=str(fields["nonce"]),
                code_verifier=str(fields["code_verifier"]),
                started_at=int(fields["started_at"]),
            )
        except (InvalidTag, ValueError, KeyError, TypeError) as exc:
            raise invalid from exc

    def finish_login(
        self,
        *,
        cookie: str | None,
        params: dict[str, str],
        now: float | None = None,
    ) -> VerifiedIdentity:
        """The callback: check state, redeem the code, verify the ID token, return the verified identity.

        Plan:
          1. The state cookie decrypts, is fresh, and its ``state`` equals the callback's (login CSRF).
          2. An ``error`` from the provider is reported as such; an ``iss`` parameter (RFC 9207) must be ours.
          3. The code is redeemed at the token endpoint with the PKCE verifier and the client secret.
          4. The ID token is verified (:meth:`verify_id_token`): alg, signature, iss, aud, exp/iat, nonce.
          5. Claims missing from the ID token are read from the userinfo endpoint (same ``sub`` required).
          6. The required claim (if configured) holds its value; the username claim is present.
        """
        now = now if now is not None else time.time()
        pending = self._open(cookie)  # 1
        presented = params.get("state", "")
        if not hmac.compare_digest(pending.state.encode(), presented.encode()):
            raise BadInput(
                "OIDC_STATE_INVALID", "the login state does not match", "登录状态不匹配，请重新登录"
            )
        if now - pending.started_at > STATE_TTL_S:
            raise BadInput(
                "OIDC_STATE_EXPIRED", "the login took too long; start again", "登录超时，请重新登录"
            )
        meta = self.metadata()
        if "error" in params:  # 2
            error = params["error"][:64]
            log.info("oidc provider refused the login", extra={"oidc_error": error})
            raise Unauthenticated(
                "OIDC_PROVIDER_REFUSED",
                f"the identity provider refused the login ({error})",
                f"统一身份认证未通过（{error}）",
                details={"provider_error": error},
            )
        if "iss" in params and params["iss"] != meta["issuer"]:
            raise Unauthenticated(
                "OIDC_ISSUER_MISMATCH", "the answer came from another issuer", "认证结果来自其他认证服务"
            )
        code = params.get("code", "")
        if not code or len(code) > 2048:
            raise BadInput("OIDC_CODE_MISSING", "the callback carries no code", "认证回调缺少授权码")
        tokens = self._redeem(meta, code, pending.code_verifier)  # 3
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated(
                "OIDC_ID_TOKEN_INVALID", "the token response has no ID token", "认证服务未返回身份令牌"
            )
        claims = self.verify_id_token(id_token, nonce=pending.nonce, now=now)  # 4
        wanted = [self.config.username_claim] + (
            [self.config.required_claim] if self.config.required_claim else []
        )
        access_token = tokens.get("access_token")
        if (
            any(c not in claims for c in wanted)
            and meta.get("userinfo_endpoint")
            and isinstance(access_token, str)
        ):
            info = self._userinfo(str(meta["userinfo_endpoint"]), access_token)  # 5
            if info.get("sub") != claims["sub"]:
                raise Unauthenticated(
                    "OIDC_USERINFO_INVALID", "userinfo names another subject", "用户信息与身份令牌不符"
                )
            claims = {**info, **claims}
        if self.config.required_claim:  # 6
            value = claims.get(self.config.required_claim)
            ok = (
                self.config.required_claim_value in value
                if isinstance(value, list)
                else value is not None and str(value) == self.config.required_claim_value
            )
            if not ok:
                raise PermissionDenied(
                    "OIDC_CLAIM_REQUIRED",
                    f"the login does not carry the required {self.config.required_claim} value",
                    "统一身份认证的认证强度不满足要求",
                    details={"claim": self.config.required_claim},
                )
        username = claims.get(self.config.username_claim)
        if not isinstance(username, str) or not username.strip():
            raise PermissionDenied(
                "OIDC_CLAIM_MISSING",
                f"the identity carries no {self.config.username_claim} claim",
                "统一身份认证未提供账号名",
                details={"claim": self.config.username_claim},
            )
        return VerifiedIdentity(str(claims["sub"]), username.strip(), claims)

    def _redeem(self, meta: JsonObject, code: str, verifier: str) -> JsonObject:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": verifier,
        }
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        headers = {"Accept": "application/json"}
        if "client_secret_basic" in methods:
            # RFC 6749 §2.3.1: both parts are form-urlencoded before the Basic encoding.
            pair = f"{quote_plus(self.config.client_id)}:{quote_plus(self.config.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form.update(client_id=self.config.client_id, client_secret=self.config.client_secret)
        try:
            response = self._http.post(str(meta["token_endpoint"]), data=form, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("oidc token endpoint unreachable", extra={"exc_type": type(exc).__name__})
            raise _refuse_provider(
                "OIDC_PROVIDER_UNAVAILABLE",
                "the identity provider is not reachable; try again later or log in with a password",
                "统一身份认证服务暂不可用，请稍后重试或使用用户名密码登录",
            ) from exc
        try:
            body = response.json() if len(response.content) <= MAX_RESPONSE_BYTES else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code >= 500:
            log.warning("oidc token endpoint failed", extra={"status": response.status_code})
            raise _refuse_provider(
                "OIDC_PROVIDER_UNAVAILABLE",
                f"the identity provider's token endpoint answered {response.status_code}",
                "统一身份认证服务暂不可用，请稍后重试或使用用户名密码登录",
            )
        if response.status_code != 200:
            error = str(body.get("error", "unknown"))[:64]
            log.warning(
                "oidc code redemption refused", extra={"status": response.status_code, "oidc_error": error}
            )
            raise Unauthenticated(
                "OIDC_TOKEN_REQUEST_FAILED",
                f"the identity provider refused the code ({error})",
                "授权码无效或已使用，请重新登录",
                details={"provider_error": error},
            )
        return body

    def _userinfo(self, url: str, access_token: str) -> JsonObject:
        try:
            response = self._http.get(
                url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
            )
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise _refuse_provider(
                "OIDC_PROVIDER_UNAVAILABLE", "userinfo is not reachable", "统一身份认证服务暂不可用"
            ) from exc
        if not isinstance(body, dict):  # a signed/encrypted userinfo (JWT) is not supported
            raise Unauthenticated("OIDC_USERINFO_INVALID", "userinfo answered badly", "无法读取用户信息")
        return body

    def verify_id_token(self, id_token: str, *, nonce: str, now: float | None = None) -> JsonObject:
        """The verified claims of an ID token (OpenID Connect Core §3.1.3.7).

        Plan:
          1. The header's ``alg`` is on the allow-list (never ``none``, never HS*).
          2. The key is the provider's, by ``kid``; an unknown ``kid`` refetches the JWKS once (rotation).
          3. The signature verifies with that key and that algorithm only.
          4. ``iss`` is the configured issuer; ``aud`` holds our client id (``azp`` too when several).
          5. ``exp`` is in the future and ``iat`` not in the future (60 s leeway each).
          6. ``nonce`` is the one this browser's login carried (replay of another login's token).
        """
        now = now if now is not None else time.time()
        bad = Unauthenticated("OIDC_ID_TOKEN_INVALID", "the ID token is malformed", "身份令牌格式无效")
        if len(id_token) > 64 * 1024 or id_token.count(".") != 2:
            raise bad
        try:
            header = json.loads(_b64url_decode(id_token.split(".", 1)[0]))
        except ValueError as exc:
            raise bad from exc
        if not isinstance(header, dict):
            raise bad
        alg = header.get("alg")  # 1
        if alg not in ALLOWED_ALGS:
            log.warning("oidc id token with a refused algorithm", extra={"alg": str(alg)[:16]})
            raise Unauthenticated(
                "OIDC_ID_TOKEN_ALG",
                f"ID token algorithm {str(alg)[:16]!r} is not accepted",
                "身份令牌的签名算法不被接受",
                details={"allowed": sorted(ALLOWED_ALGS)},
            )
        kid = header.get("kid")
        key = self._pick_key(self._key_set(refresh=False), kid, str(alg))  # 2
        if key is None:
            key = self._pick_key(self._key_set(refresh=True), kid, str(alg))
        if key is None:
            log.warning("oidc id token signed by an unknown key")
            raise Unauthenticated(
                "OIDC_ID_TOKEN_KEY_UNKNOWN",
                "the ID token is signed by an unknown key",
                "身份令牌的签名密钥未知",
            )
        try:  # 3
            verified = jws.deserialize_compact(id_token, key, algorithms=[str(alg)])
            claims = json.loads(verified.payload)
        except (JoseError, ValueError) as exc:
            log.warning("oidc id token signature invalid", extra={"exc_type": type(exc).__name__})
            raise Unauthenticated(
                "OIDC_ID_TOKEN_SIGNATURE", "the ID token's signature does not verify", "身份令牌签名无效"
            ) from exc
        if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
            raise bad
        if claims.get("iss") != self.config.issuer:  # 4
            raise Unauthenticated(
                "OIDC_ISSUER_MISMATCH", "the ID token names another issuer", "身份令牌的签发方不符"
            )
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.config.client_id not in audiences or (
            len(audiences) > 1 and claims.get("azp") != self.config.client_id
        ):
            raise Unauthenticated(
                "OIDC_AUDIENCE_MISMATCH",
                "the ID token was issued to another client",
                "身份令牌并非签发给本系统",
            )
        exp, iat = claims.get("exp"), claims.get("iat")  # 5
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise bad
        if exp + CLOCK_LEEWAY_S < now:
            raise Unauthenticated("OIDC_ID_TOKEN_EXPIRED", "the ID token has expired", "身份令牌已过期")
        if iat - CLOCK_LEEWAY_S > now:
            raise Unauthenticated(
                "OIDC_ID_TOKEN_NOT_YET_VALID", "the ID token is issued in the future", "身份令牌签发时间异常"
            )
        token_nonce = claims.get("nonce")  # 6
        if not isinstance(token_nonce, str) or not hmac.compare_digest(token_nonce.encode(), nonce.encode()):
            raise Unauthenticated(
                "OIDC_NONCE_MISMATCH", "the ID token belongs to another login", "身份令牌与本次登录不符"
            )
        return claims

    @staticmethod
    def _pick_key(keys: KeySet, kid: object, alg: str) -> Key | None:
        if isinstance(kid, str):
            try:
                return keys.get_by_kid(kid)
            except (JoseError, ValueError, KeyError):
                return None
        # No kid: acceptable only when exactly one key of the right type exists.
        kty = {"RS256": "RSA", "ES256": "EC"}.get(alg, "OKP")
        candidates = [k for k in keys.keys if k.key_type == kty]
        return candidates[0] if len(candidates) == 1 else None


def describe(exc: SealServiceError) -> str:
    """A browser message for a failed login: the Chinese text and the stable code."""
    return f"统一身份认证登录失败：{exc.message_zh}（{exc.code}）"
