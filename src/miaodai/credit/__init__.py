"""Credit decisioning (授信决策): applications, bureau data, features, policy rules, scorecards and models,
risk-based limits and prices, manual review."""
