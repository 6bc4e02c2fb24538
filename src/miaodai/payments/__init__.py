"""Money movement: bank cards and e-wallets, payment channels, payouts, collections, reconciliation."""
