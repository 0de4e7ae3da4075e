"""Charging through the gateway, shared by everything that charges (an order's gateway part in
gateway_request, a wallet top-up in the wallet stage, a re-send by the sweeper): how the create
call is built and retried (rules, calls) and how its answer is recorded (records)."""
