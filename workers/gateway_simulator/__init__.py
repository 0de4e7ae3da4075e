"""Gateway simulator: a separate HTTP process that behaves like a third-party payment gateway
implementing docs/gateway-api.md (direct /v1 and redirect /v2), durable in SQLite, with
seeded fault modes. How to run it, its variables, faults and amount rules:
docs/gateway-simulator.md.

Files: config (settings, env, flags), faults (names, rates, selection), rules (amount rules,
fee), db (schema), records / keys / callback_queue (SQL), engine (the business), settle and
announce (what is due, and its callbacks), bodies / views (JSON shapes), sender and
dispatcher (delivery to the webhook), http_common and routes_* (HTTP), statement (CSV),
app / main (wiring).
"""
