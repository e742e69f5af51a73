"""Financial reports: statements (HTML, CSV, PDF), monthly summaries, bank-wide figures."""
