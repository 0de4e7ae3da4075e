"""Stage 4, callback handling: verify and match gateway callbacks, decide the payment."""
