"""Campaigns, the per-recipient ledger, personalised messages and the SMTP transport."""
