"""Stage 5, settlement: TCC Confirm (pay merchants, fees, stock sold, coupon used) or Cancel."""
