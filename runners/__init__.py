"""Live runners (``python -m runners.paper``, ``python -m runners.testnet``): they trade promoted
strategies with the same step kernels as the backtests. They arrive with the promotion and live
issues; this package holds their entry points."""
