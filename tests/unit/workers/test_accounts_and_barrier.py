"""Pure parts of the ledger accounts (ids) and of the TCC barrier (an entry's verdict)."""

import dataclasses

import pytest

from workers.ledger.accounts import AccountRef, external, merchant_payable, platform, wallet
from workers.tcc.barrier import Entry, Phase, Verdict


def test_account_id_is_owner_kind_owner_purpose_currency() -> None:
    assert AccountRef("buyer", "b-1", "wallet", "EUR").account_id == "buyer:b-1:wallet:EUR"


@pytest.mark.parametrize(
    ("ref", "account_id"),
    [
        (wallet("b-42", "EUR"), "buyer:b-42:wallet:EUR"),
        (merchant_payable("m-bolt", "EUR"), "merchant:m-bolt:payable:EUR"),
        (platform("fee_income", "USD"), "platform:payflow:fee_income:USD"),
        (platform("order_clearing", "EUR"), "platform:payflow:order_clearing:EUR"),
        (external("gateway_clearing", "EUR"), "external:world:gateway_clearing:EUR"),
    ],
)
def test_account_constructors_build_the_expected_ids(ref: AccountRef, account_id: str) -> None:
    assert ref.account_id == account_id


def test_one_account_per_owner_purpose_and_currency() -> None:
    ids = {
        wallet("b-1", "EUR").account_id,
        wallet("b-1", "USD").account_id,
        wallet("b-2", "EUR").account_id,
        merchant_payable("b-1", "EUR").account_id,
    }
    assert len(ids) == 4
    assert wallet("b-1", "EUR") == wallet("b-1", "EUR")


def test_account_refs_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        wallet("b-1", "EUR").currency = "USD"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("verdict", "apply"),
    [
        (Verdict.APPLY, True),
        (Verdict.DUPLICATE, False),
        (Verdict.EMPTY_CANCEL, False),
        (Verdict.REFUSED, False),
    ],
)
def test_only_an_apply_verdict_applies_the_branch(verdict: Verdict, apply: bool) -> None:
    assert Entry(verdict).apply is apply


def test_entry_reason_defaults_to_empty() -> None:
    assert Entry(Verdict.APPLY).reason == ""
    assert Entry(Verdict.REFUSED, "try after cancel").reason == "try after cancel"


def test_phase_and_verdict_values_are_the_stored_strings() -> None:
    assert [p.value for p in Phase] == ["try", "confirm", "cancel"]
    assert [v.value for v in Verdict] == ["apply", "duplicate", "empty_cancel", "refused"]
