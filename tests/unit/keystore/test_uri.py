"""RFC 7512 PKCS#11 URI parsing and the SealInfo extension encoding (no token, no I/O)."""

from __future__ import annotations

import pytest

from core.errors import BadInput
from keystore import Pkcs11Uri, SealInfo, SealKind


def test_full_uri_parses_path_and_query() -> None:
    uri = Pkcs11Uri.parse(
        "pkcs11:token=yizhang;slot-id=3;manufacturer=SoftHSM%20project"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin"
    )
    assert uri.token_label == "yizhang"
    assert uri.slot_id == 3
    assert uri.path["manufacturer"] == "SoftHSM project"
    assert uri.module_path("/default.so") == "/usr/lib/softhsm/libsofthsm2.so"
    assert uri.pin_source == "file:/run/secrets/pin"


def test_percent_encoded_utf8_label() -> None:
    uri = Pkcs11Uri.parse("pkcs11:token=%E5%85%B4%E5%9B%BD")
    assert uri.token_label == "兴国"
    assert uri.module_path("/default.so") == "/default.so"


def test_file_uri_pin_source_and_env_source() -> None:
    assert Pkcs11Uri.parse("pkcs11:token=a?pin-source=file:///etc/pin").pin_source == "file:/etc/pin"
    assert Pkcs11Uri.parse("pkcs11:token=a?pin-source=env:HSM_PIN").pin_source == "env:HSM_PIN"


def test_vendor_attributes_are_allowed() -> None:
    assert Pkcs11Uri.parse("pkcs11:token=a;x-vendor=1").path["x-vendor"] == "1"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "pkcs12:token=a",
        "token=a",
        "pkcs11:",
        "pkcs11:token",
        "pkcs11:token=a;token=b",
        "pkcs11:token=a;colour=blue",
        "pkcs11:slot-id=zero",
        "pkcs11:token=a?pin-value=1234",
        "pkcs11:token=a b",
        "pkcs11:token=a%zz",
        "pkcs11:token=a?module-path=/x.so&module-name=x",
        "pkcs11:token=a#frag",
        "pkcs11:object=key1",
    ],
)
def test_malformed_uris_are_refused_with_their_code(bad: str) -> None:
    with pytest.raises(BadInput) as err:
        Pkcs11Uri.parse(bad)
    assert err.value.code == "PKCS11_URI_INVALID"


def test_describe_never_carries_a_pin() -> None:
    uri = Pkcs11Uri.parse("pkcs11:token=a?pin-source=env:X")
    assert "pin-value" not in uri.describe()


@pytest.mark.parametrize(
    "info",
    [
        SealInfo(SealKind.TOWNSHIP_APPROVAL, None, "兴国县", "兴江乡", "360732100", None, "360732100-ab"),
        SealInfo(
            SealKind.DEPARTMENT_NO2, 11, "兴国县", "兴江乡", "360732100", "兴国县民政局", "360732100-cd"
        ),
    ],
)
def test_seal_info_round_trips_through_der(info: SealInfo) -> None:
    der = info.to_der()
    assert der[0] == 0x30  # a DER SEQUENCE
    assert SealInfo.from_der(der) == info
