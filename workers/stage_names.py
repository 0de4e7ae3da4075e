"""The stages, in pipeline order: a module of its own so the CLI can name them without
importing every stage and its drivers."""

STAGE_NAMES = (
    "order_build",
    "fund_freeze",
    "gateway_request",
    "callback_handling",
    "settlement",
    "wallet",
)
