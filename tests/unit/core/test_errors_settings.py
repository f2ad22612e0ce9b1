import pytest

from core.errors import BadInput, PolicyDenied, SealServiceError
from core.settings import load_settings, read_secret


def test_error_carries_code_and_both_languages() -> None:
    err = PolicyDenied("SEAL_NOT_ACTIVE", "seal is not active", "印章未启用")
    assert isinstance(err, SealServiceError)
    d = err.to_dict()
    assert d["code"] == "SEAL_NOT_ACTIVE" and d["family"] == "policy_denied"
    assert "印章未启用" in d["message"] and "seal is not active" in d["message"]


def test_no_default_pin_and_sources(tmp_path, monkeypatch) -> None:
    s = load_settings(tmp_path)
    assert s.pin_source is None  # no default PIN anywhere
    assert s.effective_pin_source.startswith("file:")
    monkeypatch.setenv("YZ_PIN", "1234")
    assert read_secret("env:YZ_PIN") == "1234"
    with pytest.raises(BadInput) as ei:
        read_secret("env:YZ_NOPE")
    assert ei.value.code == "SECRET_MISSING"
    with pytest.raises(BadInput) as ei:
        read_secret("1234")
    assert ei.value.code == "SECRET_SOURCE_INVALID"
    assert "1234" not in repr(s)


def test_two_homes_do_not_share_a_database(tmp_path) -> None:
    a = load_settings(tmp_path / "a")
    b = load_settings(tmp_path / "b")
    assert a.effective_database_url != b.effective_database_url
