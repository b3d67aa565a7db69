"""Study reports: report.md, PNG plots and results.json from run records (optionally W&B)."""
