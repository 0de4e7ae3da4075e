"""The sweeper: resolves unknown and overdue payments by asking the gateway, and cancels
orders not paid within the payment window (`payflow run sweeper`)."""
