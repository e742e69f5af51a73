"""Everyday payments: saved payees, scheduled and standing-order transfers, alert settings."""
