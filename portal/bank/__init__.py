"""Bank statements in, matched to invoices: parsers (CAMT.053, CAMT.054, CFONB 120, CSV),
the statement and line tables, the matcher, and the review queue's actions."""
