"""Money the buyer paid that we did not sell for: its records and its refund through the
gateway (a success after the order was cancelled or declined, a second charge)."""
