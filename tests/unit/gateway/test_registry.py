"""The registry picks an adapter by name or by the order's payment method."""

import aiohttp
import pytest

from tests.unit.gateway.conftest import settings_for
from workers.gateway.registry import Gateways


async def test_adapters_by_name_and_by_method() -> None:
    async with aiohttp.ClientSession() as session:
        gateways = Gateways(
            settings_for(
                "http://127.0.0.1:1", gateway_routes="card=direct,qr=redirect,wechat=redirect"
            ),
            session,
        )
        assert gateways.adapter("direct").name == "direct"
        assert gateways.adapter("redirect").name == "redirect"
        assert gateways.for_method("card") is gateways.adapter("direct")
        assert gateways.for_method("qr") is gateways.adapter("redirect")
        assert gateways.for_method("wechat") is gateways.adapter("redirect")
        with pytest.raises(ValueError, match="unknown gateway adapter 'paypal'"):
            gateways.adapter("paypal")
        with pytest.raises(ValueError, match="payment method 'crypto' is not routed"):
            gateways.for_method("crypto")
