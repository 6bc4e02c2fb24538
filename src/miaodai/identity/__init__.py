"""Borrowers, phone login, sessions and devices, real-name verification, consents, staff users and roles."""
