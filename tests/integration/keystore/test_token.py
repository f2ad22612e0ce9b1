"""The keystore on a real SoftHSM token: key attributes, signatures, Ed25519, errors, the session pool."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from typing import Any

import pkcs11
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pkcs11 import Attribute, ObjectClass

from core.errors import BadInput, Conflict, KeystoreError
from keystore import KeyAlgorithm, Keystore


def _label(prefix: str = "test") -> str:
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def p256_key(keystore: Keystore) -> str:
    label = _label("p256")
    keystore.generate_key(label, KeyAlgorithm.EC_P256)
    return label


@pytest.fixture(scope="module")
def rsa_key(keystore: Keystore) -> str:
    label = _label("rsa")
    keystore.generate_key(label, KeyAlgorithm.RSA_3072)
    return label


@pytest.fixture(scope="module")
def ed_key(keystore: Keystore) -> str:
    label = _label("ed25519")
    keystore.generate_key(label, KeyAlgorithm.ED25519)
    return label


@pytest.mark.parametrize("fixture", ["p256_key", "rsa_key", "ed_key"])
def test_generated_keys_are_sensitive_and_never_extractable(
    request: pytest.FixtureRequest, keystore: Keystore, softhsm_token: Any, fixture: str
) -> None:
    label = request.getfixturevalue(fixture)
    attrs = keystore.key_attributes(label)
    assert attrs == {
        "sensitive": True,
        "extractable": False,
        "token": True,
        "private": True,
        "always_sensitive": True,
        "never_extractable": True,
        "local": True,
    }
    # Read back independently of the keystore, through python-pkcs11 on its own session.
    lib = pkcs11.lib(softhsm_token.module_path)
    token = lib.get_token(token_label="yizhang")
    # The keystore holds this process's login (PKCS#11 login is per application): a plain session
    # sees the private key.
    with token.open() as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE] if fixture != "rsa_key" else key[Attribute.PRIVATE_EXPONENT]


def test_p256_signature_verifies_with_cryptography(keystore: Keystore, p256_key: str) -> None:
    data = "兴国县兴江乡 受理通知书".encode()
    sig = keystore.sign(p256_key, data, KeyAlgorithm.EC_P256)
    pub = keystore.public_key(p256_key)
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        pub.verify(sig, data + b"x", ec.ECDSA(hashes.SHA256()))


def test_p256_sign_digest_and_other_hashes(keystore: Keystore, p256_key: str) -> None:
    pub = keystore.public_key(p256_key)
    digest = hashlib.sha256(b"abc").digest()
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    pub.verify(keystore.sign_digest(p256_key, digest), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    pub.verify(keystore.sign(p256_key, b"abc", hash_alg="sha384"), b"abc", ec.ECDSA(hashes.SHA384()))


def test_rsa3072_signature_verifies_with_cryptography(keystore: Keystore, rsa_key: str) -> None:
    pub = keystore.public_key(rsa_key)
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 3072
    sig = keystore.sign(rsa_key, b"permit", KeyAlgorithm.RSA_3072)
    pub.verify(sig, b"permit", padding.PKCS1v15(), hashes.SHA256())


def test_cryptography_shaped_token_keys_sign_and_refuse_the_rest(
    keystore: Keystore, p256_key: str, rsa_key: str
) -> None:
    """token_private_key: what the PKI signs certificates and CRLs with. Signatures verify; the key never
    leaves the token and only signs; a copy is the same key."""
    import copy

    from cryptography.hazmat.primitives import serialization

    from keystore import token_private_key

    ec_key = token_private_key(keystore, p256_key, KeyAlgorithm.EC_P256)
    rsa_key_ = token_private_key(keystore, rsa_key, KeyAlgorithm.RSA_3072)
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey) and isinstance(rsa_key_, rsa.RSAPrivateKey)
    ec_sig = ec_key.sign(b"permit", ec.ECDSA(hashes.SHA256()))
    ec_key.public_key().verify(ec_sig, b"permit", ec.ECDSA(hashes.SHA256()))
    rsa_sig = rsa_key_.sign(b"permit", padding.PKCS1v15(), hashes.SHA256())
    rsa_key_.public_key().verify(rsa_sig, b"permit", padding.PKCS1v15(), hashes.SHA256())
    assert (ec_key.key_size, rsa_key_.key_size) == (256, 3072)
    for key in (ec_key, rsa_key_):
        assert copy.copy(key) is key and copy.deepcopy(key) is key
        with pytest.raises(KeystoreError) as numbers:
            key.private_numbers()
        with pytest.raises(KeystoreError) as pem:
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        assert numbers.value.code == pem.value.code == "KEY_NOT_EXTRACTABLE"
    with pytest.raises(KeystoreError) as exchange:
        ec_key.exchange(ec.ECDH(), ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(KeystoreError) as decrypt:
        rsa_key_.decrypt(b"x", padding.PKCS1v15())
    assert exchange.value.code == decrypt.value.code == "KEY_OPERATION_REFUSED"
    with pytest.raises(BadInput):
        ec_key.sign(b"permit", ec.ECDSA(hashes.SHA1()))
    with pytest.raises(BadInput):
        rsa_key_.sign(b"permit", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


def test_ed25519_signs_pure_messages(keystore: Keystore, ed_key: str) -> None:
    pub = keystore.public_key(ed_key)
    assert isinstance(pub, ed25519.Ed25519PublicKey)
    sig = keystore.sign_ed25519(ed_key, b"checkpoint note")
    assert len(sig) == 64
    pub.verify(sig, b"checkpoint note")
    with pytest.raises(BadInput) as err:
        keystore.sign_digest(ed_key, hashlib.sha256(b"x").digest(), KeyAlgorithm.ED25519)
    assert err.value.code == "KEY_ALGORITHM_INVALID"


def test_bad_digest_length_is_refused(keystore: Keystore, p256_key: str) -> None:
    with pytest.raises(BadInput) as err:
        keystore.sign_digest(p256_key, b"short")
    assert err.value.code == "DIGEST_INVALID"


def test_duplicate_label_and_destroy(keystore: Keystore) -> None:
    label = _label()
    keystore.generate_key(label)
    with pytest.raises(Conflict) as err:
        keystore.generate_key(label)
    assert err.value.code == "KEY_LABEL_EXISTS"
    keystore.destroy_key(label, private_only=True)
    assert keystore.public_key(label) is not None  # the public half stays
    with pytest.raises(KeystoreError) as err2:
        keystore.sign(label, b"x")
    assert err2.value.code == "KEY_NOT_FOUND"
    keystore.destroy_key(label)
    assert not keystore.has_key(label)


def test_wrong_pin_is_refused_with_its_code(softhsm_token: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YZ_TEST_WRONG_PIN", "not-the-pin")
    settings = softhsm_token.settings.model_copy(update={"pin_source": "env:YZ_TEST_WRONG_PIN"})
    with pytest.raises(KeystoreError) as err:
        Keystore.open(settings)
    assert err.value.code == "TOKEN_PIN_INCORRECT"
    assert "not-the-pin" not in str(err.value) and "not-the-pin" not in repr(err.value.to_dict())


def test_missing_pin_source_is_bad_input(softhsm_token: Any) -> None:
    settings = softhsm_token.settings.model_copy(update={"pin_source": "env:YZ_TEST_NO_SUCH_VARIABLE"})
    with pytest.raises(BadInput) as err:
        Keystore.open(settings)
    assert err.value.code == "SECRET_MISSING"


def test_missing_module(softhsm_token: Any) -> None:
    settings = softhsm_token.settings.model_copy(
        update={"pkcs11_uri": "pkcs11:token=yizhang?module-path=/nonexistent/libnothing.so"}
    )
    with pytest.raises(KeystoreError) as err:
        Keystore.open(settings)
    assert err.value.code == "PKCS11_MODULE_NOT_FOUND"


def test_not_a_pkcs11_module(softhsm_token: Any, tmp_path: Any) -> None:
    fake = tmp_path / "libfake.so"
    fake.write_bytes(b"\x7fELF not really")
    settings = softhsm_token.settings.model_copy(
        update={"pkcs11_uri": f"pkcs11:token=yizhang?module-path={fake}"}
    )
    with pytest.raises(KeystoreError) as err:
        Keystore.open(settings)
    assert err.value.code == "PKCS11_MODULE_NOT_FOUND"


def test_token_not_found(softhsm_token: Any) -> None:
    settings = softhsm_token.settings.model_copy(
        update={"pkcs11_uri": f"pkcs11:token=no-such-token?module-path={softhsm_token.module_path}"}
    )
    with pytest.raises(KeystoreError) as err:
        Keystore.open(settings)
    assert err.value.code == "TOKEN_NOT_FOUND"


def test_malformed_uri_in_settings(softhsm_token: Any) -> None:
    settings = softhsm_token.settings.model_copy(update={"pkcs11_uri": "pkcs11:token=yizhang;bogus=1"})
    with pytest.raises(BadInput) as err:
        Keystore.open(settings)
    assert err.value.code == "PKCS11_URI_INVALID"


def test_explicit_uri_and_env_pin_source_like_a_real_hsm(
    softhsm_token: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin = (softhsm_token.home / "secrets" / "token.pin").read_text().strip()
    monkeypatch.setenv("YZ_TEST_HSM_PIN", pin)
    settings = softhsm_token.settings.model_copy(
        update={
            "pkcs11_uri": (
                f"pkcs11:token=yizhang?module-path={softhsm_token.module_path}&pin-source=env:YZ_TEST_HSM_PIN"
            )
        }
    )
    with Keystore.open(settings) as ks:
        assert pin not in repr(ks)
        label = _label()
        ks.generate_key(label)
        ks.public_key(label).verify(ks.sign(label, b"x"), b"x", ec.ECDSA(hashes.SHA256()))
        ks.destroy_key(label)


def test_pool_is_bounded_and_busy_is_an_error(softhsm_token: Any, p256_key: str) -> None:
    settings = softhsm_token.settings.model_copy(update={"session_pool_size": 1, "token_timeout_s": 0.2})
    with Keystore.open(settings) as ks:
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with ks._worker("hold"):  # occupy the only session
                held.set()
                release.wait(10)

        t = threading.Thread(target=hold)
        t.start()
        try:
            assert held.wait(10)
            with pytest.raises(KeystoreError) as err:
                ks.sign(p256_key, b"x")
            assert err.value.code == "TOKEN_BUSY"
        finally:
            release.set()
            t.join()
        ks.sign(p256_key, b"x")  # free again


def test_concurrent_signing_from_threads(keystore: Keystore, p256_key: str) -> None:
    pub = keystore.public_key(p256_key)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(20):
                msg = f"{i}-{j}".encode()
                pub.verify(keystore.sign(p256_key, msg), msg, ec.ECDSA(hashes.SHA256()))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_closed_keystore_refuses(softhsm_token: Any, p256_key: str) -> None:
    ks = Keystore.open(softhsm_token.settings)
    ks.close()
    with pytest.raises(KeystoreError) as err:
        ks.sign(p256_key, b"x")
    assert err.value.code == "KEYSTORE_CLOSED"
    assert os.environ.get("SOFTHSM2_CONF") == str(softhsm_token.conf)


def test_uri_token_attributes_select_the_token(softhsm_token: Any) -> None:
    base = f"?module-path={softhsm_token.module_path}"
    good = softhsm_token.settings.model_copy(
        update={"pkcs11_uri": f"pkcs11:token=yizhang;manufacturer=SoftHSM%20project;model=SoftHSM%20v2{base}"}
    )
    with Keystore.open(good) as ks:
        assert ks.key_labels("no-such-prefix") == []
    wrong = softhsm_token.settings.model_copy(
        update={"pkcs11_uri": f"pkcs11:token=yizhang;manufacturer=Other%20Vendor{base}"}
    )
    with pytest.raises(KeystoreError) as err:
        Keystore.open(wrong)
    assert err.value.code == "TOKEN_NOT_FOUND"


def test_ping(keystore: Keystore) -> None:
    keystore.ping()
