"""Tags (全域标签): rule, metric, first/last, preference, RFM, SQL and imported tags."""
