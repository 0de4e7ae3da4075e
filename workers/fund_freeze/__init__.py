"""Stage 2, fund freeze: TCC Try on the wallet part, transaction pending payment."""
