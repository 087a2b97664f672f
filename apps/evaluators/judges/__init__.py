"""Judge clients per provider; see :mod:`apps.evaluators.judges.base` for the contract."""
