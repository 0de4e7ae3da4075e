"""Order build accepts only a payment method some gateway adapter serves."""

import pytest

from workers.order_build.rules import Rejection, check_payment_method

ROUTES = {"card": "direct", "qr": "redirect"}


@pytest.mark.parametrize("method", ["card", "qr"])
def test_a_routed_method_is_accepted(method: str) -> None:
    check_payment_method(method, ROUTES)


def test_an_unrouted_method_is_rejected_with_a_clear_reason() -> None:
    with pytest.raises(Rejection) as caught:
        check_payment_method("crypto", ROUTES)
    assert caught.value.code == "unsupported_payment_method"
    assert caught.value.detail == "payment method 'crypto' is not accepted; accepted: card, qr"
