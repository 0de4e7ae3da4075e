"""Which adapter serves an order: by name, or by the order's payment method (settings.routes)."""

import aiohttp

from infra.settings import Settings
from workers.gateway.adapters.direct import DirectGateway
from workers.gateway.adapters.redirect import RedirectGateway
from workers.gateway.http import GatewayHttp
from workers.gateway.port import Gateway


class Gateways:
    def __init__(self, settings: Settings, http: aiohttp.ClientSession) -> None:
        shared = GatewayHttp(settings, http)
        self._adapters: dict[str, Gateway] = {
            "direct": DirectGateway(shared),
            "redirect": RedirectGateway(shared),
        }
        self._routes = settings.routes

    def adapter(self, name: str) -> Gateway:
        """The adapter called `name` (also the provider its callbacks carry)."""
        try:
            return self._adapters[name]
        except KeyError:
            known = ", ".join(self._adapters)
            raise ValueError(f"unknown gateway adapter {name!r}; adapters: {known}") from None

    def for_method(self, method: str) -> Gateway:
        """The adapter that serves `method`; ValueError when no route names it."""
        name = self._routes.get(method)
        if name is None:
            routed = ", ".join(self._routes)
            raise ValueError(f"payment method {method!r} is not routed; routed: {routed}")
        return self.adapter(name)
