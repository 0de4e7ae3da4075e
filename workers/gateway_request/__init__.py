"""Stage 3, gateway request: send the gateway part to the payment gateway, never twice."""
